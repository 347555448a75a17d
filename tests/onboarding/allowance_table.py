"""The minimum living allowance (低保) register: a legacy PostgreSQL table with quoted upper-case names.

``"T_DB_JZ"`` (救助) in a schema of the test's own: ``"SFZHM"`` ID number, ``"XM"`` name, ``"JZJE"`` monthly
amount (``numeric(10,2)``), ``"KSRQ"`` start date as ``char(8)`` ('20230101'), ``"ZT"`` ``char(1)`` status ('1'
paid, '9' withdrawn 撤销). A person may have a withdrawn row beside an active one.

    async with allowance_table(postgres_url, holdings.allowances) as table:
        table.schema   # "h_onboard_dibao_3f9a1c2e": unique to this run, dropped afterwards
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.onboarding.holdings import Allowance

__all__ = ["TABLE", "AllowanceTable", "allowance_table"]

TABLE = "T_DB_JZ"


@dataclass(frozen=True)
class AllowanceTable:
    url: str
    schema: str


@contextlib.asynccontextmanager
async def allowance_table(url: str, allowances: Iterable[Allowance]) -> AsyncIterator[AllowanceTable]:
    """Create the table in a fresh schema of the PostgreSQL database at ``url`` with ``allowances`` in it."""
    schema = f"h_onboard_dibao_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            await connection.execute(
                text(
                    f'CREATE TABLE "{schema}"."{TABLE}" ('
                    ' "ID" serial PRIMARY KEY,'
                    ' "SFZHM" varchar(18) NOT NULL,'
                    ' "XM" varchar(50) NOT NULL,'
                    ' "JZJE" numeric(10, 2) NOT NULL,'
                    ' "KSRQ" char(8) NOT NULL,'
                    ' "ZT" char(1) NOT NULL)'
                )
            )
            rows = [
                {
                    "sfzhm": a.id_number,
                    "xm": a.name,
                    "jzje": a.amount,
                    "ksrq": a.starts.strftime("%Y%m%d"),
                    "zt": a.status,
                }
                for a in allowances
            ]
            if rows:
                await connection.execute(
                    text(
                        f'INSERT INTO "{schema}"."{TABLE}" ("SFZHM", "XM", "JZJE", "KSRQ", "ZT")'
                        " VALUES (:sfzhm, :xm, :jzje, :ksrq, :zt)"
                    ),
                    rows,
                )
        yield AllowanceTable(url, schema)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
