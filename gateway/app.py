"""The gateway application: one factory, everything opened in the lifespan and closed there.

    config = load_config("onewindow.yaml")
    app = create_app(config)                 # nothing is connected yet
    uvicorn.run(app)                         # the lifespan opens every source, then serves /graphql

Routes: ``/graphql`` (GraphQL over HTTP, and GraphiQL when enabled), ``/healthz`` (the process is up, and its pid),
``/readyz`` (ready or not, 200 or 503; with the operator's credential also each source -- open, circuit breaker,
maintenance, credentials refused -- the degraded sources and the audit's state), ``/metrics`` (Prometheus; the
operator's credential unless ``http.metrics_public``). See :mod:`gateway.operator`. ``/console`` (the clerk's
console) and ``/static/...`` (its assets and GraphiQL's) where enabled: see :mod:`gateway.pages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute, request_response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from adapters.base import Adapter
from adapters.registry import get_adapter_class
from auth.audit import AuditLog
from auth.backend import GatewayAuthBackend, Identity, RequirePrincipal, unauthorized
from auth.cas import cas_routes
from auth.policy import Policy
from auth.purposes import Clock, utc_now
from cache import RecordCache
from cache.responses import CachedResponse, ResponseCache, stamps_of
from gateway.config import GatewayConfig
from gateway.errors import AuditUnavailable, ConfigError
from gateway.extensions.audit import AuditDisclosures
from gateway.extensions.errors import ErrorCodes
from gateway.extensions.responses import ResponseCacheability
from gateway.hardening import GRAPHQL_RESPONSE_JSON, SSE, HardenedGraphQL, hardening_extensions, hardening_middleware
from gateway.logs import install_redaction
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.middleware.request_id import RequestIds
from gateway.middleware.request_log import RequestLog
from gateway.operator import OperatorCredential
from gateway.pages import console_enabled, page_routes
from gateway.prefill_routes import prefill_endpoint, prefill_openapi
from gateway.probe import source_readiness
from gateway.sources import SourceSet
from gateway.workflow import CaseWorkflow
from schema.context import GatewayContext, request_access
from schema.federation import Subgraph
from schema.query import build_schema

if TYPE_CHECKING:
    from gateway.telemetry import Tracing

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "GatewayGraphQL", "build_adapters", "create_app", "serving_builder"]

YOUNG_COLLECTION_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation in a serving process (see :func:`create_app`)."""

logger = logging.getLogger("onewindow")


def build_adapters(config: GatewayConfig) -> dict[str, Adapter]:
    """One adapter per configured source, constructed (not yet opened)."""
    return {name: get_adapter_class(src.kind)(name, src) for name, src in config.sources.items()}


class GatewayGraphQL(HardenedGraphQL[GatewayContext, None]):
    """Strawberry's ASGI GraphQL app with the gateway's per-request context, and whole answers kept for hot
    documents (:mod:`cache.responses`) when ``responses`` is given."""

    def __init__(
        self,
        *args: Any,
        policy: Policy,
        responses: ResponseCache | None = None,
        metrics: GatewayMetrics | None = None,
        workflow: CaseWorkflow | None = None,
        **kwargs: Any,
    ) -> None:
        # Subscriptions (case events) over WebSocket (graphql-transport-ws) and over HTTP as server-sent events.
        kwargs.setdefault("subscription_protocols", (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL))
        super().__init__(*args, **kwargs)
        self.workflow = workflow
        self.policy = policy
        self.responses = responses
        self.metrics = metrics

    async def get_context(self, request: Any, response: Any) -> GatewayContext:
        if isinstance(request, WebSocket):  # RequestIds marks HTTP requests only
            request.state.request_id, request.state.client_request_id = uuid.uuid4().hex, None
        access = request_access(request, self.policy)
        sources = access.sources
        audit = request.app.state.audit
        context = GatewayContext(
            sources=sources, access=access, audit=audit, request=request, response=response, workflow=self.workflow
        )
        request.state.gateway_context = context
        return context

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        state = request.state
        state.results = getattr(state, "results", 0) + 1
        outcome = _outcome(result)
        if result.errors:
            state.result_errors = True
            state.outcome = outcome  # for the request's log line (gateway.middleware.request_log)
        if self.metrics is not None:
            self.metrics.graphql_request(outcome)
        return await super().process_result(request, result)

    async def respond(self, request: Request) -> Response:
        responses = self.responses
        key = await self._response_key(request) if responses is not None else None
        if key is None:
            return await super().respond(request)
        assert responses is not None
        hit = await responses.lookup(key)
        if hit is not None and await self._audited_again(request, hit):
            if self.metrics is not None:
                self.metrics.graphql_request("ok")
            return Response(hit.body, headers=dict(hit.headers))
        response = await super().respond(request)
        kept = self._keepable(request, response)
        if kept is not None:
            responses.store(key, kept)
        return response

    async def _response_key(self, request: Request) -> bytes | None:
        """The response cache key of an operation that may be answered whole: a single GET or POST operation."""
        if SSE in request.headers.get("accept", ""):
            return None  # a stream of events, never one answer to keep
        if request.method == "POST":
            body = await request.body()
            if body.lstrip()[:1] == b"[":  # a batch: its operations are answered one by one
                return None
        elif request.method == "GET" and ("query" in request.query_params or "extensions" in request.query_params):
            body = b""
        else:
            return None
        headers = request.headers
        parts = [
            request.method.encode(),
            request.scope.get("query_string", b""),
            headers.get("content-type", "").encode(),
            # the media type of the answer (see hardening._negotiated), not the whole Accept header
            b"graphql-response" if GRAPHQL_RESPONSE_JSON in headers.get("accept", "") else b"json",
            body,
        ]
        assert self.responses is not None
        return self.responses.key(request.user, parts)

    async def _audited_again(self, request: Request, hit: CachedResponse) -> bool:
        """A kept answer leaves only once its disclosures are committed for this request; otherwise it is not
        served (the request runs, and withholds what it cannot audit)."""
        audit: AuditLog | None = request.app.state.audit
        if not hit.disclosures or audit is None:
            return True
        try:
            request_id, client_request_id = _request_ids(request)
            again = hit.disclosed_again(
                request_id=request_id, client_request_id=client_request_id, client=_client(request)
            )
            await audit.write(again)
        except AuditUnavailable:
            return False
        return True

    def _keepable(self, request: Request, response: Response) -> CachedResponse | None:
        """What to keep of an answer just given, or ``None`` when it must not be kept: errors, a batch, values not
        fresh from the cache, a time-dependent value, roots other than applicant lookups, cookies."""
        state = request.state
        context: GatewayContext | None = getattr(state, "gateway_context", None)
        if (
            context is None
            or response.status_code != 200
            or getattr(state, "results", 0) != 1
            or getattr(state, "result_errors", False)
            or not context.response_cacheable
            or context.time_dependent
            or context.access.timed
            or not context.sources.all_cached
            or not context.sources.stamps
            or "set-cookie" in response.headers
        ):
            return None
        headers = tuple((k, v) for k, v in response.headers.items() if k != "content-length")
        return CachedResponse(bytes(response.body), headers, stamps_of(context.sources.stamps), context.disclosed)


def _outcome(result: ExecutionResult) -> str:
    """``ok``, ``partial`` (data with some errors), or the code of the first error of a request that has no data."""
    if not result.errors:
        return "ok"
    if result.data is not None:
        return "partial"
    extensions = result.errors[0].extensions or {}
    return str(extensions.get("code") or "ERROR")


def _tracing(config: GatewayConfig) -> Tracing:
    """The tracing ``tracing.enabled`` asks for; its packages are an optional extra, imported only then."""
    try:
        from gateway.telemetry import Tracing
    except ImportError as exc:
        raise ConfigError(
            "tracing.enabled", f"needs the tracing extra ({exc.name} is missing): pip install 'onewindow[tracing]'"
        ) from None
    return Tracing(config.tracing)


def _request_ids(request: Request) -> tuple[str, str | None]:
    """The gateway's id of the request and the client's (see :class:`~gateway.middleware.request_id.RequestIds`)."""
    state = request.state
    return state.request_id, state.client_request_id


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def create_app(
    config: GatewayConfig,
    *,
    adapters: Mapping[str, Adapter] | None = None,
    debug: bool | None = None,
    graphiql: bool | None = None,
    freeze_startup_objects: bool = False,
    tracing: Tracing | None = None,
    metrics: GatewayMetrics | None = None,
    subgraph: bool = False,
    clock: Clock = utc_now,
) -> Starlette:
    """Build the gateway for ``config``. Adapters may be given (tests, embedding); otherwise built from config.

    This is the one compile step of a configuration: everything that can be checked without a department is built
    here (schema and hardening, policy, identity and issuers, audit and cache settings, the safelist, rate limits,
    the adapters), so ``onewindow check`` -- which calls this and starts nothing -- accepts exactly the files
    ``onewindow serve`` does. A wrong setting raises :class:`~gateway.errors.ConfigError` naming its key.

    ``freeze_startup_objects`` (the gateway's own process: ``onewindow serve``, ``onewindow demo``): once the lifespan
    has opened everything, move every object built so far -- modules, the schema, parsed WSDLs, pools -- out of the
    cycle collector's generations (:func:`gc.freeze`), so that its full collections scan only what requests
    allocate. On the identity benchmark this took p99 from about 350 to 150 ms and throughput up by a tenth. The
    youngest generation is then collected every :data:`YOUNG_COLLECTION_THRESHOLD` allocations rather than 700: a
    request allocates thousands of short-lived objects, which die before a collection would find them (the person
    lookup: 0.84-0.86 to 0.77-0.79 ms of CPU per request at 10 000, bench/cpu_profile.py; 2.3 % fewer instructions
    again at 50 000, bench/instructions.py, with the same RSS after load). Left off where several apps share a
    process (tests), whose frozen objects would never be collected.

    ``metrics``: the counters to add to (by default new ones), so that the gateways of successive configurations
    (:mod:`gateway.reload`) count on from one another.

    ``subgraph``: serve ``/graphql`` as an Apollo Federation v2 subgraph of what this configuration's sources provide,
    for a province's router to compose (:mod:`schema.federation`).


    ``clock``: the time purposes are judged by (an intake's lifetime, a closed case's grace period); tests move it."""
    install_redaction()  # for the whole process: no record, whoever handles it, carries a personal value in clear
    if tracing is None and config.tracing.enabled:
        tracing = _tracing(config)
    debug = config.http.debug if debug is None else debug
    graphiql = config.http.graphiql if graphiql is None else graphiql
    security = config.security
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        functools.partial(ErrorCodes, debug=debug),
        *hardening_extensions(security),
        AuditDisclosures,
        ResponseCacheability,
    ]
    # The model (built-in and the configuration's additions) is built now, so that a wrong declaration fails when
    # the app is built; raw namespaces join it once their departments have described their records.
    federated = Subgraph.of(config) if subgraph else None
    schema = build_schema(extensions, config.catalog, subgraph=federated)
    ide = "graphiql" if graphiql and not security.production else None
    console = console_enabled(config.http.console, graphiql=ide is not None, production=security.production)
    # Built here so that a policy, issuer or key-store setting that is wrong fails when the app is built.
    policy = Policy(config, clock=clock)
    identity = Identity(config.auth, production=security.production)
    audit = AuditLog(config.auth.audit) if config.auth.audit is not None else None
    if tracing is not None:  # the gateway's own databases are traced like the departments'
        if audit is not None:
            audit.tracing = tracing
        if identity.api_keys is not None:
            identity.api_keys.tracing = tracing
    # Built here, not in the lifespan, so that a wrong cache setting fails when the app is built; it connects
    # lazily and is closed with the sources.
    cache = RecordCache(config.cache) if config.cache.enabled else None
    metrics = GatewayMetrics() if metrics is None else metrics
    # Built here so that a workflow naming a missing source or command fails when the app is built.
    workflow = CaseWorkflow(config) if config.workflow is not None else None
    responses = None
    if cache is not None and config.cache.responses.enabled:
        responses = ResponseCache(config.cache.responses, cache, metrics=metrics)
    graphql_app = GatewayGraphQL(
        schema,
        graphql_ide=ide,
        max_batch=security.limits.max_batch,
        policy=policy,
        responses=responses,
        metrics=metrics,
        workflow=workflow,
    )
    authenticated_graphql = AuthenticationMiddleware(
        RequirePrincipal(graphql_app, identity),
        backend=GatewayAuthBackend(identity),
        on_error=unauthorized(identity),  # type: ignore[arg-type]
    )

    # Constructed here, not in the lifespan, so that what an adapter checks when it is built (TLS files, credential
    # settings) fails when the app is built: ``onewindow check`` builds the app and starts nothing.
    unstarted: list[Mapping[str, Adapter]] = [adapters if adapters is not None else build_adapters(config)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A second start of the same app (tests) gets fresh adapters: the first start's were closed when it stopped.
        built = unstarted.pop() if unstarted else adapters if adapters is not None else build_adapters(config)
        sources = SourceSet(config, built, metrics=metrics, cache=cache, tracing=tracing)
        app.state.audit = audit
        thresholds = gc.get_threshold()
        try:
            with tracing.span("open stores") if tracing is not None else contextlib.nullcontext():
                await identity.open()
                if audit is not None:
                    await audit.open(retry=True)  # an unreachable store: start, withhold, reconnect
            await sources.open()
            raw = await sources.describe_raw()
            if raw and federated is None:  # raw namespaces are the city's own, never federated
                graphql_app.schema = build_schema(extensions, config.catalog, raw)
            app.state.sources = sources
            if workflow is not None:
                workflow.open(sources)
            app.state.workflow = workflow
            if freeze_startup_objects:
                gc.collect()
                gc.freeze()
                gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
            yield
        finally:
            if freeze_startup_objects:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
            await sources.aclose()
            if workflow is not None:
                await workflow.aclose()
            if audit is not None:
                await audit.aclose()
            await identity.aclose()
            if tracing is not None:
                # what this run traced leaves before it stops (a later start traces on); off the event loop, which
                # may serve the very collector the spans go to
                await asyncio.to_thread(tracing.flush)

    async def healthz(request: Request) -> Response:
        # the process that answered: which of several workers on one port (``onewindow serve --workers``)
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    operator = OperatorCredential(config.http.operator_token)

    async def readyz(request: Request) -> Response:
        details = operator.presented(request)
        if details is False:
            return operator.refusal()
        sources: SourceSet | None = getattr(request.app.state, "sources", None)
        # 503 only when this process must not get traffic: it has not finished starting, or its audit seal key
        # does not match the store (its own configuration, which no retry mends: a rolling deploy with a wrong key
        # then never takes traffic). A department being down degrades answers but does not make this process unfit
        # to serve: pulling every replica out of the load balancer would turn one department's outage into the
        # whole hall's. The same holds for an audit store that does not answer: every replica shares it, and what
        # is not personal can still be served.
        ready = sources is not None and not (audit is not None and audit.seal_mismatch)
        status = 200 if ready else 503
        if not details or sources is None:
            return JSONResponse({"ready": ready}, status_code=status)
        report: dict[str, dict[str, Any]] = {}
        for name in config.sources:
            # ready, degraded, unavailable, or credentials_refused (at open or the last call) with a hint
            report[name] = source_readiness(name, sources.guards[name], sources.open_errors.get(name))
        degraded = sorted(name for name, r in report.items() if r["status"] != "ready")
        # Without the audit store no personal value can leave (fail closed): say so, by name.
        audit_status = audit.status() if audit is not None else {"status": "off"}
        if audit is not None and not audit.healthy:
            degraded.insert(0, "audit")
        body = {"ready": ready, "degraded": degraded, "audit": audit_status, "sources": report}
        return JSONResponse(body, status_code=status)

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

    # /prefill answers only whom /graphql would: the same authentication, principal rate limit and Access.
    authenticated_prefill = AuthenticationMiddleware(
        RequirePrincipal(request_response(prefill_endpoint(config, policy)), identity),
        backend=GatewayAuthBackend(identity),
        on_error=unauthorized(identity),  # type: ignore[arg-type]
    )
    prefill_document = prefill_openapi(config)

    async def prefill_openapi_page(request: Request) -> Response:
        return JSONResponse(prefill_document)

    metrics_page = metrics_endpoint(metrics.registry)
    routes: list[BaseRoute] = [
        Route("/graphql", authenticated_graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", authenticated_graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_page if config.http.metrics_public else operator.required(metrics_page)),
        Route("/hooks/invalidate/{source}", invalidate_hook, methods=["POST"]),
        Route("/prefill/openapi.json", prefill_openapi_page),
        Route("/prefill/{form}/{applicant}", authenticated_prefill, methods=["GET"]),
        Route("/", home),
        *page_routes(graphiql=ide is not None, console=console),
    ]
    if identity.cas is not None:
        routes += cas_routes(identity.cas, identity.sessions)
    # the request's id first: a request refused by the hardening also answers with it
    middleware = [
        Middleware(RequestIds),
        Middleware(RequestLog, trace_id=tracing.trace_id if tracing is not None else None),
        *hardening_middleware(security),
    ]
    if tracing is not None:
        middleware.insert(0, tracing.middleware(routes))  # the request's span holds everything else
    application = Starlette(debug=debug, routes=routes, lifespan=lifespan, middleware=middleware)
    # Starlette builds its middleware on the first call; build it now so that a wrong rate limit or its storage
    # fails here, like every other setting, and not when the server starts.
    application.middleware_stack = application.build_middleware_stack()
    return application


def serving_builder(
    *, debug: bool | None = None, subgraph: bool = False, metrics: GatewayMetrics | None = None
) -> Callable[[GatewayConfig], Starlette]:
    """How a served process builds its gateway from each configuration it serves -- start-up's and every hot
    reload's (:mod:`gateway.reload`) -- in ``onewindow serve`` and each of its workers alike: the same options each
    time, and one set of counters (``metrics``, by default new ones) that every generation adds to, so that
    ``/metrics`` counts on across a reload.

        >>> build = serving_builder(subgraph=True)
        >>> build.keywords["metrics"] is build.keywords["metrics"] and build.keywords["subgraph"]
        True
    """
    counters = GatewayMetrics() if metrics is None else metrics
    return functools.partial(create_app, debug=debug, metrics=counters, subgraph=subgraph)
