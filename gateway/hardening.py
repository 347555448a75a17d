"""Production hardening, assembled from :class:`~gateway.config.SecurityConfig`.

Three pieces, wired in :func:`gateway.app.create_app`::

    schema = build_schema([functools.partial(ErrorCodes, debug=debug), *hardening_extensions(config.security)])
    graphql_app = GatewayGraphQL(schema, max_batch=config.security.limits.max_batch, ...)  # a HardenedGraphQL
    Starlette(..., middleware=hardening_middleware(config.security))

- :func:`hardening_extensions`: persisted queries, query limits and, in production, no introspection and no
  field suggestions ("Did you mean ...?" would reveal the schema introspection hides).
- :func:`hardening_middleware`: rate limit, CSRF prevention, body size limit (outermost first).
- :class:`HardenedGraphQL`: GraphiQL's page with every asset served locally (:mod:`gateway.pages`), and the view's
  share of GraphQL over HTTP (the working draft's MUSTs and SHOULDs):

  ==========================================  ==============================  ==================================
  request                                     ``application/json`` answer     ``application/graphql-response+json``
  ==========================================  ==============================  ==================================
  data (even with field errors)               200                             200
  document fails to parse or validate,        200, ``errors`` only            400, ``errors`` only
  unknown operation, variables not coerced
  not a GraphQL request (bad JSON, no         400                             400
  ``query``, a parameter of the wrong type)
  mutation over GET                           405, ``Allow: POST``            405, ``Allow: POST``
  body not ``application/json`` (UTF-8)       415                             415
  ==========================================  ==============================  ==================================

  The media type is negotiated from ``Accept`` (q-values, the more specific range first): ``*/*`` alone gets
  ``application/json`` (what a legacy client sending its default expects), no ``Accept`` at all the spec's default
  since 2025, ``application/graphql-response+json``, and an ``Accept`` naming neither 406 before anything runs.
  Every JSON answer says ``charset=utf-8``; errors refused by the view are GraphQL JSON with a code, and a batch is
  bounded before anything runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import orjson
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
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.config import SecurityConfig
from gateway.errors import ConfigError
from gateway.extensions.limits import QueryLimits
from gateway.extensions.persisted import PersistedQueries, PersistedQueryStore, load_safelist
from gateway.middleware.body_limit import BodySizeLimit
from gateway.middleware.csrf import CSRFPrevention
from gateway.middleware.rate_limit import RateLimit
from gateway.pages import graphiql_page

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "JSON",
    "SSE",
    "HardenedGraphQL",
    "HideSuggestions",
    "encode_response",
    "hardening_extensions",
    "hardening_middleware",
    "response_media_type",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
SSE = "text/event-stream"
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
_UTF_8 = frozenset({"utf-8", "utf8"})

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
                key_secret=(
                    security.rate_limit_key_secret.get_secret_value().encode()
                    if security.rate_limit_key_secret is not None
                    else None
                ),
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
        media_type = response_media_type(request.headers.get("accept"))
        streaming = SSE in request.headers.get("accept", "")  # a subscription as server-sent events
        if media_type is None and not streaming and not (self.graphql_ide and self.should_render_graphql_ide(request)):
            message = f"Accept names neither {GRAPHQL_RESPONSE_JSON} nor {JSON}."
            response = _error(406, message, "NOT_ACCEPTABLE")  # nothing read, nothing run
        else:
            try:
                response = await self.respond(request)
            except ClientDisconnect:
                return  # the client left before its request was read: there is no one to answer
            response = _negotiated(request, response, media_type or JSON)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The response to one HTTP request, run, with the errors refused by the view as GraphQL JSON; its media type
        and status are settled by the caller (:meth:`__call__`) for every response, kept answers included."""
        try:
            adapter = self.request_adapter_class(request)
            operation = await self._plain_operation(adapter)
            if operation is not None:
                return await self._answer(request, adapter, operation)
            return await self.run(request)
        except HTTPException as exc:
            return self._error_response(request, exc)

    async def _plain_operation(self, request: Any) -> GraphQLRequestData | None:
        """The operation of the usual request -- a POST of one JSON object, answered with one JSON response -- read
        and checked as strawberry's view checks it; ``None`` for any other (a GET, a batch, a stream, a body that is
        not an object), which strawberry's ``run`` serves through :meth:`parse_http_body`."""
        if request.method != "POST" or self.schema.config.enable_experimental_incremental_execution:
            return None
        if self._get_stream_transport_from_headers(request.headers) is not None:
            return None
        body = await self._body(request)
        if body.lstrip()[:1] != b"{":
            return None
        operation = _request_data(self.parse_json(body))
        _check_operation_name(operation)
        return operation

    async def _answer(self, request: Request, adapter: Any, operation: GraphQLRequestData) -> Response:
        """strawberry's ``run`` for :meth:`_plain_operation`'s request: the same hooks in the same order, without
        working out again what kind of request it is (a WebSocket, GraphiQL's page, a batch, a stream)."""
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        root_value = await self.get_root_value(request)
        result = await self.execute_single(request, adapter, sub_response, context, root_value, operation)
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data=response_data, sub_response=sub_response)

    async def render_graphql_ide(self, request: Request) -> Response:
        # the gateway's own page, its assets served locally: strawberry's loads them from a CDN (blank offline)
        return graphiql_page()

    def encode_json(self, data: object) -> bytes:
        return encode_response(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # a GET with only a persisted query's hash (no ``query``) is an operation, not a visit to GraphiQL
        return super().should_render_graphql_ide(request) and "extensions" not in request.query_params

    def _error_response(self, request: Request, exc: HTTPException) -> Response:
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        headers = {"allow": "POST" if request.method == "GET" else "GET, POST"} if exc.status_code == 405 else None
        return _error(exc.status_code, exc.reason, code, headers)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        # the usual request, one JSON object answered in one response, is read by _plain_operation, not here
        if request.method == "POST":
            body: bytes = await self._body(request)
            start = body.lstrip()[:1]
            if start not in (b"{", b"["):  # JSON, perhaps, but not an object: a string, a number, null
                self.parse_json(body)  # 400 for what is not JSON at all
                raise _CodedHTTPException(400, _NOT_A_REQUEST, "BAD_REQUEST")
            if start == b"[":
                operations = self.parse_json(body)
                if isinstance(operations, list) and len(operations) > self.max_batch:
                    message = f"{len(operations)} operations in one request; at most {self.max_batch} are allowed."
                    raise _CodedHTTPException(400, message, "TOO_MANY_OPERATIONS")
                if self.schema.config.batching_config is None:
                    raise _CodedHTTPException(400, "Batching is not enabled.", "BATCHING_NOT_ENABLED")
                if not all(isinstance(operation, dict) for operation in operations):
                    raise _CodedHTTPException(400, _NOT_A_REQUEST, "BAD_REQUEST")
            request = _CheckedJson(request)
        requests = await super().parse_http_body(request)
        for one in requests if isinstance(requests, list) else [requests]:
            _check_operation_name(one)
        return requests

    async def _body(self, request: Any) -> bytes:
        """The body of a POST, once its media type is one the gateway reads: JSON in UTF-8 (415 otherwise)."""
        content_type, params = _media_type(request.content_type or "")
        if content_type != JSON:
            message = f"Send the GraphQL request as {JSON}" + (f", not {content_type}." if content_type else ".")
            raise _CodedHTTPException(415, message, "UNSUPPORTED_MEDIA_TYPE")
        charset = params.get("charset", "utf-8").lower()
        if charset not in _UTF_8:
            raise _CodedHTTPException(415, f"{JSON} is read in UTF-8, not {charset}.", "UNSUPPORTED_MEDIA_TYPE")
        body: bytes = await request.get_body()
        return body

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
            if isinstance(exc.__cause__, CannotGetOperationTypeError):  # a request error: nothing runs
                error = GraphQLError(exc.reason, extensions={"code": "OPERATION_RESOLUTION_FAILURE"})
                return ExecutionResult(data=None, errors=[error])
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        for error in processed.get("errors") or ():
            _code_syntax_error(error)
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            request.state.graphql_request_error = True
            processed.pop("data", None)  # a request error: nothing ran, so there is no data entry at all
        return processed


def encode_response(data: object) -> bytes:
    """A GraphQL answer as compact JSON in UTF-8 (non-ASCII as is, not ``\\u`` escapes), with orjson.

    A ``Decimal`` stays exact, as a string; dates and times are ISO 8601. What orjson cannot encode (an integer
    beyond 64 bits) goes through the standard library's encoder instead.

    >>> encode_response({"data": {"name": "张三", "amount": Decimal("1.10"), "ok": True}})
    b'{"data":{"name":"\xe5\xbc\xa0\xe4\xb8\x89","amount":"1.10","ok":true}}'
    """
    try:
        return orjson.dumps(data, default=_json_default)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode()


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # orjson encodes these itself; the fallback encoder does not
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _CheckedJson:
    """A POST as strawberry reads it once its Content-Type is checked: JSON, however the client spelt it."""

    content_type = JSON

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _request_data(data: object) -> GraphQLRequestData:
    """One operation of a JSON POST, its parameters checked as strawberry's view checks them (400 otherwise)."""
    if not isinstance(data, dict):
        raise _CodedHTTPException(400, _NOT_A_REQUEST, "BAD_REQUEST")
    for name, kind, article in (
        ("query", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
    ):
        if not isinstance(data.get(name), kind | None):
            message = f"The GraphQL operation's `{name}` must be {article} or null, if provided."
            raise _CodedHTTPException(400, message, "BAD_REQUEST")
    return GraphQLRequestData(
        query=data.get("query"),
        variables=data.get("variables"),
        operation_name=data.get("operationName"),
        extensions=data.get("extensions"),
        protocol="http",
    )


_NOT_A_REQUEST = "The body is not a GraphQL request: a JSON object with a query was expected."


def _check_operation_name(operation: GraphQLRequestData) -> None:
    if not isinstance(operation.operation_name, str | None):
        raise _CodedHTTPException(400, "operationName must be a string or null.", "BAD_REQUEST")
    if operation.operation_name == "":  # the spec: an empty operationName is no operationName
        operation.operation_name = None


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(json.dumps(body), status, headers=headers, media_type=f"{JSON}; charset=utf-8")


def _code_syntax_error(error: object) -> None:
    """The parse stage's cache raises a syntax error past the schema extensions, so ErrorCodes never codes it."""
    if not isinstance(error, dict):
        return
    extensions = error.get("extensions") or {}
    if not extensions.get("code") and str(error.get("message", "")).startswith("Syntax Error"):
        error["extensions"] = {**extensions, "code": "GRAPHQL_PARSE_FAILED"}


def _is_mutation_over_get(exc: HTTPException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, InvalidOperationTypeError) and cause.operation_type == OperationType.MUTATION


@functools.lru_cache(maxsize=256)
def response_media_type(accept: str | None) -> str | None:
    """The media type a GraphQL answer takes for this ``Accept``; ``None`` when it names neither (406).

    The acceptable type with the highest q wins, a type named outright before one reached by a wildcard, then the
    client's order; a range with ``q=0`` or another charset than UTF-8 excludes. ``*/*`` alone is what a legacy
    client sends by default, so it gets ``application/json``; no ``Accept`` at all gets the spec's default since
    2025.

    >>> response_media_type("application/graphql-response+json, application/json;q=0.9")
    'application/graphql-response+json'
    >>> response_media_type("*/*"), response_media_type(None)
    ('application/json', 'application/graphql-response+json')
    >>> response_media_type("application/graphql-response+json;q=0, application/json")
    'application/json'
    >>> response_media_type("text/html") is None
    True
    """
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON
    best: dict[str, tuple[float, int, int]] = {}  # media type -> (q, specificity, -position) of its best range
    for position, media_range in enumerate(accept.split(",")):
        name, params = _media_type(media_range.strip())
        if params.get("charset", "utf-8").lower() not in _UTF_8:
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            continue
        for media_type in (GRAPHQL_RESPONSE_JSON, JSON):
            specificity = _specificity(name, media_type)
            if specificity is None:
                continue
            rank = (q, specificity, -position)
            if media_type not in best or specificity > best[media_type][1]:  # the most specific range rules
                best[media_type] = rank
    acceptable = [(rank, media_type == JSON, media_type) for media_type, rank in best.items() if rank[0] > 0]
    return max(acceptable)[2] if acceptable else None


@functools.lru_cache(maxsize=256)
def _media_type(value: str) -> tuple[str, Mapping[str, str]]:
    """``type/subtype`` (lower case, as media types compare) and the parameters of a Content-Type or media range.

    Kept per header value: clients send the same few ``Content-Type`` and ``Accept`` values on every request."""
    name, params = parse_content_type(value)
    return name.strip().lower(), params


def _specificity(media_range: str, media_type: str) -> int | None:
    if media_range == media_type:
        return 2
    if media_range == "application/*":
        return 1
    return 0 if media_range == "*/*" else None


def _negotiated(request: Request, response: Response, media_type: str) -> Response:
    """A GraphQL JSON answer in ``media_type``; with ``application/graphql-response+json`` a request error (nothing
    executed) is 400, with ``application/json`` it stays 200 (GraphQL over HTTP, "Status Codes")."""
    content_type = response.headers.get("content-type", "")
    if _media_type(content_type)[0] != JSON:
        return response  # GraphiQL's page, or anything else that is not a GraphQL response
    response.headers["content-type"] = f"{media_type}; charset=utf-8"
    request_error = getattr(request.state, "graphql_request_error", False)
    if media_type == GRAPHQL_RESPONSE_JSON and response.status_code == 200 and request_error:
        response.status_code = 400
    return response
