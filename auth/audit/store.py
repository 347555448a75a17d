"""The statements behind the audit: create the store, append to the chain under its lock, walk it to verify.

Appends are serialised across processes inside the committing transaction: on PostgreSQL (and other servers) the
chain-head row is read ``FOR UPDATE``; on SQLite, which locks the whole database, the transaction starts with a
write to the head row, which takes the database's write lock at once (what ``BEGIN IMMEDIATE`` would do) so that no
other process can append between the read of the head and the write of the new records. A writer that knows where
it left the head starts instead with an ``UPDATE`` of the head row conditional on that seq and hash: the same lock,
taken by the first statement, and the read done by the condition (see :func:`append`). Each function runs inside
a transaction the caller opened.

:func:`append` is synchronous, so that the whole transaction makes one trip to wherever the database driver runs:
a worker thread of the audit log's own over a sync engine (SQLite), or one greenlet through
``AsyncConnection.run_sync`` (asyncpg, whose every statement would otherwise be a separate await). On PostgreSQL the
usual append is one statement instead (:class:`~auth.audit.postgres.PostgresAppend`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Connection, Dialect, String, bindparam, func, insert, inspect, select, update
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from auth.audit.chain import (
    GENESIS,
    ChainWalk,
    Checkpoint,
    VerifyReport,
    checkpoint_hash,
    record_hash,
    values_hash,
)
from auth.audit.entry import AuditEntry, entry_values
from auth.audit.tables import HEAD_ID, checkpoint_of, checkpoints, entry_of, head, records, row_of
from auth.ddl import serialise_schema_changes

__all__ = [
    "ADVANCE_HEAD",
    "PAGE",
    "ChainHead",
    "ChainHeadMissing",
    "ChainSealMismatch",
    "DriverAppend",
    "Links",
    "Statement",
    "append",
    "check_seal",
    "create_store",
    "link",
    "lock_head",
    "read_checkpoints",
    "stored_records",
    "walk_store",
]

PAGE = 1000
"""Records read per statement when walking the chain."""

_DDL_LOCK = 0x6F6E_6577_6175_6474  # "onewaudt": serialises table creation by gateways starting together


class ChainHeadMissing(RuntimeError):
    """The chain-head row is gone although records exist: the store was tampered with or damaged."""

    def __init__(self) -> None:
        super().__init__("the audit chain head is missing; run `onewindow audit verify`")


class ChainSealMismatch(RuntimeError):
    """The record the chain head names (or the last checkpoint) does not hash under this writer's seal key: the
    store is sealed with another key (or none, or this writer has none), or it was tampered with. Appending would
    fork the chain."""

    def __init__(self, seq: int, *, checkpoint: int | None = None) -> None:
        what = f"last record ({seq})" if checkpoint is None else f"last checkpoint ({checkpoint}, through record {seq})"
        super().__init__(
            f"the audit chain's {what} does not hash under this gateway's auth.audit.seal_key (another "
            "key, or none); run `onewindow audit verify` with the store's key"
        )


async def create_store(conn: AsyncConnection) -> None:
    """Create the tables that are missing and, for an empty store, the chain head."""
    await serialise_schema_changes(conn, _DDL_LOCK)
    await conn.run_sync(SQLModel.metadata.create_all, tables=[records, head, checkpoints])
    await conn.run_sync(_add_new_columns)
    if await conn.scalar(select(head.c.id).where(head.c.id == HEAD_ID)) is not None:
        return
    stored = await conn.scalar(select(func.count()).select_from(records))
    anchored = await conn.scalar(select(func.count()).select_from(checkpoints))
    if not stored and not anchored:  # a head recreated over existing records would hide what happened to it
        await conn.execute(insert(head).values(id=HEAD_ID, seq=0, hash=GENESIS))


def _add_new_columns(conn: Connection) -> None:
    """Add the records columns a store made by an earlier version lacks (``client_request_id``): nullable, so the
    records already there keep their hashes (:data:`~auth.audit.entry.HASHED_WHEN_SET`)."""
    schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
    present = {column["name"] for column in inspect(conn).get_columns(records.name, schema=schema)}
    preparer = conn.dialect.identifier_preparer
    table = (
        preparer.quote(records.name)
        if schema is None
        else f"{preparer.quote_schema(schema)}.{preparer.quote(records.name)}"
    )
    for column in records.c:
        if column.name not in present and column.nullable:
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {preparer.quote(column.name)} {kind}")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where the chain ends: the last record's ``seq`` and ``hash`` (``0`` and :data:`GENESIS` when empty)."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Links:
    """Entries chained after ``after``: their records rows, and the head they leave."""

    after: ChainHead
    rows: list[dict[str, Any]]
    head: ChainHead

    def moves(self) -> dict[str, Any]:
        """The parameters of :data:`ADVANCE_HEAD`: from ``after`` to ``head``."""
        return {
            "from_seq": self.after.seq,
            "from_hash": self.after.hash,
            "to_seq": self.head.seq,
            "to_hash": self.head.hash,
        }


def link(after: ChainHead, entries: Sequence[AuditEntry], key: bytes | None = None) -> Links:
    """Chain ``entries`` after ``after``, in order: each record's ``prev_hash`` is the hash before it (hashes sealed
    with ``key``, if any)."""
    seq, prev_hash = after.seq, after.hash
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        values = entry_values(entry)
        hash_ = values_hash(seq, values, prev_hash, key)
        rows.append(row_of(seq, values, prev_hash, hash_))
        prev_hash = hash_
    return Links(after, rows, ChainHead(seq, prev_hash))


_HEAD = select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID)
_TOUCH_HEAD = update(head).where(head.c.id == HEAD_ID).values(seq=head.c.seq)
_LOCK_HEAD = _HEAD.with_for_update()
_INSERT_RECORDS = insert(records)
_MOVE_HEAD = (
    update(head)
    .where(head.c.id == HEAD_ID)
    .values(seq=bindparam("to_seq", type_=BigInteger), hash=bindparam("to_hash", type_=String))
)
ADVANCE_HEAD = _MOVE_HEAD.where(
    head.c.seq == bindparam("from_seq", type_=BigInteger), head.c.hash == bindparam("from_hash", type_=String)
)
"""Move the head from ``from_seq``/``from_hash`` to ``to_seq``/``to_hash``: one row updated, none if it is elsewhere."""


def _check_seal(conn: Connection, at: ChainHead, key: bytes | None) -> None:
    """Refuse to chain after a last record that does not hash under ``key`` (nothing to check when the chain is
    empty or its records were all pruned)."""
    if at.seq == 0:
        return
    row = conn.execute(select(records).where(records.c.seq == at.seq)).one_or_none()
    if row is not None and record_hash(row.seq, entry_of(row), row.prev_hash, key) != row.hash:
        raise ChainSealMismatch(at.seq)


def check_seal(conn: Connection, key: bytes | None) -> None:
    """Check, without walking the chain, that this writer may append to it: the head is there, and the record it
    names and the last checkpoint hash under ``key`` (:class:`ChainHeadMissing`, :class:`ChainSealMismatch`).

    What :func:`append` checks of the record before each append it does not know the head of, done when the log
    opens, so that a wrong key shows at start-up rather than at the first disclosure. A chain whose records were
    all pruned is checked by its last checkpoint; an empty one has nothing to check.
    """
    row = conn.execute(_HEAD).one_or_none()
    if row is None:  # create_store makes one for an empty store: records or checkpoints without it were tampered with
        raise ChainHeadMissing
    _check_seal(conn, ChainHead(int(row.seq), str(row.hash)), key)
    last = conn.execute(select(checkpoints).order_by(checkpoints.c.number.desc()).limit(1)).one_or_none()
    if last is not None:
        checkpoint = checkpoint_of(last)
        if checkpoint_hash(checkpoint, key) != checkpoint.hash:
            raise ChainSealMismatch(checkpoint.through_seq, checkpoint=checkpoint.number)


def _locked_head(conn: Connection) -> ChainHead:
    if conn.dialect.name == "sqlite":
        conn.execute(_TOUCH_HEAD)
        row = conn.execute(_HEAD).one_or_none()
    else:
        row = conn.execute(_LOCK_HEAD).one_or_none()
    if row is None:
        raise ChainHeadMissing
    return ChainHead(int(row.seq), str(row.hash))


async def lock_head(conn: AsyncConnection) -> ChainHead:
    """Lock the chain head until the transaction ends and return it."""
    return await conn.run_sync(_locked_head)


class Statement:
    """A statement compiled once for a dialect, with what its driver call needs: the SQL text and, per call, the
    parameters in the driver's style (a tuple in bind order, or a dict)."""

    def __init__(self, statement: Any, dialect: Dialect, schema_translate_map: Mapping[str | None, str] | None) -> None:
        translate = schema_translate_map is not None  # the schema in the text, not a placeholder filled per execution
        compiled = statement.compile(
            dialect=dialect, schema_translate_map=schema_translate_map, render_schema_translate=translate
        )
        self.sql = str(compiled)
        self._defaults: dict[str, Any] = dict(compiled.params)
        self._order: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._processors: dict[str, Callable[[Any], Any]] = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        bound = {**self._defaults, **values}
        for name, processor in self._processors.items():
            bound[name] = processor(bound[name])
        return bound if self._order is None else tuple(bound[name] for name in self._order)


class DriverAppend:
    """The usual append -- the head is still where this writer left it -- on the driver's own cursor.

    Its two statements (:data:`ADVANCE_HEAD`, :data:`_INSERT_RECORDS`) are compiled once for the store's dialect,
    with SQLAlchemy's bind processing of each column, so a commit makes two driver calls and no SQLAlchemy
    execution (which costs more than the driver's work on an append of a few records)::

        driver = DriverAppend(engine.dialect, schema_translate_map)
        if not driver.run(cursor, linked):    # another writer moved the head: nothing was written
            ...
    """

    def __init__(self, dialect: Dialect, schema_translate_map: Mapping[str | None, str] | None = None) -> None:
        self._advance = Statement(ADVANCE_HEAD, dialect, schema_translate_map)
        self._insert = Statement(_INSERT_RECORDS, dialect, schema_translate_map)

    def run(self, cursor: DBAPICursor, linked: Links) -> bool:
        """Move the head from ``linked.after`` to ``linked.head`` and insert ``linked.rows``; ``False`` when the head
        is elsewhere (nothing is written, though the transaction may hold the lock: roll it back)."""
        cursor.execute(self._advance.sql, self._advance.parameters(linked.moves()))
        if cursor.rowcount != 1:
            return False
        rows: Any = [self._insert.parameters(row) for row in linked.rows]  # all tuples, or all dicts
        cursor.executemany(self._insert.sql, rows)
        return True


def append(
    conn: Connection,
    entries: Sequence[AuditEntry],
    linked: Links | None = None,
    driver: DriverAppend | None = None,
    key: bytes | None = None,
) -> ChainHead:
    """Chain ``entries`` after the head, in order; return the new head.

    ``linked``: the same entries already chained after the head this writer last left. While the store's head is
    still that one, a single conditional ``UPDATE`` both moves it and takes its lock (the row lock; on SQLite the
    database's write lock), and the rows go in as they are. Otherwise -- another writer appended meanwhile, or the
    head is gone -- the head is locked and read as usual and the entries are chained after it. ``driver``: run that
    conditional ``UPDATE`` and the ``INSERT`` on the driver's cursor (:class:`DriverAppend`). ``key``: the chain's
    seal key; the record the locked head names must hash under it (:class:`ChainSealMismatch` otherwise).
    """
    if linked is not None and driver is not None:
        cursor = conn.connection.cursor()
        try:
            if driver.run(cursor, linked):
                return linked.head
        finally:
            cursor.close()
    elif linked is not None and conn.execute(ADVANCE_HEAD, linked.moves()).rowcount == 1:
        conn.execute(_INSERT_RECORDS, linked.rows)
        return linked.head
    after = _locked_head(conn)
    _check_seal(conn, after, key)
    links = link(after, entries, key)
    conn.execute(_INSERT_RECORDS, links.rows)
    conn.execute(_MOVE_HEAD, {"to_seq": links.head.seq, "to_hash": links.head.hash})
    return links.head


async def read_checkpoints(conn: AsyncConnection) -> list[Checkpoint]:
    """Every checkpoint, oldest first."""
    result = await conn.execute(select(checkpoints).order_by(checkpoints.c.number))
    return [checkpoint_of(row) for row in result]


async def stored_records(conn: AsyncConnection, *, through: int | None = None) -> AsyncIterator[Any]:
    """The records rows in seq order (up to ``through``), read a page at a time."""
    last: int | None = None
    while True:
        stmt = select(records).order_by(records.c.seq).limit(PAGE)
        if last is not None:
            stmt = stmt.where(records.c.seq > last)
        if through is not None:
            stmt = stmt.where(records.c.seq <= through)
        rows = (await conn.execute(stmt)).all()
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        last = rows[-1].seq


async def walk_store(conn: AsyncConnection, key: bytes | None = None) -> VerifyReport:
    """Check the checkpoints, every record up to the head, and the head (hashes sealed with ``key``, if any)."""
    head_row = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID))).one_or_none()
    walk = ChainWalk(key)
    for checkpoint in await read_checkpoints(conn):
        if not walk.checkpoint(checkpoint):
            return walk.report()
    # records appended after the head was read belong to a later verify
    async for row in stored_records(conn, through=None if head_row is None else head_row.seq):
        if not walk.record(row.seq, entry_of(row), row.prev_hash, row.hash):
            return walk.report()
    walk.end(*(head_row if head_row is not None else (None, None)))
    return walk.report()
