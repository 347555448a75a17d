"""The gateway application: one factory, everything opened in the lifespan and closed there.

    config = load_config("onewindow.yaml")
    app = create_app(config)                 # nothing is connected yet
    uvicorn.run(app)                         # the lifespan opens every source, then serves /graphql

Routes: ``/graphql`` (GraphQL over HTTP, and GraphiQL when enabled), ``/healthz`` (the process is up),
``/readyz`` (each source: open, circuit breaker, maintenance; degraded sources listed), ``/metrics``
(Prometheus).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.base import Adapter
from adapters.registry import get_adapter_class
from cache import RecordCache
from gateway.config import GatewayConfig
from gateway.extensions.errors import ErrorCodes
from gateway.hardening import HardenedGraphQL, hardening_extensions, hardening_middleware
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.sources import SourceSet
from schema.context import GatewayContext
from schema.query import build_schema

__all__ = ["GatewayGraphQL", "build_adapters", "create_app"]

logger = logging.getLogger("onewindow")


def build_adapters(config: GatewayConfig) -> dict[str, Adapter]:
    """One adapter per configured source, constructed (not yet opened)."""
    return {name: get_adapter_class(src.kind)(name, src) for name, src in config.sources.items()}


class GatewayGraphQL(HardenedGraphQL[GatewayContext, None]):
    """Strawberry's ASGI GraphQL app with the gateway's per-request context."""

    async def get_context(self, request: Any, response: Any) -> GatewayContext:
        sources: SourceSet = request.app.state.sources
        return GatewayContext(sources=sources.for_request(), request=request, response=response)


def create_app(
    config: GatewayConfig,
    *,
    adapters: Mapping[str, Adapter] | None = None,
    debug: bool | None = None,
    graphiql: bool | None = None,
) -> Starlette:
    """Build the gateway for ``config``. Adapters may be given (tests, embedding); otherwise built from config."""
    debug = config.http.debug if debug is None else debug
    graphiql = config.http.graphiql if graphiql is None else graphiql
    security = config.security
    schema = build_schema([functools.partial(ErrorCodes, debug=debug), *hardening_extensions(security)])
    ide = "graphiql" if graphiql and not security.production else None
    graphql_app = GatewayGraphQL(schema, graphql_ide=ide, max_batch=security.limits.max_batch)

    metrics = GatewayMetrics()
    # Built here, not in the lifespan, so that a wrong cache setting fails when the app is built; it connects
    # lazily and is closed with the sources.
    cache = RecordCache(config.cache) if config.cache.enabled else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        built = adapters if adapters is not None else build_adapters(config)
        sources = SourceSet(config, built, metrics=metrics, cache=cache)
        try:
            await sources.open()
            app.state.sources = sources
            yield
        finally:
            await sources.aclose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        sources: SourceSet = request.app.state.sources
        report: dict[str, dict[str, Any]] = {}
        for name in config.sources:
            guard = sources.guards[name].status()
            if name in sources.open_errors:
                report[name] = {"status": "unavailable", "error": str(sources.open_errors[name]), **guard}
            elif guard["breaker"] != "closed":
                report[name] = {"status": "degraded", **guard}
            else:
                report[name] = {"status": "ready", **guard}
        # A department being down degrades answers but does not make this process unfit to serve: pulling every
        # replica out of the load balancer would turn one department's outage into the whole hall's.
        degraded = sorted(name for name, r in report.items() if r["status"] != "ready")
        return JSONResponse({"ready": True, "degraded": degraded, "sources": report})

    async def invalidate_hook(request: Request) -> Response:
        """A department says its data changed: ``POST /hooks/invalidate/<source>`` with its bearer token and
        ``{"key": "..."}`` (or ``{}`` for everything it provides). With Redis, every gateway process sees it."""
        name = request.path_params["source"]
        source = config.sources.get(name)
        if source is None or source.invalidation_token is None:
            return JSONResponse({"error": "no invalidation hook for this source"}, status_code=404)
        expected = f"Bearer {source.invalidation_token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse(
                {"error": "invalid token"}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="onewindow"'}
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(body, dict) or (key is not None and not isinstance(key, str)):
            return JSONResponse({"error": 'expected {"key": "..."} or {}'}, status_code=400)
        sources: SourceSet = request.app.state.sources
        return JSONResponse({"invalidated": await sources.invalidate(name, key)})

    async def home(request: Request) -> Response:
        return RedirectResponse(url="/graphql")

    routes = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint(metrics.registry)),
        Route("/hooks/invalidate/{source}", invalidate_hook, methods=["POST"]),
        Route("/", home),
    ]
    return Starlette(debug=debug, routes=routes, lifespan=lifespan, middleware=hardening_middleware(security))
