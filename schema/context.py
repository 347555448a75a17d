"""What every resolver receives: the request's view of the sources, its principal's access, and its start time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info

from auth.access import Access
from auth.audit import AuditEntry, AuditLog
from auth.principal import Principal
from gateway.sources import RequestSources

__all__ = ["GatewayContext", "GatewayInfo"]


@dataclass
class GatewayContext:
    """Built per request in ``get_context``; nothing here outlives the request."""

    sources: RequestSources
    access: Access
    audit: AuditLog | None = None
    request: Request | None = None
    response: Response | None = None
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
