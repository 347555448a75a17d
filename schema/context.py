"""What every resolver receives: the request's view of the sources, its principal's access, and its start time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info

from auth.access import Access
from auth.audit import AuditEntry, AuditLog
from auth.policy import Policy
from auth.principal import Principal
from gateway.sources import RequestSources
from gateway.workflow import CaseWorkflow

__all__ = ["GatewayContext", "GatewayInfo", "request_access"]


@dataclass
class GatewayContext:
    """Built per request in ``get_context``; nothing here outlives the request."""

    sources: RequestSources
    access: Access
    audit: AuditLog | None = None
    request: Request | None = None
    response: Response | None = None
    # The case workflow (``workflow:``), when configured: its actions, calendar and case events.
    workflow: CaseWorkflow | None = None
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # Whether the answer may be kept whole (see cache.responses): set for a query asking only applicant lookups,
    # cleared by anything that makes the answer depend on the moment it is given.
    response_cacheable: bool = False
    time_dependent: bool = False
    # The audit entries written for this request's disclosures.
    disclosed: tuple[AuditEntry, ...] = ()

    @property
    def principal(self) -> Principal:
        return self.access.principal

    @property
    def now(self) -> dt.datetime:
        """The request's time, for values derived from it (a case's warning state): such an answer is not kept."""
        self.time_dependent = True
        return self.started


GatewayInfo = Info[GatewayContext, None]


def request_access(request: Request, policy: Policy) -> Access:
    """One request's :class:`Access`: its principal, its view of the sources (acting for that principal), its ids
    and whether the audit can record now. The same for a GraphQL request and a plain JSON one (``/prefill``)."""
    principal: Principal = request.user
    sources = request.app.state.sources.for_request(principal)
    sources.scope = principal.identity
    audit: AuditLog | None = request.app.state.audit
    state = request.state
    return Access(
        principal,
        policy,
        sources,
        request_id=state.request_id,
        client_request_id=state.client_request_id,
        client=request.client.host if request.client else None,
        audit_ready=(lambda: audit.healthy) if audit is not None else None,
    )
