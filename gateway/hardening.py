"""Production hardening, assembled from :class:`~gateway.config.SecurityConfig`.

Three pieces, wired in :func:`gateway.app.create_app`::

    schema = build_schema([functools.partial(ErrorCodes, debug=debug), *hardening_extensions(config.security)])
    graphql_app = GatewayGraphQL(schema, max_batch=config.security.limits.max_batch, ...)  # a HardenedGraphQL
    Starlette(..., middleware=hardening_middleware(config.security))

- :func:`hardening_extensions`: persisted queries, query limits and, in production, no introspection and no
  field suggestions ("Did you mean ...?" would reveal the schema introspection hides).
- :func:`hardening_middleware`: rate limit, CSRF prevention, body size limit (outermost first).
- :class:`HardenedGraphQL`: the view's share of GraphQL over HTTP: errors refused by the view are GraphQL JSON
  with a code, a batch is bounded before anything runs, a mutation over GET is 405, and a client accepting
  ``application/graphql-response+json`` gets that media type and 400 for a request error (nothing executed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.config import SecurityConfig
from gateway.errors import ConfigError
from gateway.extensions.limits import QueryLimits
from gateway.extensions.persisted import PersistedQueries, PersistedQueryStore, load_safelist
from gateway.middleware.body_limit import BodySizeLimit
from gateway.middleware.csrf import CSRFPrevention
from gateway.middleware.rate_limit import RateLimit

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "HardenedGraphQL",
    "HideSuggestions",
    "hardening_extensions",
    "hardening_middleware",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}

Context = TypeVar("Context")
RootValue = TypeVar("RootValue")
ExtensionFactory = Callable[[], SchemaExtension]


class HideSuggestions(SchemaExtension):
    """Strip "Did you mean ...?" from every error, so probing with misspelt names reveals nothing."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [_without_suggestions(error) for error in errors]


def _without_suggestions(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


def hardening_extensions(security: SecurityConfig) -> list[ExtensionFactory]:
    """Schema extension factories (one instance per request) for ``security``; state shared by requests (the APQ
    store, the safelist, the limits rule) is built here, once. Raises ``ConfigError`` for an unreadable safelist."""
    mode = security.persisted_queries
    safelist = load_safelist(security.safelist) if security.safelist is not None else None
    if mode == "safelist" and safelist is None:
        raise ConfigError("security.safelist", "persisted_queries: safelist needs a safelist file")
    store = PersistedQueryStore()

    def persisted() -> SchemaExtension:
        return PersistedQueries(mode, store=store, safelist=safelist)

    factories: list[ExtensionFactory] = [persisted, QueryLimits.factory(security.limits)]
    if security.production:
        factories += [DisableIntrospection, HideSuggestions]
    return factories


def hardening_middleware(security: SecurityConfig) -> list[Middleware]:
    """ASGI middleware for ``security``, outermost first: rate limit, CSRF prevention, body size limit."""
    middleware: list[Middleware] = []
    if security.rate_limit is not None or security.rate_limit_per_client is not None:
        middleware.append(
            Middleware(
                RateLimit,
                per_principal=security.rate_limit,
                per_client=security.rate_limit_per_client,
                storage=security.rate_limit_storage,
            )
        )
    if security.csrf:
        middleware.append(Middleware(CSRFPrevention))
    middleware.append(Middleware(BodySizeLimit, max_bytes=security.limits.max_body_bytes))
    return middleware


class _CodedHTTPException(HTTPException):
    def __init__(self, status_code: int, reason: str, code: str) -> None:
        super().__init__(status_code, reason)
        self.code = code


class HardenedGraphQL(GraphQL[Context, RootValue]):
    """Strawberry's ASGI view with the gateway's GraphQL-over-HTTP behaviour (see the module docstring).

    ``max_batch`` bounds the operations in one HTTP request; batching itself is on only when the schema's
    ``StrawberryConfig(batching_config=...)`` enables it (otherwise an array is refused with 400).
    """

    def __init__(self, *args: Any, max_batch: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_batch = max_batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self.respond(request)
        except ClientDisconnect:
            return  # the client left before its request was read: there is no one to answer
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The response to one HTTP request: run, errors refused by the view as GraphQL JSON, media type."""
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = self._error_response(request, exc)
        return _negotiated(request, response)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # a GET with only a persisted query's hash (no ``query``) is an operation, not a visit to GraphiQL
        return super().should_render_graphql_ide(request) and "extensions" not in request.query_params

    def _error_response(self, request: Request, exc: HTTPException) -> Response:
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        body = {"errors": [{"message": exc.reason, "extensions": {"code": code}}]}
        headers = {"allow": "POST" if request.method == "GET" else "GET, POST"} if exc.status_code == 405 else None
        return Response(json.dumps(body), exc.status_code, headers=headers, media_type="application/json")

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST" and "application/json" in parse_content_type(request.content_type or "")[0]:
            body: bytes = await request.get_body()
            if body.lstrip()[:1] == b"[":
                operations = self.parse_json(body)
                if isinstance(operations, list) and len(operations) > self.max_batch:
                    message = f"{len(operations)} operations in one request; at most {self.max_batch} are allowed."
                    raise _CodedHTTPException(400, message, "TOO_MANY_OPERATIONS")
                if self.schema.config.batching_config is None:
                    raise _CodedHTTPException(400, "Batching is not enabled.", "BATCHING_NOT_ENABLED")
        return await super().parse_http_body(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: RootValue | None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            if request_adapter.method == "GET" and _is_mutation_over_get(exc):
                message = "Mutations are not allowed over GET; use POST."
                raise _CodedHTTPException(405, message, "METHOD_NOT_ALLOWED") from exc
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        for error in processed.get("errors") or ():
            _code_syntax_error(error)
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            request.state.graphql_request_error = True
        return processed


def _code_syntax_error(error: object) -> None:
    """strawberry's ParserCache raises a syntax error past the schema extensions, so ErrorCodes never codes it."""
    if not isinstance(error, dict):
        return
    extensions = error.get("extensions") or {}
    if not extensions.get("code") and str(error.get("message", "")).startswith("Syntax Error"):
        error["extensions"] = {**extensions, "code": "GRAPHQL_PARSE_FAILED"}


def _is_mutation_over_get(exc: HTTPException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, InvalidOperationTypeError) and cause.operation_type == OperationType.MUTATION


def _negotiated(request: Request, response: Response) -> Response:
    """``application/graphql-response+json`` when the client accepts it: that media type, and 400 for a request
    error (nothing executed); legacy ``application/json`` clients keep 200 (GraphQL over HTTP, section 6.4)."""
    if response.media_type != "application/json" or GRAPHQL_RESPONSE_JSON not in request.headers.get("accept", ""):
        return response
    response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    if response.status_code == 200 and getattr(request.state, "graphql_request_error", False):
        response.status_code = 400
    return response
