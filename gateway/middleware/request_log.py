"""One log line per HTTP request, on the ``onewindow.requests`` logger.

Inside :class:`~gateway.middleware.request_id.RequestIds` (whose id it logs, and sets in
:data:`~gateway.observe.REQUEST_ID` for the department call lines the request causes) and outside the hardening
(so that a refused request has its line too)::

    app = RequestLog(app, trace_id=tracing.trace_id)   # trace_id: None when tracing is off

The line says who asked as a :func:`~gateway.logs.pseudonym` of the principal's subject, the route's path with its
values redacted (never the query string), the status, the outcome (``ok``, ``partial`` or the GraphQL error code a
request without data ended with, else ``http_<status>`` for a status of 400 or more) and the duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import pseudonym, redact
from gateway.observe import REQUEST_ID

__all__ = ["REQUESTS_LOG", "RequestLog"]

REQUESTS_LOG = logging.getLogger("onewindow.requests")


class RequestLog:
    """Write one line per HTTP request when ``onewindow.requests`` is enabled at INFO."""

    def __init__(self, app: ASGIApp, *, trace_id: Callable[[], str | None] | None = None) -> None:
        self.app = app
        self.trace_id = trace_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id: str | None = state.get("request_id")
        token = REQUEST_ID.set(request_id)
        if not REQUESTS_LOG.isEnabledFor(logging.INFO):
            try:
                await self.app(scope, receive, send)
            finally:
                REQUEST_ID.reset(token)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception escaping it is answered 500 by Starlette

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            REQUEST_ID.reset(token)
            self._log(scope, request_id, status, (time.perf_counter() - started) * 1000)

    def _log(self, scope: Scope, request_id: str | None, status: int, duration_ms: float) -> None:
        state = scope.get("state", {})
        outcome = state.get("outcome") or ("ok" if status < 400 else f"http_{status}")
        subject = getattr(scope.get("user"), "subject", None)
        principal = pseudonym(subject) if isinstance(subject, str) else None
        method = scope.get("method", "")
        path = redact(scope.get("path", ""))
        level = logging.INFO if status < 500 else logging.WARNING
        REQUESTS_LOG.log(
            level,
            "%s %s %d %s %.1fms",
            method,
            path,
            status,
            outcome,
            duration_ms,
            extra={
                "request_id": request_id,
                "principal": principal,
                "method": method,
                "path": path,
                "status": status,
                "outcome": outcome,
                "duration_ms": round(duration_ms, 2),
                "trace_id": self.trace_id() if self.trace_id is not None else None,
            },
        )
