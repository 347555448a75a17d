"""``onewindow audit verify`` and ``onewindow audit prune`` against a configuration file and a real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from auth.audit import AuditConfig, AuditEntry, AuditLog
from auth.audit.cli import audit_app
from tests.auth.samples import disclosure, write_config
from tests.conftest import unused_port

NOW = dt.datetime.now(dt.UTC)

runner = CliRunner()


def _entry(n: int, age_in_days: float = 0) -> AuditEntry:
    return disclosure(
        n,
        NOW - dt.timedelta(days=age_in_days) + dt.timedelta(seconds=n),
        released=("name",),
        masked=(),
        refused=(),
        sources=("civil_affairs",),
        outcome="released",
    )


def _config(tmp_path: Path, **audit: Any) -> tuple[Path, Path]:
    database = tmp_path / "audit.db"
    section = {"url": f"sqlite+aiosqlite:///{database}", **audit}
    return write_config(tmp_path / "onewindow.yaml", auth={"audit": section}), database


async def _written(database: Path, entries: list[AuditEntry]) -> None:
    async with AuditLog(AuditConfig(url=f"sqlite+aiosqlite:///{database}")) as log:
        for entry in entries:
            await log.write([entry])


async def _invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return await asyncio.to_thread(lambda: runner.invoke(audit_app, list(args), env=env))


def _tamper(database: Path, statement: str) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute(statement)
    conn.close()


def _rows(database: Path, statement: str) -> list[Any]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


async def test_verify_a_clean_store_exits_0_with_a_summary(tmp_path: Path) -> None:
    config, database = _config(tmp_path)
    await _written(database, [_entry(i) for i in range(12)])

    result = await _invoke("verify", "--config", str(config))

    assert result.exit_code == 0, result.output
    [(last_hash,)] = _rows(database, "SELECT hash FROM onewindow_audit_records WHERE seq = 12")
    assert result.output == f"audit chain ok: 12 records checked (seq 1-12), 0 checkpoints, last hash {last_hash}\n"


async def test_verify_a_tampered_store_exits_1_naming_the_record(tmp_path: Path) -> None:
    config, database = _config(tmp_path)
    await _written(database, [_entry(i) for i in range(12)])
    _tamper(database, "UPDATE onewindow_audit_records SET purpose = 'none' WHERE seq = 5")

    result = await _invoke("verify", "--config", str(config))

    assert result.exit_code == 1, result.output
    assert "BROKEN at record 5: hash mismatch" in result.output

    _tamper(database, "DELETE FROM onewindow_audit_records WHERE seq = 3")
    result = await _invoke("verify", "--config", str(config))
    assert result.exit_code == 1, result.output
    assert "BROKEN at record 3: sequence gap" in result.output


async def test_prune_prints_its_report_and_verify_still_passes(tmp_path: Path) -> None:
    config, database = _config(tmp_path, retention="183d")
    await _written(database, [_entry(0, 200), _entry(1, 190), _entry(2, 5)])

    result = await _invoke("prune", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert result.output.startswith("pruned 2 records older than ")
    assert "(seq up to 2); checkpoint 1 anchors hash " in result.output
    again = await _invoke("verify", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert "1 records checked (seq 3-3), 1 checkpoints" in again.output

    _tamper(database, "UPDATE onewindow_audit_checkpoints SET through_seq = 1")
    broken = await _invoke("verify", "--config", str(config))
    assert broken.exit_code == 1
    assert "checkpoint 1 (through record 1): hash mismatch" in broken.output


async def test_prune_refuses_to_delete_tampered_records(tmp_path: Path) -> None:
    config, database = _config(tmp_path)
    await _written(database, [_entry(0, 200), _entry(1, 190), _entry(2, 5)])
    _tamper(database, "UPDATE onewindow_audit_records SET subject = 'nobody' WHERE seq = 1")

    result = await _invoke("prune", "--config", str(config))

    assert result.exit_code == 1, result.output
    assert "prune refused, nothing deleted: record 1: hash mismatch" in result.output
    assert _rows(database, "SELECT count(*) FROM onewindow_audit_records") == [(3,)]


async def test_the_configuration_comes_from_onewindow_config_without_the_option(tmp_path: Path) -> None:
    config, database = _config(tmp_path)
    await _written(database, [_entry(0)])

    result = await _invoke("verify", env={"ONEWINDOW_CONFIG": str(config)})

    assert result.exit_code == 0, result.output
    assert "1 records checked" in result.output


async def test_a_configuration_error_exits_2_naming_the_key(tmp_path: Path) -> None:
    config, _ = _config(tmp_path, retention="30d")

    result = await _invoke("verify", "--config", str(config))

    assert result.exit_code == 2
    assert "auth.audit" in result.output
    assert "at least 180d" in result.output
    missing = await _invoke("verify", env={"ONEWINDOW_CONFIG": None})
    assert missing.exit_code == 2
    assert "no configuration file" in missing.output


async def test_a_configuration_without_audit_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "onewindow.yaml", security={"production": False}, auth={"audit": None})

    result = await _invoke("verify", "--config", str(config))

    assert result.exit_code == 2
    assert "the audit is turned off" in result.output


async def test_an_unreachable_store_exits_2(tmp_path: Path) -> None:
    config, _ = _config(tmp_path)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["auth"]["audit"]["url"] = f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port()}/test"  # refused
    config.write_text(yaml.safe_dump(data), encoding="utf-8")

    result = await _invoke("verify", "--config", str(config))

    assert result.exit_code == 2
    assert "cannot open the audit store" in result.output


async def test_verify_a_sealed_store_needs_its_key_from_the_environment(tmp_path: Path) -> None:
    key = "the-audit-office-keeps-this-key-2026"
    config, database = _config(tmp_path, seal_key="${ONEWINDOW_AUDIT_SEAL_KEY}")
    async with AuditLog(AuditConfig(url=f"sqlite+aiosqlite:///{database}", seal_key=key)) as log:
        for i in range(5):
            await log.write([_entry(i)])

    result = await _invoke("verify", "--config", str(config), env={"ONEWINDOW_AUDIT_SEAL_KEY": key})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit chain ok: 5 records checked")

    result = await _invoke("verify", "--config", str(config), env={"ONEWINDOW_AUDIT_SEAL_KEY": key[::-1]})
    assert result.exit_code == 1, result.output
    assert "BROKEN at record 1" in result.output
    assert "sealed with another auth.audit.seal_key" in result.output
    assert key[::-1] not in result.output

    result = await _invoke("verify", "--config", str(config), env={"ONEWINDOW_AUDIT_SEAL_KEY": None})
    assert result.exit_code == 2, result.output
    assert "ONEWINDOW_AUDIT_SEAL_KEY" in result.output
