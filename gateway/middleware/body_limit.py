"""A bound on the request body, counted as it arrives.

A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked body is read up to the
limit and refused as soon as it passes it, so a client cannot make the gateway buffer an unbounded document::

    app = BodySizeLimit(app, max_bytes=100_000)     # 413 PAYLOAD_TOO_LARGE beyond 100 kB

The body is read here, then replayed to the application, which reads the whole of it anyway (a GraphQL request is
one JSON document).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware import send_graphql_error

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """Answer 413 (``PAYLOAD_TOO_LARGE``) to a request whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await send_graphql_error(send, 400, "Content-Length is not a number.", "BAD_REQUEST")
                return
            if too_large:
                await self._refuse(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the application see it
                await self.app(scope, _replay(message, receive), send)
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        message = f"Request body is larger than {self.max_bytes} bytes."
        await send_graphql_error(send, 413, message, "PAYLOAD_TOO_LARGE", [("connection", "close")])


def _replay(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
