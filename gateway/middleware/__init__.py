"""Pure ASGI middleware that refuses hostile HTTP requests before the GraphQL view reads them.

Each refusal is a GraphQL-shaped JSON error with an ``extensions.code``, so a client handles it like any other::

    {"errors": [{"message": "Request body is larger than 100000 bytes.",
                 "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}

One concern per module: :mod:`~gateway.middleware.csrf`, :mod:`~gateway.middleware.body_limit`,
:mod:`~gateway.middleware.rate_limit`. :func:`gateway.hardening.hardening_middleware` assembles them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import Send

__all__ = ["graphql_error_body", "send_graphql_error"]


def graphql_error_body(message: str, code: str) -> bytes:
    """A GraphQL response carrying one request error (no ``data``: nothing was executed)."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


async def send_graphql_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Answer the request with ``status`` and a GraphQL error, without calling the application."""
    body = graphql_error_body(message, code)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
