"""The audit's three tables, as SQLModel tables, and the conversions between a stored row and an :class:`AuditEntry`
or a :class:`~auth.audit.chain.Checkpoint`.

``onewindow_audit_records``      one row per disclosure: ``seq``, the entry's fields, ``prev_hash``, ``hash``
                                 (a store made before ``client_request_id`` gains the column when it opens)
``onewindow_audit_head``         one row: the chain's last ``seq`` and ``hash``; appends lock it
``onewindow_audit_checkpoints``  one row per prune: the anchor (seq and hash of the last pruned record), chained

Timestamps are written in UTC; SQLite hands them back without a zone, PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, Table
from sqlmodel import Field, SQLModel

from auth.audit.chain import Checkpoint
from auth.audit.entry import CLIENT_REQUEST_ID_MAX, AuditEntry

__all__ = [
    "HEAD_ID",
    "CheckpointRow",
    "HeadRow",
    "RecordRow",
    "as_utc",
    "checkpoint_of",
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
    client_request_id: str | None = Field(default=None, max_length=CLIENT_REQUEST_ID_MAX)
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


def _column_value(value: Any) -> Any:
    # timestamps go in as UTC (SQLite keeps no zone); the entry's tuples go into JSON columns as lists
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return list(value) if isinstance(value, tuple) else value


def _python_value(value: Any) -> Any:
    # the reverse of _column_value: timestamps back in UTC, JSON lists back as tuples
    if isinstance(value, dt.datetime):
        return as_utc(value)
    return tuple(value) if isinstance(value, list) else value


def _values_of(row: Any, into: type[AuditEntry | Checkpoint]) -> dict[str, Any]:
    return {field.name: _python_value(getattr(row, field.name)) for field in dataclasses.fields(into)}


def row_of(seq: int, values: Mapping[str, Any], prev_hash: str, hash_: str) -> dict[str, Any]:
    """The records row for an entry given as :func:`~auth.audit.entry.entry_values` (for a Core ``INSERT``)."""
    row: dict[str, Any] = {"seq": seq}
    for name, value in values.items():
        row[name] = _column_value(value)
    row["prev_hash"] = prev_hash
    row["hash"] = hash_
    return row


def entry_of(row: Any) -> AuditEntry:
    """The :class:`AuditEntry` a records row holds (``row`` is a Core result row)."""
    return AuditEntry(**_values_of(row, AuditEntry))


def checkpoint_of(row: Any) -> Checkpoint:
    """The :class:`~auth.audit.chain.Checkpoint` a checkpoints row holds (``row`` is a Core result row)."""
    return Checkpoint(**_values_of(row, Checkpoint))
