"""The allowance register holds what the tests seeded, under its legacy names, read with SQLAlchemy directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.onboarding.allowance_table import TABLE, AllowanceTable, allowance_table
from tests.onboarding.holdings import BORN_1880, WITHDRAWN_ONLY, Holdings

pytestmark = pytest.mark.postgres

SAMPLE = "11010519491231002X"


@pytest.fixture
async def table(postgres_url: str) -> AsyncIterator[AllowanceTable]:
    async with allowance_table(postgres_url, Holdings.seeded(SAMPLE, "王秀英").allowances) as created:
        yield created


async def test_the_table_keeps_quoted_upper_case_names_and_legacy_types(table: AllowanceTable) -> None:
    engine = create_async_engine(table.url)
    try:
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"]: str(c["type"]) for c in inspect(sync).get_columns(TABLE, table.schema)}
            )
            folded = await connection.run_sync(lambda sync: inspect(sync).has_table("t_db_jz", table.schema))
    finally:
        await engine.dispose()
    assert columns == {
        "ID": "INTEGER",
        "SFZHM": "VARCHAR(18)",
        "XM": "VARCHAR(50)",
        "JZJE": "NUMERIC(10, 2)",
        "KSRQ": "CHAR(8)",
        "ZT": "CHAR(1)",
    }
    assert not folded, "the name is quoted upper case, not folded"


async def test_active_rows_leave_out_the_withdrawn(table: AllowanceTable) -> None:
    engine = create_async_engine(table.url)
    active = text(f'SELECT "SFZHM", "JZJE", "KSRQ", "ZT" FROM "{table.schema}"."{TABLE}" WHERE "ZT" != \'9\'')
    everything = text(f'SELECT "SFZHM", "ZT" FROM "{table.schema}"."{TABLE}" ORDER BY "ID"')
    try:
        async with engine.connect() as connection:
            rows = {row.SFZHM: tuple(row) for row in await connection.execute(active)}
            statuses = [tuple(row) for row in await connection.execute(everything)]
    finally:
        await engine.dispose()
    assert rows == {
        SAMPLE: (SAMPLE, Decimal("1450.50"), "20230101", "1"),
        BORN_1880: (BORN_1880, Decimal("980.00"), "20200701", "1"),
    }
    assert (SAMPLE, "9") in statuses
    assert (WITHDRAWN_ONLY, "9") in statuses
    assert WITHDRAWN_ONLY not in rows
