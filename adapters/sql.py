"""The SQL adapter: records read from a department's relational database, by key, with SELECT statements only.

A source of ``kind: sql`` names a SQLAlchemy URL with an asyncio driver (``sqlite+aiosqlite``,
``postgresql+asyncpg``, ``mysql+aiomysql``) and, per query, a table, the column holding the key, and optionally
the columns to read, fixed equality filters and an order::

    sources:
      education:
        kind: sql
        department: Education Bureau
        url: postgresql+asyncpg://gateway:${EDUCATION_DB_PASSWORD}@db.edu.example/xueji
        schema: legacy                          # optional; the connection's default schema otherwise
        timeout: 2s
        max_concurrency: 8                      # the connection pool's size
        queries:
          degrees:
            many: true
            table: T_XL_XX
            key_column: SFZH
            columns: [SFZH, XM, XLMC, YXMC, BYRQ, ZSBH]   # omitted: every column
            where: {ZT: "1"}                    # only valid rows (a value: equality)
            order_by: [BYRQ]
          allowances:
            many: true
            table: T_BT_FF
            key_column: SFZH
            where:                              # every test holds; every operand is a bound parameter
              ZT: {"!=": "9"}                   # != and not_in keep rows where the column is NULL;
              LX: {in: ["1", "2"]}              #   add is_null: false to leave those out
              DEL: {not_in: ["Y"]}
              CXRQ: {is_null: true}
              JE: {">=": 0, "<": 1000}          # also "=", ">", "<="; dates as 2024-01-01
        provides:
          Person.degrees:
            fields: {degree: {value: XLMC}, school: {value: YXMC}, graduatedOn: {value: BYRQ}}

Legacy names are matched case-insensitively against the reflected schema (PostgreSQL folds ``T_XL_XX`` to
``t_xl_xx``), and a record is keyed by the names written in ``columns`` (``"XM"``); without ``columns`` it is
keyed by the names the database reports. Values keep their database types (``Decimal``, ``date``, ``datetime``).

A ``where`` column and each operand are checked against the reflected table at start-up (a ``ConfigError``
naming ``queries.<query>.where.<column>[.<operator>]``).

:meth:`SqlAdapter.describe` types a query's record from the reflected columns: CHAR/VARCHAR/TEXT are ``String``,
INTEGER/BIGINT/SMALLINT ``Int``, NUMERIC/DECIMAL ``Decimal``, REAL/FLOAT/DOUBLE ``Float``, BOOLEAN ``Boolean``,
DATE ``Date``, TIMESTAMP/DATETIME ``DateTime`` (anything else ``String``); each field's description is the SQL
type (and the column's comment).

Every statement is a ``SELECT`` built with SQLAlchemy Core over the reflected tables, every value a bound
parameter. Sessions of an engine the adapter creates are also read-only and time-limited on the server: SQLite
``query_only``; PostgreSQL (asyncpg) ``default_transaction_read_only`` and ``statement_timeout``; MySQL/MariaDB
``SET SESSION TRANSACTION READ ONLY`` and ``max_execution_time``/``max_statement_time``. Error messages name
tables, columns and types, never a value read from a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import difflib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import Column, MetaData, Row, Table, event, inspect, literal_column, or_, select
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InvalidRequestError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ColumnElement

from adapters.base import (
    Adapter,
    AdapterOptions,
    AdapterQuery,
    Capabilities,
    FieldShape,
    Record,
    RecordShape,
    Write,
)
from adapters.sql_commands import BoundCommand, SqlCommand, bind_command
from gateway.config import SourceConfig
from gateway.durations import DatabaseUrl
from gateway.errors import (
    BadSourceData,
    ConfigError,
    SourceError,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
    WriteConflict,
)

__all__ = ["CHUNK_SIZE", "SqlAdapter", "SqlOptions", "SqlQuery"]

CHUNK_SIZE = 500
"""Keys per ``WHERE key IN (...)`` statement: well under every supported database's parameter limit."""

# Reflection reads the database's catalog, which is slower than one keyed query on a large legacy schema.
_MIN_OPEN_TIMEOUT = 30.0
# How long closing waits for units of work given up on to release their connections.
_ABANDONED_CLOSE_TIMEOUT = 5.0

T = TypeVar("T")

# Server-side "statement took too long" errors: PostgreSQL's SQLSTATE, MariaDB's and MySQL's error numbers.
_PG_QUERY_CANCELED = "57014"
_MYSQL_STATEMENT_TIMEOUTS = frozenset({1969, 3024})

# How a string key or filter value becomes the column's Python type, so strict drivers (asyncpg) can bind it.
_PARSERS: dict[type, Any] = {
    int: int,
    float: float,
    Decimal: Decimal,
    dt.date: dt.date.fromisoformat,
    dt.datetime: dt.datetime.fromisoformat,
}


# A value in a query's ``where``; YAML reads an unquoted 2024-01-01 as a date.
WhereScalar = str | int | float | dt.datetime | dt.date
# One column's test: a value (equality) or operators with their operands.
WhereTest = WhereScalar | dict[str, WhereScalar | bool | list[WhereScalar]]

_COMPARISONS: dict[str, Callable[[Column[Any], Any], ColumnElement[bool]]] = {
    "=": lambda column, value: column == value,
    "!=": lambda column, value: or_(column != value, column.is_(None)),
    "<": lambda column, value: column < value,
    "<=": lambda column, value: column <= value,
    ">": lambda column, value: column > value,
    ">=": lambda column, value: column >= value,
}
_LISTS = ("in", "not_in")
_OPERATORS = (*_COMPARISONS, *_LISTS, "is_null")

# Most derived first: SQLAlchemy's Float is a Numeric, and its Boolean an integer on some backends.
_SHAPE_SCALARS: tuple[tuple[type, str], ...] = (
    (sqltypes.Boolean, "Boolean"),
    (sqltypes.Integer, "Int"),
    (sqltypes.Float, "Float"),
    (sqltypes.Numeric, "Decimal"),
    (sqltypes.DateTime, "DateTime"),
    (sqltypes.Date, "Date"),
    (sqltypes.String, "String"),
)
_SHAPE_BY_PYTHON = {bool: "Boolean", int: "Int", float: "Float", Decimal: "Decimal", dt.datetime: "DateTime",
                    dt.date: "Date"}  # fmt: skip


class SqlOptions(AdapterOptions):
    """The connection: a SQLAlchemy URL with an async driver, and the schema holding the tables."""

    # ``schema`` in YAML; ``db_schema`` in Python, where ``schema`` would shadow a BaseModel method.
    model_config = ConfigDict(populate_by_name=True)

    url: DatabaseUrl
    db_schema: str | None = Field(default=None, alias="schema")


class SqlQuery(AdapterQuery):
    """One query: the rows of ``table`` whose ``key_column`` equals the key (and every ``where`` pair)."""

    table: str
    key_column: str
    columns: list[str] | None = None
    where: dict[str, WhereTest] = Field(default_factory=dict)
    order_by: list[str] = Field(default_factory=list)

    @field_validator("where")
    @classmethod
    def _known_operators(cls, where: dict[str, WhereTest]) -> dict[str, WhereTest]:
        for name, test in where.items():
            if not isinstance(test, dict):
                continue
            if not test:
                raise ValueError(f"{name}: no operator; use one of {', '.join(_OPERATORS)}")
            for operator, operand in test.items():
                if operator not in _OPERATORS:
                    raise ValueError(f"{name}: unknown operator {operator!r}; use one of {', '.join(_OPERATORS)}")
                if operator == "is_null" and not isinstance(operand, bool):
                    raise ValueError(f"{name}.is_null: true or false")
                if operator in _LISTS and not (isinstance(operand, list) and operand):
                    raise ValueError(f"{name}.{operator}: a list of at least one value")
                if operator in _COMPARISONS and isinstance(operand, list | bool):
                    raise ValueError(f"{name}.{operator!s}: one value")
        return where


@dataclass(frozen=True)
class _BoundQuery:
    """A query resolved against the reflected schema: the columns to select, how a record names them."""

    table: Table
    key: Column[Any]
    outputs: tuple[tuple[str, Column[Any]], ...]
    conditions: tuple[ColumnElement[bool], ...]
    order: tuple[Column[Any], ...]

    def select(self) -> Any:
        columns = [column for _, column in self.outputs]
        return select(self.key, *columns).where(*self.conditions).order_by(*self.order)

    def record(self, row: Row[Any]) -> Record:
        return {name: row[i] for i, (name, _) in enumerate(self.outputs, start=1)}

    def column(self, name: str) -> Column[Any] | None:
        for output, column in self.outputs:
            if output == name:
                return column
        return _find_column(self.table, name)


class SqlAdapter(Adapter):
    """A department's relational database, read with ``SELECT`` statements built from its reflected tables.

    ``engine``: use this engine instead of creating one from ``url``; its owner configures and disposes it.
    """

    Options = SqlOptions
    Query = SqlQuery
    Command = SqlCommand

    options: SqlOptions
    queries: dict[str, SqlQuery]
    commands: dict[str, SqlCommand]

    def __init__(self, name: str, config: SourceConfig, *, engine: AsyncEngine | None = None) -> None:
        super().__init__(name, config)
        self._url: URL = engine.url if engine is not None else make_url(self.options.url)
        self._engine = engine
        self._owns_engine = engine is None
        self._bound: dict[str, _BoundQuery] | None = None
        # Writes (``commands``) go through an engine of their own: the reading one's sessions are read-only.
        self._writer: AsyncEngine | None = None
        self._bound_commands: dict[str, BoundCommand] = {}
        self._opening = asyncio.Lock()
        # Units of work given up on (timed out, or their caller cancelled), still closing their connection.
        self._abandoned: set[asyncio.Task[Any]] = set()

    # -- the contract --------------------------------------------------------------------------------------------

    def capabilities(self, query: str) -> Capabilities:
        return Capabilities(batch=True, search=True)

    async def open(self) -> None:
        """Create the engine, reflect the queried tables and check every configured table and column."""
        async with self._opening:
            if self._bound is not None:
                return
            if self._engine is None:
                self._check_sqlite_file()
                self._engine = self._create_engine()
                if self.instrumentation is not None:
                    self.instrumentation.engine(self._engine)
            try:
                async with self._connect(max(self.config.timeout, _MIN_OPEN_TIMEOUT)) as conn:
                    names, tables = await conn.run_sync(self._reflect)
                self._bound_commands = self._bind_commands(names, tables)
                if self.commands and self._writer is None:
                    self._writer = self._create_engine(read_only=False) if self._owns_engine else self._engine
                self._bound = self._bind_queries(names, tables)
            except BaseException:
                await self._dispose()
                raise

    async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
        bound = await self._query(query)
        wanted: dict[Any, list[str]] = {}
        for key in dict.fromkeys(keys):
            try:
                wanted.setdefault(_as_column_type(bound.key, key), []).append(key)
            except (ValueError, ArithmeticError):
                continue  # not a value of the key column's type: no row can hold it
        values = list(wanted)
        statements = [
            bound.select().where(bound.key.in_(values[start : start + CHUNK_SIZE]))
            for start in range(0, len(values), CHUNK_SIZE)
        ]
        many = self.queries[query].many
        found: dict[str, list[Record]] = {}
        for row in await self._rows(statements):
            for key in wanted.get(row[0], ()):
                records = found.setdefault(key, [])
                if many or not records:
                    records.append(bound.record(row))
        return found

    async def search(self, query: str, filters: Mapping[str, Any], *, limit: int, offset: int) -> list[Record]:
        """Records whose columns equal ``filters`` (by column name), in ``order_by`` then key order."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset are not negative")
        bound = await self._query(query)
        statement = bound.select()
        for name, value in filters.items():
            column = bound.column(name)
            if column is None:
                raise ValueError(f"{self.name}: query {query!r} has no column {name!r} to filter on")
            try:
                statement = statement.where(column == _as_column_type(column, value))
            except (ValueError, ArithmeticError):
                return []  # not a value of the column's type: no row can hold it
        statement = statement.limit(limit).offset(offset)
        return [bound.record(row) for row in await self._rows([statement])]

    async def write(self, writes: Sequence[Write]) -> None:
        """The writes' statements in one transaction; an UPDATE touching other than one row, or an INSERT of a row
        already there, rolls it back with :class:`WriteConflict`."""
        if self._bound is None:
            await self.open()
        statements = []
        for write in writes:
            bound = self._bound_commands.get(write.command)
            if bound is None:
                raise KeyError(f"{self.name} has no command {write.command!r}")
            try:
                statements.append((write.command, bound.is_update, bound.statement(write.params, _as_column_type)))
            except (ValueError, ArithmeticError) as exc:
                raise BadSourceData(self.name, f"command {write.command}: {exc}") from None
        await self._detached(self._run_writes(statements), self.config.timeout)

    async def _run_writes(self, statements: Sequence[tuple[str, bool, Any]]) -> None:
        assert self._writer is not None
        async with self._connect(self.config.timeout, self._writer) as conn, conn.begin():
            for command, is_update, statement in statements:
                try:
                    result = await conn.execute(statement)
                except IntegrityError:
                    raise WriteConflict(f"{self.name}: command {command}: the row is already there") from None
                if is_update and result.rowcount != 1:
                    raise WriteConflict(f"{self.name}: command {command} matched {result.rowcount} rows, not 1")

    async def describe(self, query: str) -> RecordShape:
        """One record of ``query`` as the reflected table describes it: its ``columns`` (else every column), by the
        names a record has, each typed from the column's SQL type. Opens the adapter if need be."""
        bound = await self._query(query)
        return {name: _field_shape(column) for name, column in bound.outputs}

    async def probe(self) -> str:
        """``SELECT 1``; the dialect and server version, e.g. ``postgresql 16.4``."""
        await self.open()
        async with self._connect(self.config.timeout) as conn:
            await conn.execute(select(literal_column("1")))
            dialect = conn.dialect
        name = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
        version = ".".join(str(part) for part in dialect.server_version_info or ())
        return f"{name} {version}".strip()

    async def aclose(self) -> None:
        self._bound = None
        if self._abandoned:
            await asyncio.wait(self._abandoned, timeout=_ABANDONED_CLOSE_TIMEOUT)
        await self._dispose()

    # -- the engine ----------------------------------------------------------------------------------------------

    def _create_engine(self, *, read_only: bool = True) -> AsyncEngine:
        url, path = self._url, f"sources.{self.name}.url"
        try:
            dialect = url.get_dialect()
        except NoSuchModuleError:
            raise ConfigError(path, f"unknown database dialect {url.drivername!r}") from None
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "connect_args": self._connect_args(read_only)}
        if url.get_backend_name() == "sqlite":
            # A file, in a read-only session (see _sqlite_session): no server to lose the connection, no transaction
            # to roll back. aiosqlite runs each step on a thread of its own, so the ping (a SELECT 1) and the
            # rollback on return were five of a look-up's nine round trips to it.
            kwargs.update(pool_pre_ping=False, pool_reset_on_return=None)
        if issubclass(dialect, DefaultDialect) and issubclass(dialect.get_pool_class(url), QueuePool):
            kwargs.update(pool_size=self.config.max_concurrency, max_overflow=0, pool_timeout=self.config.timeout)
        try:
            engine = create_async_engine(url, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError(path, f"the database driver {exc.name!r} is not installed") from None
        except (ArgumentError, InvalidRequestError) as exc:
            raise ConfigError(path, self._mask(str(exc))) from None
        if not read_only:
            return engine
        if url.get_backend_name() == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_session)
        elif url.get_backend_name() == "mysql":
            event.listen(engine.sync_engine, "connect", _mysql_session(self.config.timeout))
        return engine

    def _connect_args(self, read_only: bool = True) -> dict[str, Any]:
        """Per-driver connect and statement timeouts and read-only sessions; keys in the URL's query win."""
        timeout = self.config.timeout
        backend, driver = self._url.get_backend_name(), self._url.get_driver_name()
        args: dict[str, Any] = {}
        if driver == "asyncpg":
            args = {
                "timeout": timeout,
                "server_settings": {
                    "default_transaction_read_only": "on" if read_only else "off",
                    "statement_timeout": str(max(1, round(timeout * 1000))),
                    "application_name": "onewindow",
                },
            }
        elif driver == "aiomysql":
            args = {"connect_timeout": timeout}
        elif backend == "sqlite":
            args = {"timeout": timeout}
        return {key: value for key, value in args.items() if key not in self._url.query}

    def _check_sqlite_file(self) -> None:
        # SQLite creates a missing file on connect; a read-only adapter leaves no empty database behind.
        url = self._url
        database = url.database or ""
        if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or url.query.get("uri"):
            return
        if not Path(database).is_file():
            raise SourceUnavailable(self.name, f"no SQLite database file at {database}")

    async def _dispose(self) -> None:
        if self._owns_engine and self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.dispose()
        self._writer = None
        if self._owns_engine and self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    # -- reflection and checks -----------------------------------------------------------------------------------

    def _reflect(self, conn: Connection) -> tuple[list[str], dict[str, Table]]:
        """Runs in ``run_sync``: the schema's table and view names, and each queried table that exists."""
        inspector = inspect(conn)
        schema = configured = self.options.db_schema
        # Not every schema is listed (PostgreSQL leaves out pg_catalog); a listed one may differ in case.
        if configured is not None and not inspector.has_schema(configured):
            schemas = inspector.get_schema_names()
            schema = _match(configured, schemas)
            if schema is None:
                path = f"sources.{self.name}.schema"
                raise ConfigError(path, f"no schema {configured!r}; {_choices(configured, schemas)}")
        names = [*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)]
        metadata = MetaData()
        tables: dict[str, Table] = {}
        for table in [*(spec.table for spec in self.queries.values()), *(c.table for c in self.commands.values())]:
            actual = _match(table, names)
            if actual is not None and table not in tables:
                tables[table] = Table(actual, metadata, schema=schema, autoload_with=conn)
        return names, tables

    def _bind_commands(self, names: list[str], tables: Mapping[str, Table]) -> dict[str, BoundCommand]:
        bound = {}
        for cname, spec in self.commands.items():
            prefix = f"sources.{self.name}.commands.{cname}"
            table = tables.get(spec.table)
            if table is None:
                key = "insert" if spec.insert is not None else "update"
                raise ConfigError(f"{prefix}.{key}", f"no table {spec.table!r}; {_choices(spec.table, names)}")
            bound[cname] = bind_command(prefix, spec, table, _find_column)
        return bound

    def _bind_queries(self, names: list[str], tables: Mapping[str, Table]) -> dict[str, _BoundQuery]:
        bound = {qname: self._bind_query(qname, spec, names, tables) for qname, spec in self.queries.items()}
        self._check_search(bound)
        return bound

    def _bind_query(self, qname: str, spec: SqlQuery, names: list[str], tables: Mapping[str, Table]) -> _BoundQuery:
        prefix = f"sources.{self.name}.queries.{qname}"
        table = tables.get(spec.table)
        if table is None:
            where = f" in schema {self.options.db_schema!r}" if self.options.db_schema else ""
            raise ConfigError(f"{prefix}.table", f"no table {spec.table!r}{where}; {_choices(spec.table, names)}")

        def column(key: str, name: str) -> Column[Any]:
            found = _find_column(table, name)
            if found is None:
                known = [c.name for c in table.columns]
                raise ConfigError(f"{prefix}.{key}", f"no column {name!r} in {table.name}; columns: {', '.join(known)}")
            return found

        key = column("key_column", spec.key_column)
        if spec.columns is None:
            outputs = tuple((c.name, c) for c in table.columns)
        else:
            outputs = tuple((name, column("columns", name)) for name in spec.columns)
        conditions = []
        for name, test in spec.where.items():
            conditions += _conditions(f"{prefix}.where.{name}", column(f"where.{name}", name), test)
        order = [column("order_by", name) for name in spec.order_by]
        # Ties broken by the key and the primary key (or every selected column), so that paging is stable.
        tiebreak = list(table.primary_key.columns) or [c for _, c in outputs]
        return _BoundQuery(table, key, outputs, tuple(conditions), tuple(_unique([*order, key, *tiebreak])))

    def _check_search(self, bound: Mapping[str, _BoundQuery]) -> None:
        """A search's key and filters are paths in a record of its query: here, its column names."""
        for entity, search in self.config.search.items():
            query = bound.get(search.query)
            if query is None:
                continue  # the gateway's own checks name the missing query
            prefix = f"sources.{self.name}.search.{entity}"
            names = [name for name, _ in query.outputs]
            if search.key not in names:
                raise ConfigError(
                    f"{prefix}.key", f"no column {search.key!r} in the records; columns: {', '.join(names)}"
                )
            for argument, path in search.filters.items():
                if query.column(path) is None:
                    raise ConfigError(f"{prefix}.filters.{argument}", f"no column {path!r} in {query.table.name}")

    async def _query(self, query: str) -> _BoundQuery:
        if self._bound is None:
            await self.open()
        assert self._bound is not None
        try:
            return self._bound[query]
        except KeyError:
            raise KeyError(f"{self.name} has no query {query!r}") from None

    # -- running statements --------------------------------------------------------------------------------------

    async def _rows(self, statements: Iterable[Any]) -> list[Row[Any]]:
        return await self._detached(self._run(statements), self.config.timeout)

    async def _run(self, statements: Iterable[Any]) -> list[Row[Any]]:
        rows: list[Row[Any]] = []
        async with self._connect(self.config.timeout) as conn:
            for statement in statements:
                result = await conn.execute(statement)
                rows.extend(result.all())
        return rows

    async def _detached(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        """``work`` in a task of its own, given up on after ``seconds`` without waiting for it to wind down.

        A statement cancelled mid-flight makes the driver close its connection gracefully, shielded, for up to a
        few seconds (asyncpg waits for the server to acknowledge); a stalled database would hold the answer that
        long. The caller gets its :class:`SourceTimeout` at once; the task closes the connection in the background
        (still one of the pool's connections, so the department never sees more than ``max_concurrency``).
        """
        task = asyncio.ensure_future(work)
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.shield(task)
        except TimeoutError:
            self._abandon(task)
            raise SourceTimeout(self.name, f"no answer within {seconds:g}s") from None
        except asyncio.CancelledError:
            self._abandon(task)
            raise

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        if task.done():
            return
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(_forget(self._abandoned))

    @contextlib.asynccontextmanager
    async def _connect(self, seconds: float, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for one unit of work, under the source's timeout, with errors translated."""
        engine = engine if engine is not None else self._engine
        assert engine is not None, "open() first"
        connected = False
        try:
            async with asyncio.timeout(seconds), engine.connect() as conn:
                connected = True
                yield conn
        except (ConfigError, SourceError, WriteConflict):
            raise
        except Exception as exc:
            error = self._translate(exc, connected=connected, seconds=seconds)
            if error is None:
                raise
            raise error from exc

    def _translate(self, exc: Exception, *, connected: bool, seconds: float) -> SourceError | None:
        if isinstance(exc, TimeoutError):
            return SourceTimeout(self.name, f"no answer within {seconds:g}s")
        if isinstance(exc, PoolTimeout):
            return SourceTimeout(self.name, f"all {self.config.max_concurrency} connections busy for {seconds:g}s")
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = self._mask(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__)
        if isinstance(exc, DBAPIError) and _is_statement_timeout(exc):
            return SourceTimeout(self.name, f"statement cancelled after {self.config.timeout:g}s: {reason}")
        if isinstance(exc, OSError | DBAPIError) and not connected:
            masked = self._url.render_as_string(hide_password=True)
            return SourceUnavailable(self.name, f"cannot connect to {masked}: {reason}")
        if isinstance(exc, OSError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return SourceUnavailable(self.name, f"connection lost: {reason}")
        if isinstance(exc, UnicodeDecodeError | ValueError | ArithmeticError):
            # the driver's or SQLAlchemy's message may quote the value it could not read: only its type is told
            return BadSourceData(self.name, f"cannot read a value as its column's type ({type(exc).__name__})")
        if isinstance(exc, SQLAlchemyError):
            return SourceFault(self.name, reason)
        return None

    def _mask(self, text: str) -> str:
        password = self._url.password
        return text.replace(str(password), "***") if password else text


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback dropping a finished task from ``tasks`` and retrieving its outcome: nobody awaits it."""

    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done


def _sqlite_session(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _mysql_session(timeout: float) -> Callable[[Any, Any], None]:
    """A pool ``connect`` hook: a read-only session whose statements the server stops after ``timeout``."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The handshake's version string tells MariaDB (seconds) from MySQL (milliseconds, SELECT only).
        server = str(dbapi_connection.driver_connection.get_server_info())
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            if "mariadb" in server.lower():
                cursor.execute("SET SESSION max_statement_time = %s", (timeout,))
            else:
                cursor.execute("SET SESSION max_execution_time = %s", (max(1, round(timeout * 1000)),))
        finally:
            cursor.close()

    return on_connect


def _is_statement_timeout(exc: DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_STATEMENT_TIMEOUTS


def _as_column_type(column: Column[Any], value: Any) -> Any:
    """``value`` as the column's Python type (``ValueError`` or ``ArithmeticError`` when it is not one)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if isinstance(value, python_type) and not (python_type is int and isinstance(value, bool)):
        return value
    if python_type is str:
        return str(value)
    parser = _PARSERS.get(python_type)
    return parser(str(value)) if parser is not None else value


def _conditions(path: str, column: Column[Any], test: WhereTest) -> list[ColumnElement[bool]]:
    """The conditions of one column's ``where`` test, every operand a bound parameter of the column's type."""
    tests = test if isinstance(test, dict) else {"=": test}
    conditions: list[ColumnElement[bool]] = []
    for operator, operand in tests.items():
        at = f"{path}.{operator}" if isinstance(test, dict) else path
        try:
            if operator == "is_null":
                conditions.append(column.is_(None) if operand else column.is_not(None))
            elif operator in _LISTS:
                assert isinstance(operand, list)
                values = [_as_column_type(column, value) for value in operand]
                # "not in" keeps the rows without a value, as "!=" does: a legacy flag is often NULL for "no"
                conditions.append(
                    column.in_(values) if operator == "in" else or_(column.not_in(values), column.is_(None))
                )
            else:
                conditions.append(_COMPARISONS[operator](column, _as_column_type(column, operand)))
        except (ValueError, ArithmeticError):
            raise ConfigError(at, f"{operand!r} is not a value of column {column.name} ({column.type})") from None
    return conditions


def _field_shape(column: Column[Any]) -> FieldShape:
    """A column's shape: its SQL type's scalar (by the type's class, else by its Python type), else ``String``."""
    description = f"{column.type}" + (f": {column.comment}" if column.comment else "")
    for cls, name in _SHAPE_SCALARS:
        if isinstance(column.type, cls):
            return FieldShape(name, description=description)
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    return FieldShape(_SHAPE_BY_PYTHON.get(python_type, "String"), description=description)


def _match(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate spelled ``name``, else the one equal to it ignoring case."""
    candidates = list(candidates)
    if name in candidates:
        return name
    folded = name.casefold()
    return next((c for c in candidates if c.casefold() == folded), None)


def _find_column(table: Table, name: str) -> Column[Any] | None:
    actual = _match(name, table.columns.keys())
    return table.columns[actual] if actual is not None else None


def _choices(name: str, names: Sequence[str]) -> str:
    if not names:
        return "there are none"
    close = difflib.get_close_matches(name.casefold(), [n.casefold() for n in names], n=3)
    if close:
        by_fold = {n.casefold(): n for n in names}
        return "did you mean " + ", ".join(repr(by_fold[c]) for c in close) + "?"
    shown = sorted(names)[:20]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return f"there are {', '.join(shown)}{more}"


def _unique(columns: Iterable[Column[Any]]) -> list[Column[Any]]:
    seen: list[Column[Any]] = []
    for column in columns:
        if not any(column is s for s in seen):
            seen.append(column)
    return seen
