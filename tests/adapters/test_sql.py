"""The SQL adapter against real databases: a SQLite file, PostgreSQL and MariaDB, each holding legacy tables."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.base import Write
from adapters.conformance import AdapterConformance
from adapters.sql import CHUNK_SIZE, SqlAdapter
from gateway.config import SourceConfig
from gateway.errors import BadSourceData, ConfigError, SourceFault, SourceTimeout, SourceUnavailable
from gateway.keys import id_number_check_char


def _id(body: str) -> str:
    return body + id_number_check_char(body)


ZHANG = _id("11010519491231002")  # two degrees
LI = _id("11010119800101001")
WANG = _id("44030619900215123")
ZHAO = _id("31011519751103456")
SUN = _id("32010619850520789")
NOBODY = _id("11010519491231003")

DEGREES = [
    {
        "SFZH": ZHANG,
        "XM": "张三",
        "XLMC": "硕士",
        "YXMC": "清华大学",
        "BYRQ": dt.date(1974, 7, 1),
        "ZSBH": "100031974000456",
    },
    {
        "SFZH": ZHANG,
        "XM": "张三",
        "XLMC": "学士",
        "YXMC": "北京大学",
        "BYRQ": dt.date(1971, 7, 1),
        "ZSBH": "100011971000123",
    },
    {
        "SFZH": LI,
        "XM": "李四",
        "XLMC": "学士",
        "YXMC": "复旦大学",
        "BYRQ": dt.date(2002, 7, 1),
        "ZSBH": "102461200200789",
    },
    {
        "SFZH": WANG,
        "XM": "王五",
        "XLMC": "学士",
        "YXMC": "中山大学",
        "BYRQ": dt.date(2012, 6, 30),
        "ZSBH": "105581201200321",
    },
    {
        "SFZH": ZHAO,
        "XM": "赵六",
        "XLMC": "博士",
        "YXMC": "同济大学",
        "BYRQ": dt.date(2005, 6, 30),
        "ZSBH": "102471200500654",
    },
    {
        "SFZH": SUN,
        "XM": "孙七",
        "XLMC": "学士",
        "YXMC": "南京大学",
        "BYRQ": dt.date(2007, 7, 1),
        "ZSBH": "102841200700987",
    },
]
PERSONS = [
    {"SFZH": ZHANG, "XM": "张三", "CSRQ": dt.date(1949, 12, 31), "YSR": Decimal("12345.67")},
    {"SFZH": LI, "XM": "李四", "CSRQ": dt.date(1980, 1, 1), "YSR": Decimal("8000.05")},
]
DEGREE_COLUMNS = ["SFZH", "XM", "XLMC", "YXMC", "BYRQ", "ZSBH"]
QUERIES: dict[str, dict[str, Any]] = {
    "degree": {"table": "T_XL_XX", "key_column": "SFZH", "columns": DEGREE_COLUMNS, "order_by": ["BYRQ"]},
    "degrees": {
        "many": True,
        "table": "T_XL_XX",
        "key_column": "SFZH",
        "columns": DEGREE_COLUMNS,
        "order_by": ["BYRQ"],
    },
    "person": {"table": "T_RK_XX", "key_column": "SFZH", "columns": ["SFZH", "XM", "CSRQ", "YSR"]},
}
PROVIDES = {"Person.degrees": {"query": "degrees", "fields": {"degree": {"value": "XLMC"}}}}


def _legacy_tables(schema: str | None) -> tuple[Table, Table]:
    """The department's tables, created unquoted as a legacy system did: PostgreSQL folds them to lower case."""
    metadata = MetaData(schema=schema)

    def col(name: str, type_: Any, **kw: Any) -> Column[Any]:
        return Column(name, type_, quote=False, **kw)

    degrees = Table(
        "T_XL_XX", metadata,
        col("SFZH", String(18), nullable=False), col("XM", String(50)), col("XLMC", String(50)),
        col("YXMC", String(100)), col("BYRQ", Date), col("ZSBH", String(30)),
        quote=False,
    )  # fmt: skip
    persons = Table(
        "T_RK_XX", metadata,
        col("SFZH", String(18), primary_key=True), col("XM", String(50)), col("CSRQ", Date), col("YSR", Numeric(12, 2)),
        quote=False,
    )  # fmt: skip
    return degrees, persons


@dataclass
class Department:
    """A legacy database filled with the tables above; ``engine`` is the test's own, for setting up and checking."""

    url: str
    schema: str | None
    engine: AsyncEngine
    degrees: Table

    async def count_degrees(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(self.degrees))).scalar_one())

    async def execute(self, statement: str, **params: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(statement), params)

    def qualified(self, table: str) -> str:
        return f"{self.schema}.{table}" if self.schema else table


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def department(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Department]:
    """A fresh database (a SQLite file, or a schema of its own on the server), dropped afterwards."""
    schema: str | None = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'education.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if backend == "postgresql" else "mariadb_url")
        schema = f"ow_{uuid.uuid4().hex[:12]}"
    container = "SCHEMA" if backend == "postgresql" else "DATABASE"  # a MySQL schema is a database
    engine = create_async_engine(url)
    try:
        if schema is not None:
            async with engine.begin() as conn:
                charset = " CHARACTER SET utf8mb4" if backend == "mariadb" else ""
                await conn.execute(text(f"CREATE {container} {schema}{charset}"))
        degrees, persons = _legacy_tables(schema)
        async with engine.begin() as conn:
            await conn.run_sync(degrees.metadata.create_all)
            await conn.execute(insert(degrees), DEGREES)
            await conn.execute(insert(persons), PERSONS)
        yield Department(url, schema, engine, degrees)
    finally:
        if schema is not None:
            async with engine.begin() as conn:
                cascade = " CASCADE" if backend == "postgresql" else ""
                await conn.execute(text(f"DROP {container} {schema}{cascade}"))
        await engine.dispose()


def _source(url: str, schema: str | None = None, queries: dict[str, Any] | None = None, **extra: Any) -> SourceConfig:
    data: dict[str, Any] = {
        "kind": "sql",
        "department": "Education Bureau",
        "timeout": "5s",
        "url": url,
        "queries": QUERIES if queries is None else queries,
        "provides": PROVIDES,
        **extra,
    }
    if schema is not None:
        data["schema"] = schema
    return SourceConfig.model_validate(data)


def _query(name: str, **changes: Any) -> dict[str, Any]:
    """``QUERIES`` with the query ``name`` changed."""
    queries = copy.deepcopy(QUERIES)
    queries[name].update(changes)
    return queries


MakeAdapter = Callable[..., SqlAdapter]


@pytest.fixture
async def make_adapter(department: Department) -> AsyncIterator[MakeAdapter]:
    """Build (not open) an adapter on the department's database; every one is closed afterwards."""
    made: list[SqlAdapter] = []

    def make(queries: dict[str, Any] | None = None, **extra: Any) -> SqlAdapter:
        schema = extra.pop("schema", department.schema)
        adapter = SqlAdapter("education", _source(department.url, schema, queries, **extra))
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
async def opened(make_adapter: MakeAdapter) -> SqlAdapter:
    adapter = make_adapter()
    await adapter.open()
    return adapter


@pytest.fixture
async def unreachable(backend: str, free_port: int, tmp_path: Path) -> AsyncIterator[SqlAdapter]:
    """The same configuration, pointed at a server that is not listening (or a SQLite file that is not there)."""
    urls = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'education.db'}",
        "postgresql": f"postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:{free_port}/test",
        "mariadb": f"mysql+aiomysql://root:s3cret-pw@127.0.0.1:{free_port}/test",
    }
    adapter = SqlAdapter("education", _source(urls[backend]))
    yield adapter
    await adapter.aclose()


class TestSqlConformance(AdapterConformance):
    @pytest.fixture
    def adapter(self, opened: SqlAdapter) -> SqlAdapter:
        return opened

    @pytest.fixture
    def query(self) -> str:
        return "degree"

    @pytest.fixture
    def known_keys(self) -> list[str]:
        return [ZHANG, LI, WANG]

    @pytest.fixture
    def unknown_key(self) -> str:
        return NOBODY

    @pytest.fixture
    def key_path(self) -> str:
        return "SFZH"

    @pytest.fixture
    def unreachable_adapter(self, unreachable: SqlAdapter) -> SqlAdapter:
        return unreachable

    @pytest.fixture
    async def slow_adapter(
        self, backend: str, department: Department, make_adapter: MakeAdapter, tmp_path: Path
    ) -> AsyncIterator[SqlAdapter]:
        """SQLite: the database locked by another writer. A server: ``degree`` read from a view that sleeps 2 s.
        Either way the source's timeout is 300 ms."""
        if backend != "sqlite":
            sleep = "pg_sleep(2)::text" if backend == "postgresql" else "SLEEP(2)"
            view, table = department.qualified("V_XL_SLOW"), department.qualified("T_XL_XX")
            await department.execute(f"CREATE VIEW {view} AS SELECT SFZH, {sleep} AS ZZ FROM {table}")
            adapter = make_adapter({**QUERIES, "degree": {"table": "V_XL_SLOW", "key_column": "SFZH"}}, timeout="300ms")
            await adapter.open()
            yield adapter
            return
        adapter = make_adapter(timeout="300ms")
        await adapter.open()
        locker = sqlite3.connect(tmp_path / "education.db", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # another process writing: readers wait for the lock
            yield adapter
        finally:
            locker.execute("ROLLBACK")
            locker.close()


# -- reading ---------------------------------------------------------------------------------------------------------


async def test_many_query_returns_every_degree_in_order(opened: SqlAdapter) -> None:
    result = await opened.fetch("degrees", [ZHANG, LI])
    assert [r["XLMC"] for r in result[ZHANG]] == ["学士", "硕士"]
    assert [r["XLMC"] for r in result[LI]] == ["学士"]
    assert result[ZHANG][0] == {
        "SFZH": ZHANG, "XM": "张三", "XLMC": "学士", "YXMC": "北京大学", "BYRQ": dt.date(1971, 7, 1),
        "ZSBH": "100011971000123",
    }  # fmt: skip


async def test_one_record_query_takes_the_first_by_order_by(opened: SqlAdapter) -> None:
    assert [r["XLMC"] for r in (await opened.fetch("degree", [ZHANG]))[ZHANG]] == ["学士"]


# SQLAlchemy warns that SQLite stores decimals as floating point; it still hands back Decimal at the column's scale.
@pytest.mark.filterwarnings(r"ignore:Dialect sqlite\+aiosqlite does \*not\* support Decimal")
async def test_values_keep_database_types(opened: SqlAdapter) -> None:
    [record] = (await opened.fetch("person", [ZHANG]))[ZHANG]
    assert record["YSR"] == Decimal("12345.67")
    assert isinstance(record["YSR"], Decimal)
    assert record["CSRQ"] == dt.date(1949, 12, 31)
    assert list(record) == ["SFZH", "XM", "CSRQ", "YSR"]


async def test_all_columns_when_none_are_listed_named_as_the_database_does(
    make_adapter: MakeAdapter, backend: str
) -> None:
    adapter = make_adapter(_query("degree", columns=None))
    [record] = (await adapter.fetch("degree", [LI]))[LI]
    # PostgreSQL folded the unquoted legacy names to lower case; the configured upper-case names still matched.
    assert list(record) == ([c.lower() for c in DEGREE_COLUMNS] if backend == "postgresql" else DEGREE_COLUMNS)


async def test_batch_beyond_one_statement(opened: SqlAdapter) -> None:
    keys = [f"{n:018d}" for n in range(CHUNK_SIZE * 2)] + [ZHAO, ZHANG]
    result = await opened.fetch("degrees", keys)
    assert {key: len(records) for key, records in result.items()} == {ZHAO: 1, ZHANG: 2}


async def test_search_pages_are_stable_and_complete(opened: SqlAdapter) -> None:
    everything = await opened.search("degrees", {"XLMC": "学士"}, limit=100, offset=0)
    assert [r["SFZH"] for r in everything] == [ZHANG, LI, SUN, WANG]  # by graduation date
    pages = [await opened.search("degrees", {"XLMC": "学士"}, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert pages[0] + pages[1] == everything
    assert pages[2] == []
    assert await opened.search("degrees", {"XLMC": "学士"}, limit=2, offset=2) == pages[1]


async def test_search_by_two_columns(opened: SqlAdapter) -> None:
    found = await opened.search("degrees", {"SFZH": ZHANG, "XLMC": "硕士"}, limit=10, offset=0)
    assert [(r["SFZH"], r["YXMC"]) for r in found] == [(ZHANG, "清华大学")]


async def test_search_on_unknown_column_is_refused(opened: SqlAdapter) -> None:
    with pytest.raises(ValueError, match="NO_SUCH"):
        await opened.search("degrees", {"NO_SUCH": "x"}, limit=10, offset=0)


async def test_where_filters_every_answer(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(_query("degrees", where={"XLMC": "硕士"}))
    assert [r["XLMC"] for r in (await adapter.fetch("degrees", [ZHANG]))[ZHANG]] == ["硕士"]
    assert await adapter.fetch("degrees", [LI]) == {}
    assert await adapter.search("degrees", {}, limit=10, offset=0) == (await adapter.fetch("degrees", [ZHANG]))[ZHANG]


async def test_probe_names_the_database(opened: SqlAdapter, backend: str) -> None:
    description = await opened.probe()
    assert description.split()[0] == {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mariadb"}[backend]
    assert description.split()[1][0].isdigit()


# -- read-only ---------------------------------------------------------------------------------------------------------


async def test_where_value_is_bound_never_spliced(make_adapter: MakeAdapter, department: Department) -> None:
    for name in ("T_XL_XX", "t_xl_xx"):
        hostile = f"x'; DROP TABLE {department.qualified(name)}; --"
        adapter = make_adapter(_query("degrees", where={"XLMC": hostile}))
        assert await adapter.fetch("degrees", [ZHANG]) == {}
        assert await adapter.search("degrees", {"XM": f"'; DELETE FROM {name}; --"}, limit=5, offset=0) == []
    assert await department.count_degrees() == len(DEGREES)


async def test_adapter_writes_only_the_configured_commands(make_adapter: MakeAdapter, department: Department) -> None:
    public = {name for name in dir(SqlAdapter) if not name.startswith("_")}
    assert public == {"Command", "Options", "Query", "aclose", "capabilities", "describe", "fetch",
                      "instrumentation", "open", "parse_commands", "parse_options", "parse_queries", "probe",
                      "search", "write"}  # fmt: skip
    adapter = make_adapter()  # no commands (tests/adapters/test_sql_commands.py has those)
    with pytest.raises(KeyError, match="no command"):
        await adapter.write([Write("delete_degrees", {})])
    assert await department.count_degrees() == len(DEGREES)


# -- configuration checked at open() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "named"),
    [
        ({"table": "T_XL_XXX"}, "queries.degrees.table", "T_XL_XXX"),
        ({"table": "T_XL_XX; DROP TABLE T_XL_XX"}, "queries.degrees.table", "DROP"),
        ({"key_column": "SFZHM"}, "queries.degrees.key_column", "SFZHM"),
        ({"columns": ["SFZH", "XLMC", "BYSJ"]}, "queries.degrees.columns", "BYSJ"),
        ({"where": {"YXZT": "1"}}, "queries.degrees.where.YXZT", "YXZT"),
        ({"order_by": ["BYRQ", "ZSRQ"]}, "queries.degrees.order_by", "ZSRQ"),
    ],
)
async def test_unknown_table_or_column_fails_open_naming_the_key(
    make_adapter: MakeAdapter, department: Department, change: dict[str, Any], path: str, named: str
) -> None:
    adapter = make_adapter(_query("degrees", **change))
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert info.value.path == f"sources.education.{path}"
    assert named in info.value.reason
    assert await department.count_degrees() == len(DEGREES)


async def test_unknown_schema_fails_open(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(schema="no_such_schema")
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert info.value.path == "sources.education.schema"


async def test_search_paths_are_checked_at_open(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(search={"Case": {"query": "degrees", "key": "SFZH", "filters": {"status": "ZT"}}})
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert info.value.path == "sources.education.search.Case.filters.status"


def test_url_that_does_not_parse_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        SqlAdapter("education", _source("not a url"))
    assert info.value.path == "sources.education.url"


# -- failures ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_unreachable_server_hides_the_password(unreachable: SqlAdapter) -> None:
    with pytest.raises(SourceUnavailable) as info:
        await unreachable.open()
    assert "s3cret-pw" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_missing_sqlite_file_is_unavailable_and_not_created(unreachable: SqlAdapter, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        await unreachable.fetch("degree", [ZHANG])
    assert not (tmp_path / "gone").exists()


async def test_table_changed_under_the_gateway_is_a_source_fault(opened: SqlAdapter, department: Department) -> None:
    await department.execute(f"ALTER TABLE {department.qualified('T_XL_XX')} DROP COLUMN ZSBH")
    with pytest.raises(SourceFault) as info:
        await opened.fetch("degree", [ZHANG])
    assert info.value.source == "education"
    assert ZHANG not in str(info.value)  # statement parameters stay out of the message


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_slow_answer_is_a_source_timeout(make_adapter: MakeAdapter, department: Department, backend: str) -> None:
    sleep = "pg_sleep(2)::text" if backend == "postgresql" else "SLEEP(2)"
    view, table = department.qualified("V_XL_SLOW"), department.qualified("T_XL_XX")
    await department.execute(f"CREATE VIEW {view} AS SELECT SFZH, {sleep} AS ZZ FROM {table}")
    adapter = make_adapter({**QUERIES, "slow": {"table": "V_XL_SLOW", "key_column": "SFZH"}}, timeout="300ms")
    await adapter.open()
    with pytest.raises(SourceTimeout):
        await adapter.fetch("slow", [ZHANG])
    assert list(await adapter.fetch("degree", [ZHANG])) == [ZHANG]  # the pool still serves
    # The server stopped the statement too: it no longer holds the view (left alone, it would sleep for 12s).
    async with asyncio.timeout(1.5):
        await department.execute(f"DROP VIEW {view}")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_unreadable_value_is_bad_source_data(opened: SqlAdapter, department: Department) -> None:
    await department.execute("UPDATE T_XL_XX SET BYRQ = '1971-13-45' WHERE SFZH = :key", key=ZHANG)
    with pytest.raises(BadSourceData):
        await opened.fetch("degrees", [ZHANG])


# -- ownership ---------------------------------------------------------------------------------------------------------


async def test_injected_engine_is_left_open() -> None:
    # An in-memory database lives as long as the engine's one connection: disposing the engine would lose it.
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        degrees, _ = _legacy_tables(None)
        async with engine.begin() as conn:
            await conn.run_sync(degrees.metadata.create_all)
            await conn.execute(insert(degrees), DEGREES)
        adapter = SqlAdapter("education", _source("sqlite+aiosqlite://"), engine=engine)
        async with adapter:
            assert len((await adapter.fetch("degrees", [ZHANG]))[ZHANG]) == 2
        await adapter.aclose()
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(degrees))).scalar_one() == len(DEGREES)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_sessions_are_read_only_on_the_server(
    make_adapter: MakeAdapter, department: Department, backend: str
) -> None:
    # Even a SELECT can write, through a view calling a function with side effects: the session refuses it.
    sequence, view, table = (department.qualified(name) for name in ("S_XL", "V_XL_COUNTED", "T_XL_XX"))
    nextval = f"nextval('{sequence}')" if backend == "postgresql" else f"NEXTVAL({sequence})"
    await department.execute(f"CREATE SEQUENCE {sequence}")
    await department.execute(f"CREATE VIEW {view} AS SELECT SFZH, {nextval} AS N FROM {table}")
    adapter = make_adapter({**QUERIES, "counted": {"table": "V_XL_COUNTED", "key_column": "SFZH"}})
    with pytest.raises(SourceFault, match=r"read-only|READ ONLY"):
        await adapter.fetch("counted", [ZHANG])


# -- where: filters beyond equality; describe ------------------------------------------------------------------------

# A benefit payments table created with quoted upper-case names (PostgreSQL keeps them upper case), one row for each
# filter to leave out; NOTE says which.
PAYMENT_ROWS = [
    {"NOTE": "keep-a", "ZT": "1", "LX": "1", "DEL": None, "CXRQ": None, "JE": Decimal("100.00")},
    {"NOTE": "keep-b", "ZT": None, "LX": "2", "DEL": "N", "CXRQ": None, "JE": Decimal("0.00")},
    {"NOTE": "zt-9", "ZT": "9", "LX": "1", "DEL": None, "CXRQ": None, "JE": Decimal("100.00")},
    {"NOTE": "lx-3", "ZT": "1", "LX": "3", "DEL": None, "CXRQ": None, "JE": Decimal("100.00")},
    {"NOTE": "del-y", "ZT": "1", "LX": "1", "DEL": "Y", "CXRQ": None, "JE": Decimal("100.00")},
    {"NOTE": "revoked", "ZT": "1", "LX": "1", "DEL": None, "CXRQ": dt.date(2020, 1, 1), "JE": Decimal("100.00")},
    {"NOTE": "je-1000", "ZT": "1", "LX": "1", "DEL": None, "CXRQ": None, "JE": Decimal("1000.00")},
    {"NOTE": "je-neg", "ZT": "1", "LX": "1", "DEL": None, "CXRQ": None, "JE": Decimal("-5.00")},
]
PAYMENT_WHERE = {
    "ZT": {"!=": "9"},
    "LX": {"in": ["1", "2"]},
    "DEL": {"not_in": ["Y"]},
    "CXRQ": {"is_null": True},
    "JE": {">=": 0, "<": 1000},
}


def _payments_table(schema: str | None) -> Table:
    return Table(
        "T_BT_FF_HSS", MetaData(schema=schema),
        Column("ID", Integer, primary_key=True), Column("SFZH", String(18), nullable=False),
        Column("ZT", CHAR(1)), Column("LX", String(2)), Column("DEL", CHAR(1)), Column("CXRQ", Date),
        Column("JE", Numeric(10, 2)), Column("NOTE", Text), Column("PAID", Boolean), Column("UPDATED", DateTime),
        Column("RATE", Float), Column("MONTHS", SmallInteger), Column("TOTAL", BigInteger),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
async def payments_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    """A database holding ``T_BT_FF_HSS`` (a SQLite file, or a PostgreSQL schema of its own); its URL and schema."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"ow_hss_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(url)
    try:
        table = _payments_table(schema)
        async with engine.begin() as conn:
            if schema is not None:
                await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(table.metadata.create_all)
            rows = [{"ID": n, "SFZH": ZHANG, **row} for n, row in enumerate(PAYMENT_ROWS)]
            await conn.execute(insert(table), rows)
        yield url, schema
    finally:
        if schema is not None:
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await engine.dispose()


def _payments(url: str, schema: str | None, **query: Any) -> SqlAdapter:
    spec = {"many": True, "table": "T_BT_FF_HSS", "key_column": "SFZH", "order_by": ["NOTE"], **query}
    return SqlAdapter("civil_affairs", _source(url, schema, {"degrees": spec}))


# SQLAlchemy warns that SQLite stores decimals as floating point; the comparisons still hold at this scale.
@pytest.mark.filterwarnings(r"ignore:Dialect sqlite\+aiosqlite does \*not\* support Decimal")
async def test_where_operators_filter_with_bound_values(payments_url: tuple[str, str | None]) -> None:
    async with _payments(*payments_url, columns=["NOTE", "ZT"], where=PAYMENT_WHERE) as adapter:
        found = await adapter.fetch("degrees", [ZHANG])
        searched = await adapter.search("degrees", {}, limit=20, offset=0)
    # a NULL ZT passes "!=" and a NULL DEL passes "not_in": a legacy flag without a value is not the excluded one
    assert [r["NOTE"] for r in found[ZHANG]] == ["keep-a", "keep-b"]
    assert searched == found[ZHANG]


@pytest.mark.filterwarnings(r"ignore:Dialect sqlite\+aiosqlite does \*not\* support Decimal")
@pytest.mark.parametrize(
    ("where", "notes"),
    [
        ({"LX": "3"}, ["lx-3"]),
        ({"ZT": {"=": "9"}}, ["zt-9"]),
        ({"CXRQ": {"is_null": False}}, ["revoked"]),
        ({"ZT": {"!=": "1", "is_null": False}}, ["zt-9"]),
        ({"JE": {">": 100}}, ["je-1000"]),
        ({"JE": {"<=": 0}}, ["je-neg", "keep-b"]),
        ({"DEL": {"in": ["Y", "N"]}}, ["del-y", "keep-b"]),
        ({"CXRQ": {">=": dt.date(2019, 12, 31)}}, ["revoked"]),
        ({"CXRQ": {"<": "2020-01-02"}}, ["revoked"]),
    ],
)
async def test_each_where_operator(payments_url: tuple[str, str | None], where: Any, notes: list[str]) -> None:
    async with _payments(*payments_url, where=where) as adapter:
        assert [r["NOTE"] for r in (await adapter.fetch("degrees", [ZHANG]))[ZHANG]] == notes


async def test_where_operand_is_bound_never_spliced(payments_url: tuple[str, str | None]) -> None:
    hostile = "1') OR 1=1; DROP TABLE T_BT_FF_HSS; --"
    async with _payments(*payments_url, where={"LX": {"in": [hostile]}, "ZT": {"!=": hostile}}) as adapter:
        assert await adapter.fetch("degrees", [ZHANG]) == {}
    async with _payments(*payments_url, columns=["NOTE"]) as adapter:
        assert len((await adapter.fetch("degrees", [ZHANG]))[ZHANG]) == len(PAYMENT_ROWS)


@pytest.mark.parametrize(
    ("where", "path", "named"),
    [
        ({"ZTT": {"!=": "9"}}, "where.ZTT", "ZTT"),
        ({"JE": {">=": "lots"}}, "where.JE.>=", "lots"),
        ({"CXRQ": {"in": ["2020-02-30"]}}, "where.CXRQ.in", "2020-02-30"),
    ],
)
async def test_where_column_and_operand_are_checked_at_open(
    payments_url: tuple[str, str | None], where: Any, path: str, named: str
) -> None:
    adapter = _payments(*payments_url, where=where)
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    await adapter.aclose()
    assert info.value.path == f"sources.civil_affairs.queries.degrees.{path}"
    assert named in info.value.reason


@pytest.mark.parametrize(
    ("test", "said"),
    [
        ({"~": "9"}, "unknown operator '~'"),
        ({}, "no operator"),
        ({"in": []}, "a list of at least one value"),
        ({"in": "1"}, "a list of at least one value"),
        ({"is_null": "yes"}, "is_null"),
        ({"<": ["1"]}, "one value"),
    ],
)
def test_where_operators_are_checked_when_the_adapter_is_built(test: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError) as info:
        _payments("sqlite+aiosqlite://", None, where={"ZT": test})
    assert info.value.path.startswith("sources.civil_affairs.queries.degrees.where")
    assert said in info.value.reason


async def test_describe_types_every_column(payments_url: tuple[str, str | None]) -> None:
    async with _payments(*payments_url) as adapter:
        shape = await adapter.describe("degrees")
    assert {name: field.type for name, field in shape.items()} == {
        "ID": "Int", "SFZH": "String", "ZT": "String", "LX": "String", "DEL": "String", "CXRQ": "Date",
        "JE": "Decimal", "NOTE": "String", "PAID": "Boolean", "UPDATED": "DateTime", "RATE": "Float",
        "MONTHS": "Int", "TOTAL": "Int",
    }  # fmt: skip
    assert not any(field.many for field in shape.values())


async def test_describe_keeps_the_querys_columns_and_their_spelling(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    shape = await adapter.describe("person")
    assert {name: field.type for name, field in shape.items()} == {
        "SFZH": "String", "XM": "String", "CSRQ": "Date", "YSR": "Decimal"
    }  # fmt: skip
    assert shape["SFZH"].description == "VARCHAR(18)"
    assert shape["YSR"].description.endswith("(12, 2)")


async def test_unreadable_value_error_carries_no_value(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}"
    engine = create_async_engine(url)
    try:
        table = _payments_table(None)
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table), [{"ID": 1, "SFZH": ZHANG, "NOTE": "x"}])
            # SQLite keeps any text; SQLAlchemy's DATETIME quotes a string it cannot parse
            await conn.execute(text("UPDATE T_BT_FF_HSS SET UPDATED = 'at 1234.56 yuan'"))
    finally:
        await engine.dispose()
    async with _payments(url, None, columns=["NOTE", "UPDATED"]) as adapter:
        with pytest.raises(BadSourceData) as info:
            await adapter.fetch("degrees", [ZHANG])
    assert "1234.56" not in str(info.value)
    assert ZHANG not in str(info.value)
    assert "ValueError" in str(info.value)
