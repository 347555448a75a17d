"""The statements behind the audit: create the store, append to the chain under its lock, walk it to verify.

Appends are serialised across processes inside the committing transaction: on PostgreSQL (and other servers) the
chain-head row is read ``FOR UPDATE``; on SQLite, which locks the whole database, the transaction starts with a
write to the head row, which takes the database's write lock at once (what ``BEGIN IMMEDIATE`` would do) so that no
other process can append between the read of the head and the write of the new records. Each function runs inside
a transaction the caller opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from auth.audit.chain import GENESIS, ChainWalk, Checkpoint, VerifyReport, record_hash
from auth.audit.entry import AuditEntry
from auth.audit.tables import HEAD_ID, as_utc, checkpoints, entry_of, head, records, row_of

__all__ = [
    "PAGE",
    "ChainHeadMissing",
    "append",
    "create_store",
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


async def create_store(conn: AsyncConnection) -> None:
    """Create the tables that are missing and, for an empty store, the chain head."""
    # Gateways starting together: the first creates the tables, the others wait for its commit and find them.
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_DDL_LOCK)))
    elif conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    await conn.run_sync(SQLModel.metadata.create_all, tables=[records, head, checkpoints])
    if await conn.scalar(select(head.c.id).where(head.c.id == HEAD_ID)) is not None:
        return
    stored = await conn.scalar(select(func.count()).select_from(records))
    anchored = await conn.scalar(select(func.count()).select_from(checkpoints))
    if not stored and not anchored:  # a head recreated over existing records would hide what happened to it
        await conn.execute(insert(head).values(id=HEAD_ID, seq=0, hash=GENESIS))


async def lock_head(conn: AsyncConnection) -> tuple[int, str]:
    """Lock the chain head until the transaction ends and return its ``(seq, hash)``."""
    stmt = select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID)
    if conn.dialect.name == "sqlite":
        await conn.execute(update(head).where(head.c.id == HEAD_ID).values(seq=head.c.seq))
    else:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise ChainHeadMissing
    return int(row.seq), str(row.hash)


async def append(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> int:
    """Chain ``entries`` after the head, in order; return the new head's seq."""
    seq, prev_hash = await lock_head(conn)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        hash_ = record_hash(seq, entry, prev_hash)
        rows.append(row_of(seq, entry, prev_hash, hash_))
        prev_hash = hash_
    await conn.execute(insert(records), rows)
    await conn.execute(update(head).where(head.c.id == HEAD_ID).values(seq=seq, hash=prev_hash))
    return seq


async def read_checkpoints(conn: AsyncConnection) -> list[Checkpoint]:
    """Every checkpoint, oldest first."""
    result = await conn.execute(select(checkpoints).order_by(checkpoints.c.number))
    return [
        Checkpoint(
            number=row.number,
            through_seq=row.through_seq,
            anchor_hash=row.anchor_hash,
            pruned=row.pruned,
            cutoff=as_utc(row.cutoff),
            at=as_utc(row.at),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
        for row in result
    ]


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


async def walk_store(conn: AsyncConnection) -> VerifyReport:
    """Check the checkpoints, every record up to the head, and the head."""
    head_row = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID))).one_or_none()
    walk = ChainWalk()
    for checkpoint in await read_checkpoints(conn):
        if not walk.checkpoint(checkpoint):
            return walk.report()
    # records appended after the head was read belong to a later verify
    async for row in stored_records(conn, through=None if head_row is None else head_row.seq):
        if not walk.record(row.seq, entry_of(row), row.prev_hash, row.hash):
            return walk.report()
    walk.end(*(head_row if head_row is not None else (None, None)))
    return walk.report()
