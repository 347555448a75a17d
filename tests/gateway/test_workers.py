"""``onewindow serve --workers 2``: two processes on one port, sharing the record cache and rate limits through the
real Redis and the audit through the real PostgreSQL, in front of the real demo departments."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from auth.audit import AuditConfig, AuditFilter, AuditLog
from demo.departments import HRSS, PUBLIC_SECURITY, DemoDepartments
from demo.variants import demo_yaml
from gateway.cli import app
from gateway.workers import RestartBudget, reuseport_socket
from tests.auth.databases import fresh_postgres_schema
from tests.conftest import unused_port
from tests.gateway.processes import STARTUP, forget, rate_limit_secret, served_pid, until

STOP = 30.0
BUDGET = 10  # requests per principal per hour: no window boundary falls inside a test
PERSON = "query($id: IdNumber!) { person(idNumber: $id) { name maritalStatus socialInsurance { insured } } }"
VIEWER = "{ viewer { subject } }"


# -- the pieces, without processes ------------------------------------------------------------------------------


async def test_sockets_of_their_own_share_a_port_and_accept_connections_without_nagle() -> None:
    one = reuseport_socket("127.0.0.1", 0)
    port = one.getsockname()[1]
    two = reuseport_socket("127.0.0.1", port)  # a second socket on the same port: no EADDRINUSE
    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    servers = [await asyncio.start_server(answer, sock=sock) for sock in (one, two)]
    try:
        for _ in range(4):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            assert await asyncio.wait_for(accepted.get(), 5) == 1  # TCP_NODELAY on the accepted connection
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def test_a_worker_that_keeps_dying_is_started_again_later_each_time_then_given_up() -> None:
    now = [0.0]
    budget = RestartBudget(limit=3, window=60, first_delay=0.5, longest_delay=1.5, clock=lambda: now[0])
    delays = []
    for at in (0.0, 10.0, 20.0, 30.0):
        now[0] = at
        delays.append(budget.next_delay())
    assert delays == [0.5, 1.0, 1.5, None]  # doubling up to the longest; the fourth within a minute: given up
    now[0] = 60.0  # the first restart has left the window, two are still in it
    assert budget.next_delay() == 1.5
    now[0] = 200.0
    assert budget.next_delay() == 0.5


def _minimal(tmp_path: Path, **sections: str) -> Path:
    path = tmp_path / "onewindow.yaml"
    text = (
        "sources:\n  hrss:\n    kind: rest\n    department: HRSS\n    base_url: http://127.0.0.1:1\n"
        "    queries: {q: {path: '/x/{key}'}}\n    provides: {Person.name: {value: n}}\n"
    )
    shared = {
        "security": (
            "{production: false, rate_limit_storage: 'redis://127.0.0.1:6379/0', "
            "rate_limit_key_secret: workers-test-rate-limit-key-secret-0123456789}"
        ),
        "cache": "{url: 'redis://127.0.0.1:6379/0', key_secret: workers-test-key-secret}",
        "auth": "{audit: {url: 'postgresql+asyncpg://onewindow@127.0.0.1/onewindow'}}",
    }
    for name, value in (shared | sections).items():
        text += f"{name}: {value}\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("section", "value", "named"),
    [
        ("cache", "{url: 'memory://'}", "cache.url: memory:// is per process; with --workers 2 use redis://"),
        (
            "security",
            "{production: false, rate_limit_storage: 'memory://'}",
            "security.rate_limit_storage: memory:// is per process; with --workers 2 use redis://",
        ),
        ("auth", "{audit: {url: 'sqlite+aiosqlite:///audit.db'}}", "auth.audit.url: a SQLite audit store"),
    ],
)
def test_workers_refuse_state_one_process_keeps_before_starting_any(
    tmp_path: Path, section: str, value: str, named: str
) -> None:
    path = _minimal(tmp_path, **{section: value})
    result = CliRunner().invoke(app, ["serve", str(path), "--port", str(unused_port()), "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert named in " ".join(result.output.split())


def test_one_worker_keeps_state_in_memory_as_before(tmp_path: Path) -> None:
    """With --workers 1 (the default) nothing is refused: ``check`` and ``serve`` accept the same files."""
    path = _minimal(tmp_path, cache="{url: 'memory://'}")
    assert CliRunner().invoke(app, ["check", str(path)]).exit_code == 0


# -- two worker processes ---------------------------------------------------------------------------------------


@dataclass
class Workers:
    """``onewindow serve --workers 2`` running in a child process, and what it shares."""

    url: str
    supervisor: asyncio.subprocess.Process
    departments: DemoDepartments
    log: Path
    subject: str
    audit: AuditConfig

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def pinned(self, stack: contextlib.AsyncExitStack) -> dict[int, httpx.AsyncClient]:
        """One client per worker, by pid: a client keeps one connection, and a connection stays with the worker
        that accepted it (the kernel chose that worker's socket when it arrived)."""
        clients: dict[int, httpx.AsyncClient] = {}
        for _ in range(64):  # each new connection goes to either worker: missing one 64 times is 2**-63
            client = httpx.AsyncClient(base_url=self.url, limits=httpx.Limits(max_connections=1), timeout=30)
            pid = await served_pid(client)
            if pid in clients:
                await client.aclose()
                continue
            stack.push_async_callback(client.aclose)
            clients[pid] = client
            if len(clients) == 2:
                return clients
        raise AssertionError(f"new connections all went to {list(clients)}")


@pytest.fixture
async def workers(
    tmp_path: Path, redis_url: str, postgres_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Workers]:
    """Two workers over the demo departments (with the latency in seconds a test gives as this fixture's indirect
    parameter), the cache and rate limits in Redis, the audit in a fresh PostgreSQL schema."""
    latency: float = getattr(request, "param", 0.0)
    subject = f"workers-{uuid.uuid4().hex[:12]}"
    namespace = f"onewindow-{subject}"
    async with (
        fresh_postgres_schema(postgres_url, "ow_workers") as (schema, _),
        DemoDepartments(tmp_path / "departments", latency=latency) as departments,
    ):

        def share(data: dict[str, Any]) -> None:
            data["cache"].update(url=redis_url, namespace=namespace, key_secret=f"{namespace}-key-secret")
            data["security"].update(rate_limit=f"{BUDGET}/hour", rate_limit_per_client=None)
            data["security"]["rate_limit_storage"] = redis_url
            data["security"]["rate_limit_key_secret"] = rate_limit_secret(namespace)
            data["auth"]["development_principal"]["subject"] = subject
            data["auth"]["audit"] = {"url": postgres_url, "schema": schema, "write_timeout": "5s"}
            data["auth"]["api_keys"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}

        config = demo_yaml(tmp_path, edit=share)
        port = unused_port()
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            supervisor = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port), "--workers", "2"),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **departments.variables, "ONEWINDOW_ACCESS_LOG": "false"},
                cwd=tmp_path,
            )
        running = Workers(
            f"http://127.0.0.1:{port}",
            supervisor,
            departments,
            log,
            subject,
            AuditConfig(url=postgres_url, db_schema=schema),
        )
        try:
            await until(
                lambda: supervisor.returncode is not None or "2 workers serve" in running.output(),
                "starting",
                running.output,
            )
            assert supervisor.returncode is None, running.output()
            for counter in departments.counters.values():
                counter.reset()
            yield running
        finally:
            if supervisor.returncode is None:
                supervisor.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(supervisor.wait(), STOP)
            except TimeoutError:
                supervisor.kill()
                await asyncio.wait_for(supervisor.wait(), 10)
            await forget(redis_url, namespace, subject)


async def test_two_workers_serve_the_port_and_share_one_rate_limit(workers: Workers) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = await workers.pinned(stack)
        allowed = dict.fromkeys(clients, 0)
        for _ in range(2 * BUDGET):  # in turn: each worker sees half the requests
            for pid, client in clients.items():
                answer = await client.post("/graphql", json={"query": VIEWER})
                assert answer.status_code in (200, 429), answer.text
                if answer.status_code == 200:
                    assert answer.json()["data"]["viewer"]["subject"] == workers.subject
                    allowed[pid] += 1
                else:
                    assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert {pid: await served_pid(client) for pid, client in clients.items()} == {pid: pid for pid in clients}
    # one budget: per-process counters would have let each worker allow BUDGET
    assert sum(allowed.values()) == BUDGET, allowed
    assert all(allowed.values()), allowed


async def test_two_workers_share_the_cache_and_audit_every_disclosure_in_one_chain(workers: Workers) -> None:
    persons = [p.id_number for p in workers.departments.dataset.persons[:3]]
    async with contextlib.AsyncExitStack() as stack:
        (first, one), (second, two) = (await workers.pinned(stack)).items()

        async def ask(client: httpx.AsyncClient, person: str) -> httpx.Response:
            answer = await client.post("/graphql", json={"query": PERSON, "variables": {"id": person}})
            assert answer.status_code == 200, answer.text
            assert "errors" not in answer.json(), answer.text
            assert answer.json()["data"]["person"]["name"]
            return answer

        answers = [await ask(one, person) for person in persons]
        loaded = workers.departments.counters[HRSS].total
        assert loaded == len(persons)
        answers += [await ask(two, person) for person in persons]  # the other worker finds them in Redis
        assert workers.departments.counters[HRSS].total == loaded
        assert (await served_pid(one), await served_pid(two)) == (first, second)
    audit = AuditLog(workers.audit)
    await audit.open()
    try:
        records = await audit.query(AuditFilter(subject=workers.subject), limit=100)
        report = await audit.verify()
    finally:
        await audit.aclose()
    assert sorted(r.request_id for r in records) == sorted(a.headers["x-request-id"] for a in answers)
    assert sorted(r.applicant for r in records) == sorted(persons * 2)
    assert report.ok, report  # both processes appended to one chain, which verifies


async def test_a_worker_that_dies_is_started_again(workers: Workers) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pids = set(await workers.pinned(stack))
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    seen: set[int] = set()

    def replaced() -> bool:
        return len(seen - pids) == 1 and "starting it again" in workers.output()

    deadline = time.monotonic() + STARTUP
    # a new connection each time: either worker may take it
    async with httpx.AsyncClient(base_url=workers.url, timeout=5, headers={"Connection": "close"}) as client:
        while not replaced():
            assert time.monotonic() < deadline, workers.output()
            with contextlib.suppress(httpx.TransportError):
                seen.add(await served_pid(client))
            await asyncio.sleep(0.05)
    assert victim not in seen - pids
    assert workers.supervisor.returncode is None


@pytest.mark.parametrize("workers", [1.0], indirect=True)  # each department answers after a second
async def test_a_stop_lets_the_requests_in_flight_finish(workers: Workers) -> None:
    person = workers.departments.dataset.persons[5].id_number
    async with httpx.AsyncClient(base_url=workers.url, timeout=30) as client:
        in_flight = asyncio.create_task(client.post("/graphql", json={"query": PERSON, "variables": {"id": person}}))
        await until(lambda: workers.departments.counters[PUBLIC_SECURITY].total > 0, "the request", workers.output)
        workers.supervisor.send_signal(signal.SIGTERM)
        answer = await in_flight
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["person"]["name"]
    assert await asyncio.wait_for(workers.supervisor.wait(), STOP) == 0, workers.output()
    assert workers.output().count("Application shutdown complete") == 2
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{workers.url}/healthz")


async def test_workers_that_cannot_listen_stop_the_supervisor_with_an_error(tmp_path: Path) -> None:
    config = _minimal(
        tmp_path,
        cache="{enabled: false}",
        security="{production: false, rate_limit: null, rate_limit_per_client: null}",
        auth="{audit: null}",
    )
    with socket.socket() as taken:  # a socket without SO_REUSEPORT: no other may bind the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=STARTUP,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert served.returncode == 1, served.stderr
    assert "Address already in use" in served.stderr
    assert "could not start" in served.stderr
