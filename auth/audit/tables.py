"""The audit's three tables, as SQLModel tables, and the conversions between a stored row and an :class:`AuditEntry`.

``onewindow_audit_records``      one row per disclosure: ``seq``, the entry's fields, ``prev_hash``, ``hash``
``onewindow_audit_head``         one row: the chain's last ``seq`` and ``hash``; appends lock it
``onewindow_audit_checkpoints``  one row per prune: the anchor (seq and hash of the last pruned record), chained

Timestamps are written in UTC; SQLite hands them back without a zone, PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, Table
from sqlmodel import Field, SQLModel

from auth.audit.entry import AuditEntry, Outcome

__all__ = [
    "HEAD_ID",
    "CheckpointRow",
    "HeadRow",
    "RecordRow",
    "as_utc",
    "checkpoints",
    "entry_of",
    "head",
    "records",
    "row_of",
]

HEAD_ID = 1
"""The chain head's primary key: one chain per store."""


class RecordRow(SQLModel, table=True):
    """A stored disclosure. Indexed on what :class:`~auth.audit.query.AuditFilter` filters by, each together with
    ``seq`` so that "newest first" reads the index backwards."""

    __tablename__: ClassVar[str] = "onewindow_audit_records"
    __table_args__ = (
        Index("ix_onewindow_audit_applicant_seq", "applicant", "seq"),
        Index("ix_onewindow_audit_subject_seq", "subject", "seq"),
        Index("ix_onewindow_audit_department_seq", "department", "seq"),
        Index("ix_onewindow_audit_outcome_seq", "outcome", "seq"),
        Index("ix_onewindow_audit_at", "at"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    request_id: str
    subject: str
    principal_kind: str
    via: str
    department: str | None = None
    window: str | None = None
    client: str | None = None
    entity: str
    applicant: str
    released: list[str] = Field(sa_column=Column(JSON, nullable=False))
    masked: list[str] = Field(sa_column=Column(JSON, nullable=False))
    refused: list[str] = Field(sa_column=Column(JSON, nullable=False))
    sources: list[str] = Field(sa_column=Column(JSON, nullable=False))
    purpose: str | None = None
    outcome: str
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class HeadRow(SQLModel, table=True):
    """The chain head: appends lock this row and read the last hash from it, so writers in several processes
    extend one chain. It also lets :func:`verify` notice records cut from the end."""

    __tablename__: ClassVar[str] = "onewindow_audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class CheckpointRow(SQLModel, table=True):
    """What a prune left behind: the seq and hash of the last record it deleted, chained to the previous one."""

    __tablename__: ClassVar[str] = "onewindow_audit_checkpoints"

    number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    through_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    anchor_hash: str = Field(max_length=64)
    pruned: int = Field(sa_column=Column(BigInteger, nullable=False))
    cutoff: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel on table=True classes
    assert isinstance(table, Table)
    return table


records = _table(RecordRow)
head = _table(HeadRow)
checkpoints = _table(CheckpointRow)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp in UTC: SQLite hands them back without a zone; they were written in UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def row_of(seq: int, entry: AuditEntry, prev_hash: str, hash_: str) -> dict[str, Any]:
    """The values of the records row for ``entry`` (for a Core ``INSERT``)."""
    return {
        "seq": seq,
        "at": entry.at.astimezone(dt.UTC),
        "request_id": entry.request_id,
        "subject": entry.subject,
        "principal_kind": entry.principal_kind,
        "via": entry.via,
        "department": entry.department,
        "window": entry.window,
        "client": entry.client,
        "entity": entry.entity,
        "applicant": entry.applicant,
        "released": list(entry.released),
        "masked": list(entry.masked),
        "refused": list(entry.refused),
        "sources": list(entry.sources),
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "prev_hash": prev_hash,
        "hash": hash_,
    }


def entry_of(row: Any) -> AuditEntry:
    """The :class:`AuditEntry` a records row holds (``row`` is a Core result row)."""
    outcome: Outcome = row.outcome
    return AuditEntry(
        at=as_utc(row.at),
        request_id=row.request_id,
        subject=row.subject,
        principal_kind=row.principal_kind,
        via=row.via,
        department=row.department,
        window=row.window,
        client=row.client,
        entity=row.entity,
        applicant=row.applicant,
        released=tuple(row.released),
        masked=tuple(row.masked),
        refused=tuple(row.refused),
        sources=tuple(row.sources),
        purpose=row.purpose,
        outcome=outcome,
    )
