"""The request's id: the gateway's own, never the client's.

Every request gets a fresh id (uuid4 hex) in ``scope["state"]["request_id"]``, sent back in the response's
``X-Request-Id``; the audit records it as ``request_id``. The client's own ``X-Request-Id``, if any, is kept apart as
``client_request_id``: sanitized and cut to :data:`~auth.audit.entry.CLIENT_REQUEST_ID_MAX` characters, since the
client chooses it (two requests may send the same one, or one shaped to look like another's)::

    app = RequestIds(app)
    request.state.request_id, request.state.client_request_id   # "3f2b...", "req-7" (or None)
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.audit.entry import CLIENT_REQUEST_ID_MAX

__all__ = ["RequestIds", "client_request_id"]

_NOT_IN_AN_ID = re.compile(r"[^A-Za-z0-9._:/+=@~-]")


def client_request_id(value: str | None) -> str | None:
    """The part of a client's ``X-Request-Id`` the audit keeps: letters, digits and ``._:/+=@~-``, at most
    :data:`~auth.audit.entry.CLIENT_REQUEST_ID_MAX` of them; ``None`` when nothing is left.

    >>> client_request_id("req-7"), client_request_id("a b\\r\\nX-Forged: 1"), client_request_id(" ")
    ('req-7', 'abX-Forged:1', None)
    """
    if value is None:
        return None
    return _NOT_IN_AN_ID.sub("", value)[:CLIENT_REQUEST_ID_MAX] or None


class RequestIds:
    """Give each HTTP request the gateway's id, keep the client's apart, and answer with the gateway's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = client_request_id(Headers(scope=scope).get("x-request-id"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
