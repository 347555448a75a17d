"""The ``onewindow`` command: schema, check (with and without --probe) against the real demo departments."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from demo.departments import CIVIL_AFFAIRS, DemoDepartments
from gateway.cli import DEMO_CONFIG, app
from schema.query import build_schema

runner = CliRunner()


def test_schema_prints_the_unified_sdl() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(build_schema()).strip()


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
