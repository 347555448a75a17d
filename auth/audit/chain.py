"""The hash chain: how a record and a checkpoint are hashed, and how a stored chain is checked.

Each record's ``hash`` is the SHA-256 of a canonical encoding of its ``seq``, every :class:`AuditEntry` field and
``prev_hash`` (the hash of the record before it; :data:`GENESIS` for the first; a field added since the first
records, such as ``client_request_id``, only when set) -- or, in a *sealed* chain, its
HMAC-SHA256 under the seal key (``auth.audit.seal_key``), which the database does not hold: whoever can write the
database but not read the gateway's environment can then no longer rewrite a record and recompute the hashes after
it. The encoding is JSON with sorted
keys, no whitespace, UTF-8 text, tuples as lists and timestamps in UTC as ``2026-11-21T09:30:00.000000Z``::

    >>> at = dt.datetime(2026, 11, 21, 17, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    >>> canonical({"b": ("x",), "a": at})
    b'{"a":"2026-11-21T09:30:00.000000Z","b":["x"]}'

A prune deletes the oldest records and leaves a checkpoint holding the seq and hash of the last one deleted (the
anchor); checkpoints form their own chain, so editing, removing or reordering one breaks it. :class:`ChainWalk`
checks checkpoints oldest first, then the records from the last anchor on, then the chain head: an edited record
fails its hash, a removed one leaves a sequence gap, a moved one no longer links to the record before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auth.audit.entry import HASHED_WHEN_SET, AuditEntry, entry_values

__all__ = [
    "GENESIS",
    "ChainWalk",
    "Checkpoint",
    "VerifyReport",
    "canonical",
    "checkpoint_hash",
    "encode_value",
    "record_hash",
    "utc_text",
    "values_hash",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record and of the first checkpoint."""


def utc_text(value: dt.datetime) -> str:
    """The one text form of a timestamp in the chain: UTC, microseconds, ``Z``."""
    if value.tzinfo is None:
        raise ValueError(f"an audit timestamp must carry a time zone, got {value.isoformat()}")
    # isoformat: a third of strftime's cost, the same text for the years an audit holds ("+00:00" becomes "Z")
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def encode_value(value: object) -> str:
    """The JSON form of a value JSON has none for: a timestamp, as :func:`utc_text` (``json.dumps(default=...)``)."""
    if isinstance(value, dt.datetime):
        return utc_text(value)
    raise TypeError(f"{type(value).__name__} has no canonical encoding")


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: sorted-key compact JSON in UTF-8, timestamps as :func:`utc_text`."""
    return json.dumps(
        document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=encode_value
    ).encode()


def _digest(data: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def record_hash(seq: int, entry: AuditEntry, prev_hash: str, key: bytes | None = None) -> str:
    """The hash of the record ``seq`` holding ``entry`` and following ``prev_hash`` (sealed with ``key``, if any)."""
    return values_hash(seq, entry_values(entry), prev_hash, key)


def values_hash(seq: int, values: Mapping[str, Any], prev_hash: str, key: bytes | None = None) -> str:
    """:func:`record_hash` of an entry given as :func:`~auth.audit.entry.entry_values` (read once by a caller that
    also needs them for the row). A field of :data:`~auth.audit.entry.HASHED_WHEN_SET` counts only when set."""
    document = {name: value for name, value in values.items() if value is not None or name not in HASHED_WHEN_SET}
    return _digest(canonical({**document, "seq": seq, "prev_hash": prev_hash}), key)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one prune left: records up to ``through_seq`` (``pruned`` of them, older than ``cutoff``) were deleted
    at ``at``; ``anchor_hash`` is the hash of record ``through_seq``, which the next record's ``prev_hash`` names.

    >>> cp = Checkpoint(1, 40, "ab" * 32, 40, dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    ...                 dt.datetime(2026, 7, 3, tzinfo=dt.UTC), GENESIS).sealed()
    >>> cp.hash == checkpoint_hash(cp)
    True
    """

    number: int
    through_seq: int
    anchor_hash: str
    pruned: int
    cutoff: dt.datetime
    at: dt.datetime
    prev_hash: str
    hash: str = ""

    def sealed(self, key: bytes | None = None) -> Checkpoint:
        """This checkpoint with its hash computed (under the chain's seal ``key``, if any)."""
        return dataclasses.replace(self, hash=checkpoint_hash(self, key))


def checkpoint_hash(checkpoint: Checkpoint, key: bytes | None = None) -> str:
    """The hash of a checkpoint: every field but ``hash``, ``prev_hash`` included."""
    document = {f.name: getattr(checkpoint, f.name) for f in dataclasses.fields(checkpoint) if f.name != "hash"}
    return _digest(canonical(document), key)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of checking a chain.

    ``reason`` is one of ``"hash mismatch"``, ``"prev_hash does not link"``, ``"sequence gap"``,
    ``"checkpoint hash mismatch"``, ``"checkpoint does not link"``, ``"head mismatch"``; ``first_broken`` is the
    seq at which the chain first fails (for a gap, the first missing seq; for a checkpoint, the seq it anchors).
    ``last_hash`` is the hash the chain ends on: kept outside the database (a ticket, a signed log), it also shows
    a rewrite of the chain's end, which the chain itself cannot.

    >>> VerifyReport(ok=True, checked=3, first_broken=None, reason=None, first_seq=1, last_seq=3).summary()[:60]
    'audit chain ok: 3 records checked (seq 1-3), 0 checkpoints, '
    """

    ok: bool
    checked: int
    first_broken: int | None
    reason: str | None
    detail: str | None = None
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = GENESIS

    def summary(self) -> str:
        """One line for people: what was checked, or the first broken record and why."""
        if not self.ok:
            return f"audit chain BROKEN at record {self.first_broken}: {self.detail or self.reason}"
        span = f" (seq {self.first_seq}-{self.last_seq})" if self.first_seq is not None else ""
        return (
            f"audit chain ok: {self.checked} records checked{span}, {self.checkpoints} checkpoints, "
            f"last hash {self.last_hash}"
        )


class ChainWalk:
    """Checks a stored chain piece by piece, remembering the first break.

    Feed it every checkpoint (oldest first), then the records in seq order from the last checkpoint on, then the
    head; each call returns ``False`` once the chain is broken, so a caller can stop reading. ``key``: the seal key
    of a sealed chain.

    >>> walk = ChainWalk()
    >>> walk.end(head_seq=0, head_hash=GENESIS)
    True
    >>> walk.report().ok
    True
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key
        self.next_seq = 1
        self.prev_hash = GENESIS
        self._checkpoint_hash = GENESIS
        self._checkpoints = 0
        self._checked = 0
        self._first_seq: int | None = None
        self._broken: tuple[int, str, str] | None = None

    def _break(self, seq: int, reason: str, detail: str) -> bool:
        self._broken = (seq, reason, detail)
        return False

    def checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Check the next checkpoint; the records after it must then start at its anchor."""
        if self._broken:
            return False
        at = f"checkpoint {checkpoint.number} (through record {checkpoint.through_seq})"
        if checkpoint.prev_hash != self._checkpoint_hash or checkpoint.through_seq <= self.next_seq - 1:
            return self._break(
                checkpoint.through_seq, "checkpoint does not link", f"{at} does not link to the one before"
            )
        if checkpoint_hash(checkpoint, self._key) != checkpoint.hash:
            return self._break(checkpoint.through_seq, "checkpoint hash mismatch", f"{at}: hash mismatch")
        self._checkpoint_hash = checkpoint.hash
        self._checkpoints += 1
        self.next_seq = checkpoint.through_seq + 1
        self.prev_hash = checkpoint.anchor_hash
        return True

    def record(self, seq: int, entry: AuditEntry, prev_hash: str, hash_: str) -> bool:
        """Check the next record."""
        if self._broken:
            return False
        if seq > self.next_seq:
            detail = f"sequence gap: record {self.next_seq} is missing (the next stored is {seq})"
            return self._break(self.next_seq, "sequence gap", detail)
        if seq < self.next_seq:
            return self._break(seq, "sequence gap", f"sequence gap: record {seq} lies at or before an anchor")
        if prev_hash != self.prev_hash:
            after = "the checkpoint's anchor" if self._checked == 0 and self._checkpoints else f"record {seq - 1}"
            return self._break(seq, "prev_hash does not link", f"prev_hash does not link to {after}")
        if record_hash(seq, entry, prev_hash, self._key) != hash_:
            detail = "hash mismatch: the record was changed after it was written"
            if self._checked == 0:  # the first one checked: perhaps no record hashes under this key
                detail += " (or the chain is sealed with another auth.audit.seal_key, or none)"
            return self._break(seq, "hash mismatch", detail)
        if self._first_seq is None:
            self._first_seq = seq
        self._checked += 1
        self.next_seq = seq + 1
        self.prev_hash = hash_
        return True

    def end(self, head_seq: int | None, head_hash: str | None) -> bool:
        """Check that the chain head names the last record (records cut from the end leave the head ahead)."""
        if self._broken:
            return False
        last = self.next_seq - 1
        if head_seq is None or head_hash is None:
            return self._break(self.next_seq, "head mismatch", "head mismatch: the chain head row is missing")
        if head_seq > last:
            return self._break(
                self.next_seq, "sequence gap", f"sequence gap: records {self.next_seq}-{head_seq} are missing"
            )
        if head_seq != last or head_hash != self.prev_hash:
            return self._break(last, "head mismatch", f"head mismatch: the chain head does not name record {last}")
        return True

    def report(self) -> VerifyReport:
        """What was found so far."""
        last = self.next_seq - 1 if self._first_seq is not None else None
        if self._broken:
            seq, reason, detail = self._broken
            return VerifyReport(False, self._checked, seq, reason, detail, self._checkpoints, self._first_seq, last)
        return VerifyReport(
            True, self._checked, None, None, None, self._checkpoints, self._first_seq, last, self.prev_hash
        )
