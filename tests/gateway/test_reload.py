"""Hot reload (gateway/reload.py): a changed configuration file swapped in under load, an invalid one refused with
start-up's own error while the running one stays, requests in flight finishing on the configuration they started
on, and SIGHUP reaching every worker of ``onewindow serve --workers 2``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.departments import PUBLIC_SECURITY, DemoDepartments
from demo.variants import demo_yaml
from gateway.app import create_app, serving_builder
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from gateway.metrics import GatewayMetrics
from gateway.reload import ReloadingGateway, ReloadOutcome
from gateway.serving import serve_asgi
from tests.auth.databases import fresh_postgres_schema
from tests.conftest import unused_port
from tests.gateway.processes import STARTUP, served_pid, until

VIEWER = "{ viewer { subject } }"
PERSON = "query($id: IdNumber!) { viewer { subject } person(idNumber: $id) { name maritalStatus } }"
RELOADS = 10
CLIENTS = 6


def _subject(generation: int) -> str:
    return f"reload-generation-{generation}"


def _write(path: Path, generation: int, *, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The demo configuration whose development principal is named after ``generation`` (what a request sees of
    the configuration that served it), with the audit and API keys in ``path``'s directory."""

    def own(data: dict[str, Any]) -> None:
        data["auth"]["development_principal"]["subject"] = _subject(generation)
        data["auth"]["audit"] = {"url": f"sqlite+aiosqlite:///{path.parent / 'audit.db'}"}
        data["auth"]["api_keys"] = {"url": f"sqlite+aiosqlite:///{path.parent / 'keys.db'}"}
        data["security"].update(rate_limit=None, rate_limit_per_client=None)
        if edit is not None:
            edit(data)

    written = demo_yaml(path.parent, edit=own, name="reload.yaml")
    # written in place of the old file at once (as a ConfigMap volume does): a poll never reads half a file
    written.replace(path)
    return path


@dataclass
class Reloading:
    url: str
    gateway: ReloadingGateway
    path: Path
    departments: DemoDepartments
    load: Callable[[Path], GatewayConfig]


@contextlib.asynccontextmanager
async def _reloading(
    departments: DemoDepartments, tmp_path: Path, *, interval: float = 0.0
) -> AsyncIterator[Reloading]:
    path = _write(tmp_path / "onewindow.yaml", 1)
    load = functools.partial(load_config, variables=departments.variables)
    config = load(path)
    gateway = ReloadingGateway(path, create_app(config), config, build=create_app, load=load, interval=interval)
    async with serve_asgi(gateway) as url:
        yield Reloading(url, gateway, path, departments, load)


async def _viewer(client: httpx.AsyncClient) -> str:
    answer = await client.post("/graphql", json={"query": VIEWER})
    assert answer.status_code == 200, answer.text
    subject: str = answer.json()["data"]["viewer"]["subject"]
    return subject


@pytest.fixture
async def slow_departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    """The demo departments answering after 50 ms: requests are in flight whenever a reload swaps."""
    async with DemoDepartments(tmp_path / "departments", latency=0.05) as departments:
        yield departments


async def test_ten_changes_of_the_file_are_swapped_in_under_load_without_a_failed_request(
    slow_departments: DemoDepartments, tmp_path: Path
) -> None:
    departments = slow_departments
    persons = [p.id_number for p in departments.dataset.persons[:40]]
    failures: list[str] = []
    seen: list[list[int]] = [[] for _ in range(CLIENTS)]
    stop = asyncio.Event()

    async with _reloading(departments, tmp_path, interval=0.02) as running:

        async def client_loop(index: int, client: httpx.AsyncClient) -> None:
            for n in range(100_000):  # bounded: stops when the reloads are done
                if stop.is_set():
                    return
                person = persons[(index * 7 + n) % len(persons)]
                try:
                    answer = await client.post("/graphql", json={"query": PERSON, "variables": {"id": person}})
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                body = answer.json()
                if answer.status_code != 200 or "errors" in body or not body["data"]["person"]["name"]:
                    failures.append(answer.text)
                    continue
                seen[index].append(int(body["data"]["viewer"]["subject"].rsplit("-", 1)[1]))

        async def answers(more: int) -> None:
            at_least = sum(map(len, seen)) + more
            await until(lambda: sum(map(len, seen)) >= at_least, "answers")

        async def reloaded(generation: int) -> None:
            await until(lambda: running.gateway.generation == generation, "the reload")

        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            loops = [asyncio.create_task(client_loop(i, client)) for i in range(CLIENTS)]
            try:
                for generation in range(2, RELOADS + 2):
                    await answers(CLIENTS)
                    _write(running.path, generation)  # the watcher notices it
                    await reloaded(generation)
                await answers(2 * CLIENTS)
            finally:
                stop.set()
                await asyncio.gather(*loops)
            assert await _viewer(client) == _subject(RELOADS + 1)
        await running.gateway.settled()

    assert failures == []
    for generations in seen:  # each client's requests, one after another: never an older configuration again
        assert generations == sorted(generations)
    assert {g for generations in seen for g in generations} >= {1, RELOADS + 1}


def _graphql_ok(counters: GatewayMetrics) -> float:
    """The ``ok`` GraphQL requests ``counters`` have counted."""
    value = counters.registry.get_sample_value("onewindow_graphql_requests_total", {"outcome": "ok"})
    return value or 0.0


async def test_the_counters_carry_on_across_a_reload(departments: DemoDepartments, tmp_path: Path) -> None:
    """The gateway ``serve`` builds with :func:`serving_builder`: a reload's generation adds to the counters of the
    one before, so ``/metrics`` does not fall back to zero at a reload."""
    path = _write(tmp_path / "onewindow.yaml", 1, edit=lambda data: data["http"].update(metrics_public=True))
    load = functools.partial(load_config, variables=departments.variables)
    config = load(path)
    counters = GatewayMetrics()
    build = serving_builder(metrics=counters)
    gateway = ReloadingGateway(path, build(config), config, build=build, load=load, interval=0)
    async with serve_asgi(gateway) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        for _ in range(3):
            assert await _viewer(client) == _subject(1)
        assert _graphql_ok(counters) == 3
        _write(path, 2, edit=lambda data: data["http"].update(metrics_public=True))
        assert (await gateway.reload()).status == "reloaded"
        assert gateway.generation == 2
        assert await _viewer(client) == _subject(2)
        assert _graphql_ok(counters) == 4  # counted on, not from zero
        exposed = (await client.get("/metrics")).text  # what the new generation serves
        assert 'onewindow_graphql_requests_total{outcome="ok"} 4.0' in exposed


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda data: data["sources"]["civil_affairs"]["provides"]["Person.maritalStatus"]["codes"].update(
                {"50": "MARIED"}
            ),
            "sources.civil_affairs.provides.Person.maritalStatus.codes",
        ),
        (lambda data: data["security"].update(rate_limit="lots"), "security.rate_limit"),  # refused by create_app
        (lambda data: data.pop("sources"), "sources"),
    ],
    ids=["mapping", "rate-limit", "no-sources"],
)
async def test_a_file_start_up_would_refuse_is_refused_with_its_error_and_the_running_one_stays(
    departments: DemoDepartments,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    edit: Callable[[dict[str, Any]], None],
    named: str,
) -> None:
    async with _reloading(departments, tmp_path) as running:
        _write(running.path, 2, edit=edit)
        with pytest.raises(ConfigError) as at_start_up:  # what `onewindow serve` would have said of this file
            create_app(running.load(running.path))
        with caplog.at_level(logging.INFO, logger="onewindow.reload"):
            outcome = await running.gateway.reload()
        assert outcome == ReloadOutcome("refused", outcome.digest, 1, str(at_start_up.value))
        assert str(at_start_up.value).startswith(named)
        assert f"refused (sha256 {outcome.digest[:12]}), generation 1 stays: {at_start_up.value}" in caplog.text
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            assert await _viewer(client) == _subject(1)
            # the same file again: a poll does not try it twice; a fixed one is taken
            _write(running.path, 3)
            assert (await running.gateway.reload()).status == "reloaded"
            assert await _viewer(client) == _subject(3)


async def test_an_unreadable_file_is_refused_and_the_running_one_stays(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    async with _reloading(departments, tmp_path) as running:
        running.path.unlink()
        outcome = await running.gateway.reload()
        assert outcome.status == "refused"
        assert outcome.error is not None
        assert "cannot read configuration file" in outcome.error
        assert running.gateway.generation == 1
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            assert await _viewer(client) == _subject(1)


async def test_a_request_in_flight_finishes_on_its_configuration_whose_sources_close_after_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with DemoDepartments(tmp_path / "departments", latency=0.5) as departments:
        person = departments.dataset.persons[3].id_number
        async with (
            _reloading(departments, tmp_path) as running,
            httpx.AsyncClient(base_url=running.url, timeout=30) as client,
        ):
            caplog.set_level(logging.INFO, logger="onewindow.reload")
            slow = asyncio.create_task(client.post("/graphql", json={"query": PERSON, "variables": {"id": person}}))
            await until(lambda: departments.counters[PUBLIC_SECURITY].total > 0, "the request")
            _write(running.path, 2)
            assert (await running.gateway.reload()).status == "reloaded"
            assert await _viewer(client) == _subject(2)  # a new request: the new configuration
            assert "generation 1 closed" not in caplog.text  # not while its request runs
            answer = await slow
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert "errors" not in body, body  # its adapters were still open
            assert body["data"]["viewer"]["subject"] == _subject(1)
            assert body["data"]["person"]["name"]
            await running.gateway.settled()
            assert "configuration generation 1 closed after its last request" in caplog.text


async def test_sighup_reloads_every_worker(
    tmp_path: Path, redis_url: str, postgres_url: str, departments: DemoDepartments
) -> None:
    """``onewindow serve --workers 2`` with polling off: SIGHUP to the supervisor reaches both workers; a file
    that one process's memory would keep state in is refused by each, naming the key."""
    async with fresh_postgres_schema(postgres_url, "ow_reload") as (schema, _):
        namespace = f"onewindow-reload-{schema}"

        def shared(data: dict[str, Any]) -> None:
            data["cache"].update(url=redis_url, namespace=namespace, key_secret=f"{namespace}-key-secret")
            data["auth"]["audit"] = {"url": postgres_url, "schema": schema}

        path = _write(tmp_path / "onewindow.yaml", 1, edit=shared)
        port = unused_port()
        log = tmp_path / "serve.log"
        command = (sys.executable, "-m", "gateway", "serve", str(path), "--port", str(port), "--workers", "2")
        with log.open("wb") as out:
            supervisor = await asyncio.create_subprocess_exec(
                *command,
                "--reload-interval",
                "0",
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **departments.variables, "ONEWINDOW_ACCESS_LOG": "false"},
                cwd=tmp_path,
            )

        def output() -> str:
            return log.read_text(encoding="utf-8", errors="replace")

        try:
            await until(lambda: supervisor.returncode is not None or "2 workers serve" in output(), "starting")
            assert supervisor.returncode is None, output()
            _write(path, 2, edit=shared)
            supervisor.send_signal(signal.SIGHUP)
            await until(lambda: output().count("reloaded (sha256") == 2, "both workers reloading")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=10, headers={"Connection": "close"}
            ) as client:
                pids = set()
                for _ in range(64):  # a new connection each time: either worker may take it
                    assert await _viewer(client) == _subject(2)
                    pids.add(await served_pid(client))
                assert len(pids) == 2

            def per_process(data: dict[str, Any]) -> None:
                shared(data)
                data["cache"]["url"] = "memory://"

            _write(path, 3, edit=per_process)
            supervisor.send_signal(signal.SIGHUP)
            await until(lambda: output().count("generation 2 stays: cache.url: memory://") == 2, "two refusals")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                assert await _viewer(client) == _subject(2)
        finally:
            if supervisor.returncode is None:
                supervisor.send_signal(signal.SIGTERM)
            await asyncio.wait_for(supervisor.wait(), STARTUP)
        assert supervisor.returncode == 0, output()


async def test_serve_notices_a_changed_file_by_itself(tmp_path: Path, departments: DemoDepartments) -> None:
    """``onewindow serve`` in one process, polling its file: a change is served without a restart."""
    path = _write(tmp_path / "onewindow.yaml", 1)
    port = unused_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        served = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "serve", str(path), "--port", str(port), "--reload-interval", "0.1"),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **departments.variables, "ONEWINDOW_ACCESS_LOG": "false"},
            cwd=tmp_path,
        )

    def output() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    try:
        await until(lambda: served.returncode is not None or "Uvicorn running on" in output(), "starting", output)
        assert served.returncode is None, output()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            pid = await served_pid(client)
            assert await _viewer(client) == _subject(1)
            _write(path, 2)
            await until(lambda: "reloaded (sha256" in output(), "the reload", output)
            assert await _viewer(client) == _subject(2)
            assert await served_pid(client) == pid  # the same process
    finally:
        if served.returncode is None:
            served.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.wait(), STARTUP)
    assert served.returncode in (0, -signal.SIGTERM), output()  # uvicorn raises the signal again once stopped
    assert "configuration generation 1 closed after its last request" in output()
    assert "Application shutdown complete" in output()
