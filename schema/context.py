"""What every resolver receives: the request's view of the sources, its principal's access, and its start time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info

from auth.access import Access
from auth.audit import AuditLog
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
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def principal(self) -> Principal:
        return self.access.principal


GatewayInfo = Info[GatewayContext, None]
