"""What the gateway hands the audit trail: one :class:`AuditEntry` per disclosure (one applicant, one request).

>>> entry = AuditEntry(at=dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC), request_id="r-1",
...     subject="zhang.wei", principal_kind="clerk", via="oidc:province", department="民政局", window="A-07",
...     client="10.0.0.7", entity="Person", applicant="11010519491231002X",
...     released=("name", "maritalStatus"), masked=("phone",), refused=("degrees",),
...     sources=("civil_affairs", "public_security"), purpose="BJ2026000001", outcome="partial")
>>> entry.outcome
'partial'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CLIENT_REQUEST_ID_MAX", "ENTRY_FIELDS", "HASHED_WHEN_SET", "AuditEntry", "Outcome", "entry_values"]

CLIENT_REQUEST_ID_MAX = 64
"""The longest ``client_request_id`` kept (see :mod:`gateway.middleware.request_id`)."""

# released: every asked field went out (some perhaps masked); partial: some were refused; refused: none went out;
Outcome = Literal["released", "partial", "refused"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One disclosure of one applicant's data to one principal in one request.

    ``request_id`` is the gateway's own id of the request (the ``X-Request-Id`` of its response);
    ``client_request_id`` the id the client sent in its ``X-Request-Id``, if any, sanitized: the client chooses it,
    so it correlates but proves nothing. ``released`` lists the fields whose values left the gateway (``masked`` is
    the subset that left masked); ``refused`` the fields withheld by policy; ``sources`` the source names that
    supplied released values.
    """

    at: dt.datetime
    request_id: str
    subject: str
    principal_kind: str
    via: str
    department: str | None
    window: str | None
    client: str | None
    entity: str
    applicant: str
    released: tuple[str, ...]
    masked: tuple[str, ...]
    refused: tuple[str, ...]
    sources: tuple[str, ...]
    purpose: str | None
    outcome: Outcome
    client_request_id: str | None = dataclasses.field(default=None, kw_only=True)


ENTRY_FIELDS = tuple(field.name for field in dataclasses.fields(AuditEntry))
"""The names of :class:`AuditEntry`'s fields, in order."""

HASHED_WHEN_SET = frozenset({"client_request_id"})
"""Fields added after the chain's first records: a record's hash covers them only when they are set, so records
written before them hash (and verify) as they always did."""


def entry_values(entry: AuditEntry) -> dict[str, Any]:
    """The entry's fields by name: those of :class:`AuditEntry` only, also for a record that extends it."""
    return {name: getattr(entry, name) for name in ENTRY_FIELDS}
