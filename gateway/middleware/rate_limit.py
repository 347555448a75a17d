"""Rate limiting per principal and per client address, with the ``limits`` library's sliding window counter.

Two budgets, either optional::

    app = RateLimit(app, per_principal="600/minute", per_client="1200/minute", storage="memory://")

**Per client** (``scope["client"]``'s address: run uvicorn with ``--proxy-headers --forwarded-allow-ips`` behind a
proxy): every request to a limited path is counted here, before anything else reads it -- with or without
credentials, and whether or not they are good. Bad credentials are refused later, but they have been counted
against the address that sent them.

**Per principal**: a request is counted against the *authenticated* principal, after its credentials are verified,
never against what it merely presents. The budget key is a SHA-256 of :attr:`Principal.identity
<auth.principal.Principal.identity>` (``via:subject``), so it does not matter which credential carried it::

    OIDC bearer JWT          oidc:<issuer name>:<sub>    every token of one subject from one issuer
    CAS session token        cas:<CAS user>              every session of that user
    API key (Authorization   api_key:<key subject>       every key issued to that subject, in either header
      or X-API-Key)

A forged, expired or unknown credential never reaches a principal's budget (it is refused with 401 first), so it
cannot spend or exhaust anyone else's; it counts only against the client address. A request without credentials
has only the per-client budget. The key is never the credential itself, nor a subject in clear (a subject may be
an ID number).

This middleware sits outside authentication, so it cannot see the principal itself: it leaves a
:class:`PrincipalBudget` in the scope (:data:`PRINCIPAL_BUDGET`), and the layer that knows the principal
(:class:`auth.backend.RequirePrincipal`) charges it with :func:`charge_principal`. A request over either budget is
answered 429 with ``Retry-After`` and a ``RATE_LIMITED`` GraphQL error.

``storage`` is ``memory://`` (one process) or a ``redis://`` / ``rediss://`` URL shared by every gateway process.
In memory the budgets are ``limits``' own storage (:class:`LocalBudgets`), counting a hit in one step.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Collection

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import RateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ConfigError
from gateway.middleware import send_graphql_error

__all__ = [
    "PRINCIPAL_BUDGET",
    "LocalBudgets",
    "PrincipalBudget",
    "RateLimit",
    "budget_key",
    "charge_principal",
    "rate_limit_storage",
]

_NAMESPACE = "onewindow"
PRINCIPAL_BUDGET = "onewindow.principal_budget"
"""The scope key under which :class:`RateLimit` leaves this request's :class:`PrincipalBudget`."""


class LocalBudgets(MemoryStorage):
    """``limits``' in-process storage (``memory://``) with its sliding-window hit counted in one step.

    The base class reads the two windows' counters, then increments the current one, through a chain of awaited
    storage calls (each wrapped again for its errors), and after every increment starts a task that sweeps every
    expired counter of every budget: two tasks and a pass over all budgets per request, most of a small request's
    rate limiting. Here a hit reads and counts in one synchronous step (nothing else runs on the loop between the
    check and the count, so no other hit can slip in between), and expired counters are swept at most once every
    :attr:`SWEEP_EVERY` seconds; a counter read after its expiry counts as zero meanwhile, as in the base class.
    Every other operation (window statistics for ``Retry-After``, clearing, resetting) is the base class's own.
    """

    SWEEP_EVERY = 5.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._sweep: asyncio.TimerHandle | None = None

    def _count(self, key: str, now: float) -> int:
        if self.expirations.get(key, 0) <= now:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            return 0
        return self.storage.get(key, 0)

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._count(previous_key, now)
        current = self._count(current_key, now)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
            return False
        if not current:
            self.expirations[current_key] = now + 2 * expiry  # the base class's lifetime: twice the window
        self.storage[current_key] = current + amount
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self.SWEEP_EVERY, self._swept)
        return True

    def _swept(self) -> None:
        self._sweep = None
        now = time.time()
        for key in [key for key, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)
        if self.expirations:
            self._sweep = asyncio.get_running_loop().call_later(self.SWEEP_EVERY, self._swept)


def rate_limit_storage(url: str) -> Storage:
    """The ``limits`` async storage for ``memory://`` (:class:`LocalBudgets`) or ``redis[s]://...`` (through
    redis-py's asyncio client)."""
    key = "security.rate_limit_storage"
    if url.removeprefix("async+").startswith("memory://"):
        return LocalBudgets()
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


def budget_key(identity: str, secret: bytes) -> str:
    """The storage key of a principal's budget: a keyed hash of its identity, which may hold an ID number (a plain
    hash of one could be reversed by trying every ID number).

    >>> key = budget_key("oidc:province:zhang.wei", b"k" * 32)
    >>> key == budget_key("oidc:province:zhang.wei", b"k" * 32) != budget_key("cas:zhang.wei", b"k" * 32)
    True
    """
    return hmac.new(secret, f"principal:{identity}".encode(), hashlib.sha256).hexdigest()[:32]


async def _hit(limiter: RateLimiter, item: RateLimitItem, kind: str, key: str) -> int | None:
    """Count one request; seconds until it would be allowed when over budget, ``None`` when it was counted."""
    if await limiter.hit(item, _NAMESPACE, kind, key):
        return None
    stats = await limiter.get_window_stats(item, _NAMESPACE, kind, key)
    return max(1, math.ceil(stats.reset_time - time.time()))


async def _too_many(send: Send, retry_after: int) -> None:
    message = f"Too many requests; try again in {retry_after} seconds."
    await send_graphql_error(send, 429, message, "RATE_LIMITED", [("retry-after", str(retry_after))])


class PrincipalBudget:
    """One request's access to the per-principal budget, left in its scope by :class:`RateLimit`."""

    def __init__(self, limiter: RateLimiter, item: RateLimitItem, secret: bytes) -> None:
        self._limiter = limiter
        self._item = item
        self._secret = secret

    async def charge(self, identity: str) -> int | None:
        """Count the request against ``identity`` (a verified principal's); seconds to wait when over budget."""
        return await _hit(self._limiter, self._item, "principal", budget_key(identity, self._secret))


async def charge_principal(scope: Scope, send: Send, identity: str) -> bool:
    """Charge the authenticated principal ``identity`` for this request, if a :class:`RateLimit` set a budget.

    ``False`` when it is over budget: the request has then been answered 429 and must go no further. Call it only
    with a verified principal's identity, never with something the request merely claims."""
    budget = scope.get(PRINCIPAL_BUDGET)
    if not isinstance(budget, PrincipalBudget):
        return True
    retry_after = await budget.charge(identity)
    if retry_after is None:
        return True
    await _too_many(send, retry_after)
    return False


class RateLimit:
    """Answer 429 (``RATE_LIMITED``, ``Retry-After``) once a client address or, once authenticated, a principal is
    over its budget (see the module docstring for who counts against what)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_principal: str | None,
        per_client: str | None,
        storage: str = "memory://",
        key_secret: bytes | None = None,
        paths: Collection[str] = ("/graphql",),
    ) -> None:
        self.app = app
        self.per_principal = _item(per_principal, "security.rate_limit")
        self.per_client = _item(per_client, "security.rate_limit_per_client")
        self.limiter = SlidingWindowCounterRateLimiter(rate_limit_storage(storage))
        if key_secret is None and not storage.startswith("memory://") and self.per_principal is not None:
            raise ConfigError(
                "security.rate_limit_key_secret",
                "required with a shared rate limit storage: processes sharing it key the principals' budgets alike",
            )
        # In memory, budgets live and die with this process: a random key of its own serves.
        self.key_secret = key_secret if key_secret is not None else secrets.token_bytes(32)
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            client = scope.get("client")
            if self.per_client is not None and client:
                retry_after = await _hit(self.limiter, self.per_client, "client", str(client[0]))
                if retry_after is not None:
                    await _too_many(send, retry_after)
                    return
            if self.per_principal is not None:
                scope[PRINCIPAL_BUDGET] = PrincipalBudget(self.limiter, self.per_principal, self.key_secret)
        await self.app(scope, receive, send)
