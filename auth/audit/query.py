"""Reading the audit: who saw an applicant's data, what a member of staff looked at, newest first.

>>> AuditFilter(applicant="11010519491231002X", outcome="released")
AuditFilter(applicant='11010519491231002X', subject=None, department=None, since=None, until=None, outcome='released')
>>> mask_subject("zhang.wei")
'zh***ei'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.sql import ColumnElement

from auth.audit.entry import AuditEntry, Outcome, entry_values
from auth.audit.tables import entry_of, records

__all__ = ["MAX_QUERY_LIMIT", "AuditFilter", "AuditRecord", "mask_subject"]

MAX_QUERY_LIMIT = 1000
"""The most records one query returns; page on with ``before_seq``."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which records a query returns; every field given must match (``since`` inclusive, ``until`` exclusive).

    >>> AuditFilter(subject="zhang.wei", since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)).subject
    'zhang.wei'
    """

    applicant: str | None = None
    subject: str | None = None
    department: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    outcome: Outcome | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        """The ``WHERE`` conditions, each on an indexed column."""
        c = records.c
        clauses: list[ColumnElement[bool]] = []
        for column, value in (
            (c.applicant, self.applicant),
            (c.subject, self.subject),
            (c.department, self.department),
            (c.outcome, self.outcome),
        ):
            if value is not None:
                clauses.append(column == value)
        if self.since is not None:
            clauses.append(c.at >= _utc(self.since))
        if self.until is not None:
            clauses.append(c.at < _utc(self.until))
        return clauses

    def statement(self, *, limit: int, before_seq: int | None) -> Select[Any]:
        """The newest ``limit`` matching records with a seq below ``before_seq``."""
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_QUERY_LIMIT}, got {limit}")
        stmt = select(records).where(*self.clauses())
        if before_seq is not None:
            stmt = stmt.where(records.c.seq < before_seq)
        return stmt.order_by(records.c.seq.desc()).limit(limit)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"a filter's time must carry a time zone, got {value.isoformat()}")
    return value.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(AuditEntry):
    """One stored disclosure: what was disclosed to whom (the :class:`AuditEntry` fields) and its place in the chain
    (``seq``, ``hash``).

    >>> record = AuditRecord(dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC), "r-1", "zhang.wei", "clerk",
    ...     "oidc:province", "民政局", "A-07", "10.0.0.7", "Person", "11010519491231002X", ("name",), (), (),
    ...     ("civil_affairs",), "BJ2026000001", "released", seq=7, hash="9f" * 32)
    >>> record.for_citizen().subject
    'zh***ei'
    """

    seq: int
    hash: str

    @classmethod
    def from_row(cls, row: Any) -> AuditRecord:
        """The record a Core result row of the records table holds."""
        return cls(**entry_values(entry_of(row)), seq=row.seq, hash=row.hash)

    @property
    def entry(self) -> AuditEntry:
        """The disclosure as the gateway handed it over."""
        return AuditEntry(**entry_values(self))

    def for_citizen(self) -> AuditRecord:
        """This record as the applicant sees it in their own access log: staff subjects masked."""
        if self.principal_kind == "citizen":
            return self
        return dataclasses.replace(self, subject=mask_subject(self.subject))


def mask_subject(subject: str) -> str:
    """A member of staff's subject as a citizen sees it: the first and last two characters (``zh***ei``)."""
    if len(subject) <= 2:
        return "***"
    if len(subject) <= 4:
        return f"{subject[0]}***"
    return f"{subject[:2]}***{subject[-2:]}"
