"""The ``onewindow`` command: schema, check (with and without --probe) against the real demo departments."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from typer.testing import CliRunner

from demo.departments import CIVIL_AFFAIRS, DemoDepartments
from demo.variants import DEMO_OPERATOR
from gateway.cli import DEMO_CONFIG, app
from schema.query import build_schema
from tests.conftest import unused_port

runner = CliRunner()


def test_schema_prints_the_unified_sdl() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(build_schema()).strip()


def test_schema_of_a_configuration_has_its_model_and_raw_namespaces(tmp_path: Path) -> None:
    database = tmp_path / "allowance.db"
    with sqlite3.connect(database) as connection:
        connection.execute('CREATE TABLE "T_DB" ("SFZH" CHAR(18), "JE" NUMERIC(10, 2), "KSRQ" DATE, "ZT" CHAR(1))')
    connection.close()
    config = tmp_path / "onewindow.yaml"
    config.write_text(
        "security: {production: false}\n"
        'model:\n  entities:\n    Person:\n      fields:\n        allowanceAmounts: {type: "[Decimal]"}\n'
        "sources:\n  allowance:\n    kind: sql\n    department: 民政局社会救助系统\n"
        f"    url: sqlite+aiosqlite:///{database}\n"
        "    queries: {grants: {table: T_DB, key_column: SFZH, many: true}}\n"
        "    raw: {entity: Person}\n"
        "    provides: {Person.allowanceAmounts: {query: grants, value: JE}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["schema", str(config)])
    assert result.exit_code == 0, result.output
    sdl = result.stdout
    assert "allowanceAmounts: [Decimal!]" in sdl
    assert "raw: RawPerson" in sdl
    assert "allowance: RawPersonAllowance" in sdl
    assert "grants: [RawAllowanceGrants!]" in sdl
    for column, graphql_type in (("SFZH", "String"), ("JE", "Decimal"), ("KSRQ", "Date"), ("ZT", "String")):
        assert f"  {column}: {graphql_type}\n" in sdl.split("type RawAllowanceGrants {")[1].split("}")[0]


def test_check_names_the_key_of_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "onewindow.yaml"
    bad.write_text(
        "sources:\n  hrss:\n    kind: rest\n    department: HRSS\n    base_url: http://127.0.0.1:1\n"
        "    timeout: soon\n    queries: {q: {path: '/x/{key}'}}\n    provides: {Person.name: {value: n}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    assert "sources.hrss.timeout" in result.output


async def test_check_probe_reports_each_source(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path) as departments:
        await departments.stop(CIVIL_AFFAIRS)
        result = await asyncio.to_thread(
            runner.invoke, app, ["check", str(DEMO_CONFIG), "--probe"], env=departments.variables
        )
    assert result.exit_code == 1, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 4}
    assert "ok" in lines["hrss"]
    assert "ok" in lines["education"]
    assert "SOURCE_UNAVAILABLE" in lines[CIVIL_AFFAIRS]


async def test_check_without_probe_reaches_no_department(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path) as departments:
        result = await asyncio.to_thread(runner.invoke, app, ["check", str(DEMO_CONFIG)], env=departments.variables)
        assert result.exit_code == 0, result.output
        assert sum(c.total + c.metadata for c in departments.counters.values()) == 0


def _minimal(tmp_path: Path, security: str) -> Path:
    """A file every key of which load_config accepts; ``security`` holds what only building the gateway checks."""
    path = tmp_path / "onewindow.yaml"
    path.write_text(
        f"security: {{production: false, {security}}}\n"
        "sources:\n  hrss:\n    kind: rest\n    department: HRSS\n    base_url: http://127.0.0.1:1\n"
        "    queries: {q: {path: '/x/{key}'}}\n    provides: {Person.name: {value: n}}\n",
        encoding="utf-8",
    )
    return path


def test_check_fails_a_rate_limit_only_the_built_gateway_reads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(_minimal(tmp_path, "rate_limit: lots"))])
    assert result.exit_code == 2, result.output
    assert "security.rate_limit" in result.output
    assert "'lots' is not a rate limit" in result.output


def test_check_fails_a_safelist_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-safelist.json"
    path = _minimal(tmp_path, f"persisted_queries: safelist, safelist: '{missing}'")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "security.safelist" in result.output


def test_check_and_serve_refuse_the_same_file(tmp_path: Path) -> None:
    """``serve`` refuses what ``check`` refuses, before it listens."""
    path = _minimal(tmp_path, "rate_limit_per_client: often")
    checked = runner.invoke(app, ["check", str(path)])
    served = runner.invoke(app, ["serve", str(path), "--port", "1"])
    assert checked.exit_code == served.exit_code == 2
    assert "security.rate_limit_per_client" in checked.output
    assert "security.rate_limit_per_client" in served.output


def test_check_passes_a_good_file_without_reaching_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(_minimal(tmp_path, "rate_limit: 10/second"))])
    assert result.exit_code == 0, result.output
    assert "hrss" in result.output


# -- the integrator's workbench: the departments alone, and the demo with one's own file laid over it ------------

STARTUP = 60.0  # seconds a started command may take to come up (databases are generated first)


@contextlib.contextmanager
def _running(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``onewindow ARGS`` in a child process, interrupted (Ctrl+C) and waited for, boundedly, when the block exits."""
    child = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        yield child
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=STARTUP)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()


def _read_until(child: subprocess.Popen[bytes], done: Callable[[list[str]], bool]) -> list[str]:
    """Lines of the child's output until ``done`` says so; fails after :data:`STARTUP` seconds. The pipe is read
    straight from its descriptor: lines that arrive together are all taken (a buffered ``readline`` would keep the
    rest where ``select`` cannot see them, and wait for output that already came)."""
    assert child.stdout is not None
    descriptor = child.stdout.fileno()
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + STARTUP
    while not done(lines):
        if b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            lines.append(line.decode() + "\n")
            continue
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(descriptor, 65536) if ready else b""
        if not chunk:
            raise AssertionError("the command stopped or took too long; it printed:\n" + "".join(lines))
        pending += chunk
    return lines


def test_departments_serves_the_simulated_departments_and_prints_their_variables() -> None:
    with _running("departments") as child:
        lines = _read_until(child, lambda seen: any("DEMO_PUBLIC_SECURITY_WSDL" in line for line in seen))
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines if line.startswith("export ")
        )
        assert {"DEMO_HRSS_URL", "DEMO_MARKET_URL", "DEMO_LICENCES_URL", "DEMO_EDUCATION_DB_URL"} <= set(exports)
        assert exports["DEMO_HRSS_URL"].startswith("http://127.0.0.1:")
        answer = httpx.get(f"{exports['DEMO_HRSS_URL']}/openapi.json", timeout=10)
        assert answer.status_code == 200
        # the printed variables are what `check --probe` of the demo file needs, from another process
        checked = runner.invoke(app, ["check", str(DEMO_CONFIG), "--probe"], env=exports)
        assert checked.exit_code == 0, checked.output
    assert child.returncode == 0


def test_demo_config_lays_an_integrators_file_over_the_demo(tmp_path: Path) -> None:
    port = unused_port()
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "sources:\n  land_registry:\n    kind: rest\n    department: Land Registry (mine)\n"
        f"    base_url: http://127.0.0.1:{unused_port()}\n    openapi: /openapi.json\n"
        "    queries: {parcel: {path: '/parcels/{key}'}}\n    provides: {Person.name: {value: owner}}\n",
        encoding="utf-8",
    )
    with _running("demo", "--port", str(port), "--config", str(mine)) as child:
        _read_until(child, lambda seen: any("OneWindow is up" in line for line in seen))
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", headers=DEMO_OPERATOR, timeout=10).json()
    sources = ready["sources"]
    # mine was opened (its OpenAPI document asked for, and refused: nothing listens there), beside the demo's
    assert sources["land_registry"]["status"] == "unavailable"
    assert "openapi" in sources["land_registry"]["error"].lower()
    assert sources["hrss"]["status"] == "ready"
    assert sources["public_security"]["status"] == "ready"


async def test_demo_config_names_the_key_at_fault_in_the_laid_over_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("security: {rate_limit: lots}\n", encoding="utf-8")
    result = await asyncio.to_thread(
        runner.invoke, app, ["demo", "--port", str(unused_port()), "--config", str(mine), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "security.rate_limit" in result.output
    assert str(mine) in " ".join(result.output.split())


def test_schema_subgraph_prints_what_serve_subgraph_serves(tmp_path: Path) -> None:
    config = tmp_path / "city.yaml"
    config.write_text(
        "security: {production: false}\n"
        'model:\n  entities:\n    Person:\n      fields:\n        allowanceAmounts: {type: "[Decimal]"}\n'
        "sources:\n  allowance:\n    kind: sql\n    department: 民政局社会救助系统\n"
        f"    url: sqlite+aiosqlite:///{tmp_path / 'allowance.db'}\n"
        "    queries: {grants: {table: T_DB, key_column: SFZH, many: true}}\n"
        "    raw: {entity: Person}\n"
        "    provides: {Person.allowanceAmounts: {query: grants, value: JE}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["schema", str(config), "--subgraph"])
    assert result.exit_code == 0, result.output
    person = result.stdout.split('type Person @key(fields: "idNumber", resolvable: true) @shareable {')[1].split("}")[0]
    # this city's one field and the key; no raw namespace (a city's own), nothing it does not provide
    assert [line.split(":")[0].strip() for line in person.splitlines() if ":" in line and '"' not in line] == [
        "allowanceAmounts",
        "idNumber",
    ]
    assert "_entities(representations: [_Any!]!): [_Entity]!" in result.stdout
    no_config = runner.invoke(app, ["schema", "--subgraph"])
    assert no_config.exit_code == 2
    assert "--subgraph needs a configuration" in no_config.output
