"""Rate limiting per principal and per client address, with the ``limits`` library's moving window.

Two budgets, either optional: one per principal (who the caller says they are; until the identity module lands,
a hash of the ``Authorization`` header, and no principal budget for anonymous calls) and one per client IP address
(``scope["client"]``: run uvicorn with ``--proxy-headers --forwarded-allow-ips`` behind a proxy). A request over
either budget is answered 429 with ``Retry-After`` and a ``RATE_LIMITED`` GraphQL error::

    app = RateLimit(app, per_principal="600/minute", per_client="1200/minute", storage="memory://")

``storage`` is ``memory://`` (one process) or a ``redis://`` / ``rediss://`` URL shared by every gateway process.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Collection

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ConfigError
from gateway.middleware import send_graphql_error

__all__ = ["RateLimit", "principal_of", "rate_limit_storage"]

_NAMESPACE = "onewindow"


def rate_limit_storage(url: str) -> Storage:
    """The ``limits`` async storage for ``memory://`` or ``redis[s]://...`` (through redis-py's asyncio client)."""
    key = "security.rate_limit_storage"
    uri = url if url.startswith("async+") else f"async+{url}"
    options: dict[str, str] = {"implementation": "redispy"} if url.startswith(("redis://", "rediss://")) else {}
    try:
        storage = storage_from_string(uri, **options)
    except Exception as exc:  # limits raises ConfigurationError or ValueError for an unusable URL
        raise ConfigError(key, f"{url!r} is not a usable rate limit storage: {exc}") from exc
    if not isinstance(storage, Storage):
        raise ConfigError(key, f"{url!r} is not an asynchronous rate limit storage")
    return storage


def _item(value: str | None, key: str) -> RateLimitItem | None:
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not a rate limit (use e.g. '600/minute')") from exc


def principal_of(scope: Scope) -> str | None:
    """Who the request claims to be: a hash of its ``Authorization`` header (never stored in clear), or ``None``."""
    authorization = Headers(scope=scope).get("authorization")
    if not authorization:
        return None
    return hashlib.sha256(authorization.encode()).hexdigest()[:32]


class RateLimit:
    """Answer 429 (``RATE_LIMITED``, ``Retry-After``) once a principal or a client address is over its budget."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_principal: str | None,
        per_client: str | None,
        storage: str = "memory://",
        paths: Collection[str] = ("/graphql",),
    ) -> None:
        self.app = app
        self.per_principal = _item(per_principal, "security.rate_limit")
        self.per_client = _item(per_client, "security.rate_limit_per_client")
        self.limiter = SlidingWindowCounterRateLimiter(rate_limit_storage(storage))
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            retry_after = await self._over_budget(scope)
            if retry_after is not None:
                message = f"Too many requests; try again in {retry_after} seconds."
                await send_graphql_error(send, 429, message, "RATE_LIMITED", [("retry-after", str(retry_after))])
                return
        await self.app(scope, receive, send)

    async def _over_budget(self, scope: Scope) -> int | None:
        """Seconds until the request would be allowed, or ``None`` when it is (and was counted)."""
        client = scope.get("client")
        budgets: list[tuple[RateLimitItem, str, str]] = []
        if self.per_client is not None and client:
            budgets.append((self.per_client, "client", str(client[0])))
        principal = principal_of(scope)
        if self.per_principal is not None and principal is not None:
            budgets.append((self.per_principal, "principal", principal))
        for item, kind, identity in budgets:
            if not await self.limiter.hit(item, _NAMESPACE, kind, identity):
                stats = await self.limiter.get_window_stats(item, _NAMESPACE, kind, identity)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
