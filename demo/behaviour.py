"""How a simulated department behaves (latency, failures) and what it counts, as one pure ASGI middleware.

Every demo department, SOAP or REST, is a Starlette app built by :func:`department_app`::

    counter = RequestCounter()
    app = department_app(routes, behaviour=DepartmentBehaviour(latency=0.05, failure_rate=0.1),
                         counter=counter, failure=lambda: JSONResponse({"error": "unavailable"}, 503))
    app.state.counter is counter     # also served as JSON at GET /__stats

Metadata requests (a WSDL, an OpenAPI document) are counted apart and never delayed or failed, so a gateway can
always start; every other request is a *call*: counted in ``total``, delayed by ``latency`` and failed with
probability ``failure_rate`` (drawn from a seeded RNG, so a run is repeatable).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["STATS_PATH", "DepartmentBehaviour", "DepartmentMiddleware", "RequestCounter", "department_app"]

STATS_PATH = "/__stats"
_TRACE_PARENTS_KEPT = 1000


@dataclass(frozen=True)
class DepartmentBehaviour:
    """Artificial ``latency`` in seconds before each call, and the share of calls that fail (0..1)."""

    latency: float = 0.0
    failure_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError("latency is a number of seconds, at least 0")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate is between 0 and 1")


class RequestCounter:
    """What a department received: ``total`` calls, ``failures`` injected, ``metadata`` fetches, the calls
    answered per operation (``operations["QueryPerson"]``), and the W3C ``traceparent`` headers of the latest calls
    that carried one (a traced gateway sends them)."""

    def __init__(self) -> None:
        self.total = 0
        self.failures = 0
        self.metadata = 0
        self.operations: Counter[str] = Counter()
        self.trace_parents: deque[str] = deque(maxlen=_TRACE_PARENTS_KEPT)

    def hit(self, operation: str) -> None:
        """Count one answered call of ``operation`` (called by the department's handler)."""
        self.operations[operation] += 1

    def reset(self) -> None:
        self.total = self.failures = self.metadata = 0
        self.operations.clear()
        self.trace_parents.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failures": self.failures,
            "metadata": self.metadata,
            "operations": dict(sorted(self.operations.items())),
        }

    def __repr__(self) -> str:
        return f"RequestCounter({self.snapshot()})"


class DepartmentMiddleware:
    """Pure ASGI middleware: answers ``GET /__stats``, counts, delays and fails calls as the behaviour says."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        behaviour: DepartmentBehaviour,
        counter: RequestCounter,
        failure: Callable[[], Response],
        is_metadata: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.behaviour = behaviour
        self.counter = counter
        self.failure = failure
        self.is_metadata = is_metadata
        self._rng = random.Random(behaviour.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STATS_PATH:
            await JSONResponse(self.counter.snapshot())(scope, receive, send)
            return
        if self.is_metadata(scope):
            self.counter.metadata += 1
            await self.app(scope, receive, send)
            return
        self.counter.total += 1
        for name, value in scope["headers"]:
            if name == b"traceparent":
                self.counter.trace_parents.append(value.decode("latin-1"))
        if self.behaviour.latency:
            await asyncio.sleep(self.behaviour.latency)
        if self.behaviour.failure_rate and self._rng.random() < self.behaviour.failure_rate:
            self.counter.failures += 1
            await self.failure()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def department_app(
    routes: Sequence[BaseRoute],
    *,
    behaviour: DepartmentBehaviour,
    counter: RequestCounter,
    failure: Callable[[], Response],
    is_metadata: Callable[[Scope], bool],
) -> Starlette:
    """A Starlette app of ``routes`` behind :class:`DepartmentMiddleware`; ``app.state.counter`` is ``counter``."""
    middleware = Middleware(
        DepartmentMiddleware, behaviour=behaviour, counter=counter, failure=failure, is_metadata=is_metadata
    )
    app = Starlette(routes=list(routes), middleware=[middleware])
    app.state.counter = counter
    app.state.behaviour = behaviour
    return app
