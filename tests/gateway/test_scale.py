"""Scaling out: two ``onewindow serve`` processes behind a round-robin TCP balancer (tests/gateway/balancer.py),
sharing the record cache and rate limits in the real Redis and the audit in the real PostgreSQL, in front of the real
demo departments. A rate limit holds across both, every disclosure either makes is in the one audit chain, a burst
for one person across both is one call to each department, and a process killed mid-load loses no answered
request's audit record while the balancer sends new connections to the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.audit import AuditConfig, AuditFilter, AuditLog
from auth.audit.chain import VerifyReport
from auth.audit.query import AuditRecord
from demo.departments import CIVIL_AFFAIRS, HRSS, PUBLIC_SECURITY, DemoDepartments
from demo.variants import demo_yaml
from tests.auth.databases import fresh_postgres_schema
from tests.conftest import unused_port
from tests.gateway.balancer import RoundRobin
from tests.gateway.processes import forget, rate_limit_secret, served_pid, until

STOP = 30.0
SLOW = 0.5  # seconds a department takes with the "slow" fixture: every request of a burst arrives during the call
BUDGET = 10  # requests per principal per hour: no window boundary falls inside a test
PERSON = "query($id: IdNumber!) { person(idNumber: $id) { name maritalStatus socialInsurance { insured } } }"
VIEWER = "{ viewer { subject } }"
CLOSE = {"Connection": "close"}  # a connection per request: the balancer spreads requests, not long connections


@dataclass
class Gateways:
    """Two gateway processes behind ``balancer``, and what they share."""

    balancer: RoundRobin
    processes: dict[int, asyncio.subprocess.Process]  # by port
    departments: DemoDepartments
    logs: list[Path]
    subject: str
    audit: AuditConfig
    pids: dict[int, int] = field(default_factory=dict)  # port -> pid

    def output(self) -> str:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace") for log in self.logs)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.balancer.url, timeout=30, headers=CLOSE)

    async def records(self) -> tuple[list[AuditRecord], VerifyReport]:
        """The test principal's audit records in the shared store, and whether the chain verifies."""
        audit = AuditLog(self.audit)
        await audit.open()
        try:
            records: list[AuditRecord] = []
            while page := await audit.query(
                AuditFilter(subject=self.subject), limit=1000, before_seq=records[-1].seq if records else None
            ):
                records += page  # newest first: the next page is below the oldest seen
            return records, await audit.verify()
        finally:
            await audit.aclose()


@pytest.fixture
async def gateways(
    tmp_path: Path, redis_url: str, postgres_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Gateways]:
    """Two processes; the rate limit per principal is :data:`BUDGET` per hour when the test's indirect parameter
    says ``"limited"``, none otherwise; the departments take :data:`SLOW` seconds to answer when it says ``"slow"``."""
    limited = getattr(request, "param", None) == "limited"
    latency = SLOW if getattr(request, "param", None) == "slow" else 0.02
    subject = f"scale-{uuid.uuid4().hex[:12]}"
    namespace = f"onewindow-{subject}"
    async with (
        fresh_postgres_schema(postgres_url, "ow_scale") as (schema, _),
        DemoDepartments(tmp_path / "departments", latency=latency) as departments,
    ):

        def share(data: dict[str, Any]) -> None:
            data["cache"].update(url=redis_url, namespace=namespace, key_secret=f"{namespace}-key-secret")
            data["security"].update(rate_limit=f"{BUDGET}/hour" if limited else None, rate_limit_per_client=None)
            data["security"]["rate_limit_storage"] = redis_url
            data["security"]["rate_limit_key_secret"] = rate_limit_secret(namespace)
            data["auth"]["development_principal"]["subject"] = subject
            data["auth"]["audit"] = {"url": postgres_url, "schema": schema, "write_timeout": "5s"}
            data["auth"]["api_keys"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}

        config = demo_yaml(tmp_path, edit=share)
        ports = [unused_port(), unused_port()]
        logs = [tmp_path / f"serve-{port}.log" for port in ports]
        processes: dict[int, asyncio.subprocess.Process] = {}
        async with contextlib.AsyncExitStack() as stack:
            for port, log in zip(ports, logs, strict=True):
                with log.open("wb") as out:
                    processes[port] = await asyncio.create_subprocess_exec(
                        *(sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port)),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **departments.variables, "ONEWINDOW_ACCESS_LOG": "false"},
                        cwd=tmp_path,
                    )
                stack.push_async_callback(_stop, processes[port])
            balancer = await stack.enter_async_context(RoundRobin([("127.0.0.1", port) for port in ports]))
            running = Gateways(
                balancer, processes, departments, logs, subject, AuditConfig(url=postgres_url, db_schema=schema)
            )
            for port, log in zip(ports, logs, strict=True):
                running.pids[port] = await _started(port, processes[port], log, running)
            for counter in departments.counters.values():
                counter.reset()
            try:
                yield running
            finally:
                await forget(redis_url, namespace, subject)


async def _started(port: int, process: asyncio.subprocess.Process, log: Path, running: Gateways) -> int:
    """The pid of the process serving ``port``, once it listens."""

    def listening() -> bool:
        return process.returncode is not None or "Uvicorn running on" in log.read_text(errors="replace")

    await until(listening, f"starting the gateway on port {port}", running.output)
    assert process.returncode is None, running.output()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as direct:
        return await served_pid(direct)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), 10)


@pytest.mark.parametrize("gateways", ["limited"], indirect=True)
async def test_a_rate_limit_holds_across_both_processes(gateways: Gateways) -> None:
    statuses: list[int] = []
    async with gateways.client() as client:
        for _ in range(2 * BUDGET):
            answer = await client.post("/graphql", json={"query": VIEWER})
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        served = {await served_pid(client) for _ in range(4)}
    assert statuses.count(200) == BUDGET, statuses  # one budget: per-process counters would have allowed 2 * BUDGET
    assert statuses.count(429) == BUDGET, statuses
    assert served == set(gateways.pids.values())  # the balancer spread the requests over both processes
    assert all(gateways.balancer.connections[("127.0.0.1", port)] >= BUDGET for port in gateways.pids)


async def test_audit_rows_equal_disclosures_across_both_and_the_cache_is_shared(gateways: Gateways) -> None:
    persons = [p.id_number for p in gateways.departments.dataset.persons[:6]]
    answers: list[httpx.Response] = []
    async with gateways.client() as client:

        async def ask(person: str) -> None:
            answer = await client.post("/graphql", json={"query": PERSON, "variables": {"id": person}})
            assert answer.status_code == 200, answer.text
            assert "errors" not in answer.json(), answer.text
            assert answer.json()["data"]["person"]["name"]
            answers.append(answer)

        for person in persons:
            await ask(person)
        loaded = gateways.departments.counters[HRSS].total
        assert loaded == len(persons)
        for person in persons:  # each now from the other process, which finds it in Redis
            await ask(person)
        assert gateways.departments.counters[HRSS].total == loaded

        # twelve at once for one person no process has read: one department call in all
        fresh = gateways.departments.dataset.persons[7].id_number
        await asyncio.gather(*(ask(fresh) for _ in range(12)))
        assert gateways.departments.counters[HRSS].total - loaded == 1
    records, report = await gateways.records()
    assert sorted(r.request_id for r in records) == sorted(a.headers["x-request-id"] for a in answers)
    assert sorted(r.applicant for r in records) == sorted(persons * 2 + [fresh] * 12)
    assert report.ok, report  # both processes appended to one chain, which verifies


@pytest.mark.parametrize("gateways", ["slow"], indirect=True)
async def test_a_burst_for_one_uncached_person_across_both_processes_is_one_call_per_department(
    gateways: Gateways,
) -> None:
    person = gateways.departments.dataset.persons[9].id_number
    before = dict(gateways.balancer.connections)
    async with gateways.client() as client:
        answers = await asyncio.gather(
            *(client.post("/graphql", json={"query": PERSON, "variables": {"id": person}}) for _ in range(12))
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "errors" not in answer.json(), answer.text
    assert len({json.dumps(answer.json()["data"], sort_keys=True) for answer in answers}) == 1
    spread = {
        port: gateways.balancer.connections[("127.0.0.1", port)] - before.get(("127.0.0.1", port), 0)
        for port in gateways.pids
    }
    assert all(count >= 1 for count in spread.values()), spread  # the burst reached both processes
    # counted at the department servers: each process missed, one called and the other waited for its answer
    called = {name: counter.total for name, counter in gateways.departments.counters.items() if counter.total}
    assert called == {PUBLIC_SECURITY: 1, CIVIL_AFFAIRS: 1, HRSS: 1}


async def test_a_process_killed_mid_load_loses_no_answered_request_and_no_audit_record(gateways: Gateways) -> None:
    persons = [p.id_number for p in gateways.departments.dataset.persons[:50]]
    victim_port, survivor_port = list(gateways.pids)
    answered: list[str] = []  # request ids of 200 answers
    after_kill: list[str] = []
    failures: list[str] = []
    killed = asyncio.Event()
    stop = asyncio.Event()

    async def load(index: int, client: httpx.AsyncClient) -> None:
        for n in range(10_000):  # bounded: stops once enough was answered after the kill
            if stop.is_set():
                return
            was_killed = killed.is_set()
            person = persons[(index * 11 + n) % len(persons)]
            try:
                answer = await client.post("/graphql", json={"query": PERSON, "variables": {"id": person}})
            except httpx.TransportError as exc:  # in flight on the process when it was killed
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            assert answer.status_code == 200, answer.text
            assert "errors" not in answer.json(), answer.text
            answered.append(answer.headers["x-request-id"])
            if was_killed:
                after_kill.append(answer.headers["x-request-id"])

    clients = 8
    async with gateways.client() as client:
        loops = [asyncio.create_task(load(i, client)) for i in range(clients)]
        try:
            await until(lambda: len(answered) >= 40, "answers before the kill", gateways.output)
            os.kill(gateways.pids[victim_port], signal.SIGKILL)
            killed.set()
            await until(lambda: len(after_kill) >= 40, "answers after the kill", gateways.output)
        finally:
            stop.set()
            await asyncio.gather(*loops)
        assert await gateways.processes[victim_port].wait() == -signal.SIGKILL
        assert {await served_pid(client) for _ in range(4)} == {gateways.pids[survivor_port]}

    assert len(failures) <= clients, failures  # at most the requests in flight on the killed process
    assert gateways.balancer.refused[("127.0.0.1", victim_port)] > 0  # new connections went to the other
    records, report = await gateways.records()
    audited = {r.request_id for r in records}
    assert set(answered) <= audited  # every answer that left had its disclosure written first
    assert report.ok, report
