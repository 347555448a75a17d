"""The audit trail as GraphQL: a citizen's own access log, and the supervisors' view of every disclosure.

{ myAccessLog(first: 20) { at subject department purpose released outcome } }          # a citizen
{ auditLog(filter: {applicant: "11010519491231002X"}) { seq at subject purpose hash } } # a supervisor
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import strawberry

from auth.audit import AuditFilter, AuditRecord, Outcome
from auth.policy import Reason
from auth.principal import PrincipalKind
from gateway.errors import AuditUnavailable, BadUserInput, Forbidden
from schema.context import GatewayInfo

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["AccessLogEntry", "AuditLogFilter", "AuditLogRecord", "audit_log", "my_access_log"]

MAX_AUDIT_PAGE = 200

_T = TypeVar("_T", bound="DataclassInstance")  # a strawberry type, which is a dataclass


@strawberry.type(description="Someone read your data: who (masked), when, for what purpose, which fields.")
class AccessLogEntry:
    at: dt.datetime
    subject: str = strawberry.field(description="The reader's account, masked for privacy.")
    kind: str
    department: str | None
    purpose: str | None = strawberry.field(description="The case number given as the purpose.")
    released: list[str]
    refused: list[str]
    outcome: str


@strawberry.type(description="One audit record, as stored in the hash chain.")
class AuditLogRecord:
    seq: int
    at: dt.datetime
    request_id: str
    client_request_id: str | None = strawberry.field(description="The client's own X-Request-Id, sanitized.")
    subject: str
    kind: str
    via: str
    department: str | None
    window: str | None
    client: str | None
    entity: str
    applicant: str
    released: list[str]
    masked: list[str]
    refused: list[str]
    sources: list[str]
    purpose: str | None
    outcome: str
    hash: str


@strawberry.input(description="Which audit records: every field given must match.")
class AuditLogFilter:
    applicant: str | None = None
    subject: str | None = None
    department: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    outcome: str | None = None


def _page(first: int) -> int:
    if not 0 < first <= MAX_AUDIT_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_AUDIT_PAGE}")
    return first


_RENAMED = {"kind": "principal_kind"}
"""GraphQL fields whose :class:`AuditRecord` attribute has another name."""


def _as(graphql_type: type[_T], record: AuditRecord) -> _T:
    """``record`` as ``graphql_type``: each of its fields read from the record, the record's tuples as lists."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(graphql_type):
        value = getattr(record, _RENAMED.get(field.name, field.name))
        values[field.name] = list(value) if isinstance(value, tuple) else value
    return graphql_type(**values)


async def my_access_log(info: GatewayInfo, first: int = 20, before: int | None = None) -> list[AccessLogEntry]:
    principal = info.context.principal
    if principal.kind is not PrincipalKind.CITIZEN or principal.id_number is None:
        raise Forbidden(Reason.NOT_OWN_DATA, "myAccessLog is a citizen's own log; supervisors use auditLog")
    audit = info.context.audit
    if audit is None:
        raise AuditUnavailable("no audit store is configured")
    records = await audit.access_log(principal.id_number, limit=_page(first), before_seq=before)
    return [_as(AccessLogEntry, r) for r in records]


async def audit_log(
    info: GatewayInfo, filter: AuditLogFilter | None = None, first: int = 50, before: int | None = None
) -> list[AuditLogRecord]:
    access = info.context.access
    principal = access.principal
    role = access.policy.config.supervisor_role
    if principal.kind is not PrincipalKind.OFFICER or not principal.has_role(role):
        raise Forbidden(Reason.ROLE_REQUIRED, f"auditLog is for officers holding the {role} role")
    audit = info.context.audit
    if audit is None:
        raise AuditUnavailable("no audit store is configured")
    given = filter or AuditLogFilter()
    if given.outcome is not None and given.outcome not in get_args(Outcome):
        raise BadUserInput(f"outcome is one of {', '.join(get_args(Outcome))}")
    try:
        wanted = AuditFilter(**dataclasses.asdict(given))
        records = await audit.query(wanted, limit=_page(first), before_seq=before)
    except ValueError as exc:
        raise BadUserInput(str(exc)) from None
    return [_as(AuditLogRecord, r) for r in records]
