"""Retention: delete the records older than the retention period and leave an anchored checkpoint in their place.

A prune deletes a prefix of the chain (records ``1..N`` whose ``at`` is before the cutoff; a later record written
with an earlier ``at`` waits for the next prune rather than leave a hole) and, in the same transaction, writes a
checkpoint naming seq ``N`` and its hash. The records about to go are checked first: a prune never launders a
tampered record, it refuses and says where the chain is broken.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.audit.chain import GENESIS, ChainWalk, Checkpoint
from auth.audit.store import ChainHeadMissing, lock_head, read_checkpoints, stored_records
from auth.audit.tables import HEAD_ID, checkpoints, entry_of, head, records

__all__ = ["PruneReport", "prune_store"]

_PRUNE_LOCK = 0x6F6E_6577_7072_756E  # "onewprun": one prune at a time per PostgreSQL database


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune did: ``pruned`` records up to ``through_seq`` were older than ``cutoff``; ``checkpoint`` is the
    number of the checkpoint that anchors them. ``refused`` says why nothing was deleted although records were due.

    >>> at = dt.datetime(2026, 7, 3, tzinfo=dt.UTC)
    >>> PruneReport(cutoff=at - dt.timedelta(days=183), at=at, pruned=0).summary()
    'pruned 0 records older than 2026-01-01T00:00:00Z'
    """

    cutoff: dt.datetime
    at: dt.datetime
    pruned: int
    through_seq: int | None = None
    anchor_hash: str | None = None
    checkpoint: int | None = None
    refused: str | None = None

    def summary(self) -> str:
        """One line for people."""
        cutoff = self.cutoff.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.refused:
            return f"prune refused, nothing deleted: {self.refused}"
        if not self.pruned:
            return f"pruned 0 records older than {cutoff}"
        return (
            f"pruned {self.pruned} records older than {cutoff} (seq up to {self.through_seq}); "
            f"checkpoint {self.checkpoint} anchors hash {self.anchor_hash}"
        )


async def _lock_prunes(conn: AsyncConnection) -> None:
    # Appends only touch the end of the chain, so on PostgreSQL a prune need not hold them up: it locks out other
    # prunes only. SQLite has one writer at a time anyway. Either way a store without its head is not pruned.
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_PRUNE_LOCK)))
        if await conn.scalar(select(head.c.id).where(head.c.id == HEAD_ID)) is None:
            raise ChainHeadMissing
    else:
        await lock_head(conn)


def _refused(cutoff: dt.datetime, now: dt.datetime, walk: ChainWalk) -> PruneReport:
    verdict = walk.report()
    return PruneReport(cutoff=cutoff, at=now, pruned=0, refused=f"record {verdict.first_broken}: {verdict.detail}")


async def prune_store(
    conn: AsyncConnection, *, cutoff: dt.datetime, now: dt.datetime, key: bytes | None = None
) -> PruneReport:
    """Delete the records before ``cutoff`` and write their checkpoint, in the caller's transaction (the chain sealed
    with ``key``, if any: the records are checked, and the checkpoint sealed, with it)."""
    await _lock_prunes(conn)
    first_kept = await conn.scalar(select(func.min(records.c.seq)).where(records.c.at >= cutoff))
    through = (first_kept - 1) if first_kept is not None else await conn.scalar(select(func.max(records.c.seq)))
    walk = ChainWalk(key)
    anchors = await read_checkpoints(conn)
    for checkpoint in anchors:
        if not walk.checkpoint(checkpoint):
            return _refused(cutoff, now, walk)
    if through is None or through < walk.next_seq:
        return PruneReport(cutoff=cutoff, at=now, pruned=0)
    async for row in stored_records(conn, through=through):
        if not walk.record(row.seq, entry_of(row), row.prev_hash, row.hash):
            return _refused(cutoff, now, walk)
    if walk.next_seq != through + 1:
        return PruneReport(cutoff=cutoff, at=now, pruned=0, refused=f"record {through}: sequence gap, it is missing")
    deleted = (await conn.execute(delete(records).where(records.c.seq <= through))).rowcount
    checkpoint = Checkpoint(
        number=anchors[-1].number + 1 if anchors else 1,
        through_seq=through,
        anchor_hash=walk.prev_hash,
        pruned=deleted,
        cutoff=cutoff,
        at=now,
        prev_hash=anchors[-1].hash if anchors else GENESIS,
    ).sealed(key)
    await conn.execute(
        insert(checkpoints).values(
            number=checkpoint.number,
            through_seq=checkpoint.through_seq,
            anchor_hash=checkpoint.anchor_hash,
            pruned=checkpoint.pruned,
            cutoff=checkpoint.cutoff.astimezone(dt.UTC),
            at=checkpoint.at.astimezone(dt.UTC),
            prev_hash=checkpoint.prev_hash,
            hash=checkpoint.hash,
        )
    )
    return PruneReport(
        cutoff=cutoff,
        at=now,
        pruned=deleted,
        through_seq=through,
        anchor_hash=checkpoint.anchor_hash,
        checkpoint=checkpoint.number,
    )
