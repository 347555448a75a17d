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
