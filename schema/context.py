"""What every resolver receives: the request's own view of the sources, and the time the request started."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info

from gateway.sources import RequestSources

__all__ = ["GatewayContext", "GatewayInfo"]


@dataclass
class GatewayContext:
    """Built per request in ``get_context``; nothing here outlives the request."""

    sources: RequestSources
    request: Request | None = None
    response: Response | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


GatewayInfo = Info[GatewayContext, None]
