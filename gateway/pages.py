"""The gateway's browser pages, every asset served from the package (no request leaves the gateway's origin).

- GraphiQL at ``/graphql`` (``http.graphiql``, never in production): :func:`graphiql_page`, rendered by
  :class:`~gateway.hardening.HardenedGraphQL` in place of strawberry's page (which loads from a CDN and shows a
  blank page offline), with its vendored assets under ``/static/graphiql/`` (versions and licences in
  ``gateway/static/graphiql/README.md``).
- The clerk's console at ``/console`` (``http.console``; by default wherever GraphiQL is): a static page and one
  JavaScript module under ``/static/console/`` asking the same ``/graphql`` with the caller's credentials.

Each page is answered with a Content-Security-Policy allowing nothing but its own origin::

    routes += page_routes(graphiql=True, console=True)
    # GET /console -> the console, CSP "default-src 'none'; script-src 'self'; ..."
"""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["CONSOLE_CSP", "GRAPHIQL_CSP", "STATIC", "console_enabled", "graphiql_page", "page_routes"]

STATIC = Path(__file__).parent / "static"

_SELF_ONLY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONSOLE_CSP = f"{_SELF_ONLY}; style-src 'self'"
# GraphiQL's editor sets style attributes and its stylesheet embeds its fonts and icons as data: URLs; data: and
# inline styles are no other origin, so no request still leaves the page's own.
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-cache"}


def console_enabled(console: bool | None, *, graphiql: bool, production: bool) -> bool:
    """Whether ``/console`` is served: as configured, or by default wherever GraphiQL is (never in production).

    >>> console_enabled(None, graphiql=True, production=False), console_enabled(None, graphiql=True, production=True)
    (True, False)
    >>> console_enabled(True, graphiql=False, production=True)
    True
    """
    if console is not None:
        return console
    return graphiql and not production


@functools.cache
def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def graphiql_page() -> HTMLResponse:
    """GraphiQL's page, its assets at ``/static/graphiql/``."""
    return HTMLResponse(
        _page("graphiql/index.html"), headers={**_PAGE_HEADERS, "content-security-policy": GRAPHIQL_CSP}
    )


async def _console(request: Request) -> Response:
    return HTMLResponse(_page("console/index.html"), headers={**_PAGE_HEADERS, "content-security-policy": CONSOLE_CSP})


def page_routes(*, graphiql: bool, console: bool) -> list[BaseRoute]:
    """The routes of the enabled pages and of their assets (none for a page that is off)."""
    routes: list[BaseRoute] = []
    if graphiql:
        routes.append(Mount("/static/graphiql", StaticFiles(directory=STATIC / "graphiql"), name="graphiql"))
    if console:
        routes.append(Route("/console", _console, methods=["GET"]))
        routes.append(Mount("/static/console", StaticFiles(directory=STATIC / "console"), name="console"))
    return routes
