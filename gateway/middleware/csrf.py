"""CSRF prevention for GraphQL over HTTP, after Apollo Server's ``csrfPrevention``.

A browser sends a cross-site GET, or a POST with a "simple" content type, without asking the server first (no CORS
preflight), so such a request could run an operation with the victim's cookies. Requests that could have been sent
that way must prove they were not, by carrying a header no simple request can set::

    app = CSRFPrevention(app)                       # guards /graphql
    # refused: GET /graphql?query={__typename}
    # allowed: the same GET with "X-OneWindow-Request: 1", or POST with Content-Type: application/json

A GET without a query string (GraphiQL's page) executes nothing and passes.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.middleware import send_graphql_error

__all__ = ["PREFLIGHT_HEADERS", "SIMPLE_CONTENT_TYPES", "CSRFPrevention"]

PREFLIGHT_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "x-onewindow-request")
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_MESSAGE = (
    "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Send it as a POST with "
    "'Content-Type: application/json', or with a non-empty 'X-OneWindow-Request' (or 'Apollo-Require-Preflight' "
    "or 'X-Apollo-Operation-Name') header."
)


class CSRFPrevention:
    """Refuse (400, ``CSRF_PREVENTED``) GraphQL requests a browser could send cross-site without a preflight."""

    def __init__(self, app: ASGIApp, *, paths: Collection[str] = ("/graphql",)) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths and _needs_preflight_proof(scope):
            headers = Headers(scope=scope)
            if not any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
                await send_graphql_error(send, 400, _MESSAGE, "CSRF_PREVENTED")
                return
        await self.app(scope, receive, send)


def _needs_preflight_proof(scope: Scope) -> bool:
    method = scope["method"]
    if method == "GET":
        return bool(scope.get("query_string"))
    if method != "POST":
        return False
    content_type = Headers(scope=scope).get("content-type")
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in SIMPLE_CONTENT_TYPES
