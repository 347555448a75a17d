"""Writes through a SQL source's ``commands`` (:mod:`adapters.sql_commands`): several commands in one transaction,
codes written as the department's own, an UPDATE that must match one row, and the checks made at start-up; on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.base import Write
from adapters.sql import SqlAdapter
from gateway.config import SourceConfig
from gateway.errors import BadSourceData, ConfigError, WriteConflict

STATUS = {"01": "RECEIVED", "03": "SUPPLEMENT_REQUESTED"}
EVENTS = {"SJ": "RECEIVED", "BZGZ": "SUPPLEMENT_REQUESTED"}
COMMANDS: dict[str, Any] = {
    "open_case": {"insert": "T_BJ", "values": {"BJBH": "caseNumber", "BJZT": {"param": "status", "codes": STATUS}}},
    "add_event": {
        "insert": "T_BJ_GC",
        "values": {"BJBH": "caseNumber", "HJ": {"param": "event", "codes": EVENTS}, "CLSJ": "at", "YJ": "note"},
    },
    "set_status": {
        "update": "T_BJ",
        "match": {"BJBH": "caseNumber", "BJZT": {"param": "previousStatus", "codes": STATUS}},
        "values": {"BJZT": {"param": "status", "codes": STATUS}},
    },
}
AT = dt.datetime(2026, 12, 4, 9, 30)


@dataclass
class Platform:
    url: str
    schema: str | None
    engine: AsyncEngine
    cases: Table
    events: Table

    async def rows(self, table: Table) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(select(table).order_by(*table.primary_key.columns)))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Platform]:
    """An approval platform's two tables in a fresh database (or a schema of its own on a server)."""
    backend: str = request.param
    schema: str | None = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'approval.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if backend == "postgresql" else "mariadb_url")
        schema = f"s17_workflow_{uuid.uuid4().hex[:10]}"
    container = "SCHEMA" if backend == "postgresql" else "DATABASE"
    engine = create_async_engine(url)
    metadata = MetaData(schema=schema)
    cases = Table("T_BJ", metadata, Column("BJBH", String(20), primary_key=True), Column("BJZT", String(2)))
    events = Table(
        "T_BJ_GC",
        metadata,
        Column("GCID", Integer, primary_key=True, autoincrement=True),
        Column("BJBH", String(20), nullable=False),
        Column("HJ", String(8), nullable=False),
        Column("CLSJ", DateTime, nullable=False),
        Column("YJ", String(200)),
    )
    try:
        if schema is not None:
            async with engine.begin() as conn:
                charset = " CHARACTER SET utf8mb4" if backend == "mariadb" else ""
                await conn.execute(text(f"CREATE {container} {schema}{charset}"))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield Platform(url, schema, engine, cases, events)
    finally:
        if schema is not None:
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP {container} {schema}" + (" CASCADE" if backend == "postgresql" else "")))
        await engine.dispose()


def _source(platform: Platform, commands: dict[str, Any] | None = None) -> SourceConfig:
    data: dict[str, Any] = {
        "kind": "sql",
        "department": "Approval platform",
        "url": platform.url,
        "queries": {"case": {"table": "T_BJ", "key_column": "BJBH"}},
        "commands": COMMANDS if commands is None else commands,
    }
    if platform.schema is not None:
        data["schema"] = platform.schema
    return SourceConfig.model_validate(data)


@pytest.fixture
async def adapter(platform: Platform) -> AsyncIterator[SqlAdapter]:
    async with SqlAdapter("approval", _source(platform)) as opened:
        yield opened


def _opened(number: str) -> list[Write]:
    return [
        Write("open_case", {"caseNumber": number, "status": "RECEIVED"}),
        Write("add_event", {"caseNumber": number, "event": "RECEIVED", "at": AT, "note": "材料已接收"}),
    ]


async def test_commands_write_in_one_transaction_in_the_departments_codes(
    adapter: SqlAdapter, platform: Platform
) -> None:
    await adapter.write(_opened("BJ1"))
    moved = {"caseNumber": "BJ1", "previousStatus": "RECEIVED", "status": "SUPPLEMENT_REQUESTED"}
    event = {"caseNumber": "BJ1", "event": "SUPPLEMENT_REQUESTED", "at": AT, "note": "材料不全，请补正：户口簿"}
    await adapter.write([Write("set_status", moved), Write("add_event", event)])
    assert [tuple(r) for r in await platform.rows(platform.cases)] == [("BJ1", "03")]
    assert [(r.HJ, r.YJ) for r in await platform.rows(platform.events)] == [
        ("SJ", "材料已接收"), ("BZGZ", "材料不全，请补正：户口簿")
    ]  # fmt: skip
    # what was written is read back through the same adapter (its reading sessions stay read-only)
    assert await adapter.fetch("case", ["BJ1"]) == {"BJ1": [{"BJBH": "BJ1", "BJZT": "03"}]}


async def test_an_update_matching_no_row_writes_nothing(adapter: SqlAdapter, platform: Platform) -> None:
    await adapter.write(_opened("BJ2"))
    stale = {"caseNumber": "BJ2", "previousStatus": "SUPPLEMENT_REQUESTED", "status": "RECEIVED"}
    event = {"caseNumber": "BJ2", "event": "RECEIVED", "at": AT, "note": None}
    # the event comes first and is rolled back with the update that found the status changed
    with pytest.raises(WriteConflict, match="matched 0 rows"):
        await adapter.write([Write("add_event", event), Write("set_status", stale)])
    assert len(await platform.rows(platform.events)) == 1
    assert [tuple(r) for r in await platform.rows(platform.cases)] == [("BJ2", "01")]


async def test_inserting_a_row_already_there_is_a_conflict(adapter: SqlAdapter, platform: Platform) -> None:
    await adapter.write(_opened("BJ3"))
    with pytest.raises(WriteConflict, match="already there"):
        await adapter.write(_opened("BJ3"))
    assert len(await platform.rows(platform.events)) == 1


async def test_a_value_without_a_code_is_bad_data(adapter: SqlAdapter, platform: Platform) -> None:
    with pytest.raises(BadSourceData, match="no code"):
        await adapter.write([Write("open_case", {"caseNumber": "BJ4", "status": "COMPLETED"})])
    assert await platform.rows(platform.cases) == []


@pytest.mark.parametrize(
    ("command", "path"),
    [
        ({"insert": "T_BJX", "values": {"BJBH": "caseNumber"}}, "sources.approval.commands.c.insert"),
        ({"insert": "T_BJ", "values": {"BJBHX": "caseNumber"}}, "sources.approval.commands.c.values.BJBHX"),
        ({"update": "T_BJ", "match": {"ZT": "s"}, "values": {"BJZT": "s"}}, "sources.approval.commands.c.match.ZT"),
    ],
)
async def test_tables_and_columns_are_checked_at_start_up(
    platform: Platform, command: dict[str, Any], path: str
) -> None:
    adapter = SqlAdapter("approval", _source(platform, {"c": command}))
    with pytest.raises(ConfigError) as raised:
        await adapter.open()
    assert raised.value.path == path


@pytest.mark.parametrize(
    "command",
    [
        {"insert": "T_BJ", "update": "T_BJ", "values": {"BJBH": "n"}},
        {"update": "T_BJ", "values": {"BJZT": "s"}},
        {"insert": "T_BJ", "values": {}},
        {"insert": "T_BJ", "values": {"BJBH": "n"}, "where": {"BJBH": "n"}},
    ],
)
def test_a_malformed_command_fails_when_the_adapter_is_built(tmp_path: Path, command: dict[str, Any]) -> None:
    source = SourceConfig.model_validate(
        {
            "kind": "sql",
            "department": "Approval platform",
            "url": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}",
            "queries": {"case": {"table": "T_BJ", "key_column": "BJBH"}},
            "commands": {"c": command},
        }
    )
    with pytest.raises(ConfigError, match=r"sources\.approval\.commands\.c"):
        SqlAdapter("approval", source)
