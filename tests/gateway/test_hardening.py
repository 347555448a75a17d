"""Hostile requests against a real Starlette app: the gateway's hardening in front of a small schema whose
resolvers record every call, so "refused before execution" is checked as "no resolver ran"."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.http.ides import GraphQL_IDE
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from gateway.config import LimitsConfig, SecurityConfig
from gateway.errors import ConfigError
from gateway.extensions.documents import DocumentCache
from gateway.extensions.errors import ErrorCodes
from gateway.hardening import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    HardenedGraphQL,
    hardening_extensions,
    hardening_middleware,
)


def _record(info: Info, name: str) -> None:
    info.context["request"].app.state.calls.append(name)


@strawberry.type
class Item:
    @strawberry.field
    def name(self, info: Info) -> str:
        _record(info, "name")
        return "item"

    @strawberry.field
    def child(self, info: Info) -> Item:
        _record(info, "child")
        return Item()

    @strawberry.field
    def children(self, info: Info, first: int | None = None) -> list[Item]:
        _record(info, "children")
        return [Item() for _ in range(first or 2)]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, info: Info) -> str:
        _record(info, "hello")
        return "world"

    @strawberry.field
    def item(self, info: Info) -> Item:
        _record(info, "item")
        return Item()

    @strawberry.field
    def broken(self, info: Info) -> str | None:
        _record(info, "broken")
        raise ValueError("a department failed")

    @strawberry.field
    def required(self, info: Info) -> str:
        _record(info, "required")
        raise ValueError("a department failed")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self, info: Info) -> int:
        _record(info, "touch")
        return 1


Client = Callable[..., AsyncIterator[httpx.AsyncClient]]
JSON_HEADERS = {"content-type": "application/json"}


def make_app(security: SecurityConfig, *, batching: bool = True, ide: GraphQL_IDE | None = None) -> Starlette:
    config = StrawberryConfig(batching_config={"max_operations": 1000} if batching else None)
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=config,
        extensions=[
            lambda: DocumentCache(maxsize=16),
            functools.partial(ErrorCodes, debug=False),
            *hardening_extensions(security),
        ],
    )
    view: HardenedGraphQL[Any, None] = HardenedGraphQL(schema, graphql_ide=ide, max_batch=security.limits.max_batch)
    app = Starlette(
        routes=[Route("/graphql", view, methods=["GET", "POST"])], middleware=hardening_middleware(security)
    )
    app.state.calls = []
    return app


def security(**overrides: Any) -> SecurityConfig:
    limits = overrides.pop("limits", {})
    base: dict[str, Any] = {"rate_limit": None, "rate_limit_per_client": None, "persisted_queries": "apq"}
    return SecurityConfig.model_validate({**base, **overrides, "limits": limits})


@pytest.fixture
async def client() -> AsyncIterator[Callable[[SecurityConfig], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def _client(config: SecurityConfig, *, batching: bool = True, ide: GraphQL_IDE | None = None) -> httpx.AsyncClient:
        app = make_app(config, batching=batching, ide=ide)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        made = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        made.app = app  # type: ignore[attr-defined]
        clients.append(made)
        return made

    yield _client
    for made in clients:
        await made.aclose()


def calls(client: httpx.AsyncClient) -> list[str]:
    return client.app.state.calls  # type: ignore[attr-defined, no-any-return]


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/graphql", content=json.dumps(body), headers={**JSON_HEADERS, **headers})


# --- query limits ------------------------------------------------------------------------------------------------


async def test_a_query_50_levels_deep_is_refused_before_any_resolver(client: Client) -> None:
    gw = client(security())
    query = "{ item { " + "child { " * 49 + "name" + " }" * 50 + " }"
    response = await post(gw, {"query": query})
    assert response.status_code == 200
    assert codes(response) == ["QUERY_TOO_DEEP"]
    assert "51 levels deep; at most 10" in response.json()["errors"][0]["message"]
    assert calls(gw) == []


async def test_a_query_within_the_limits_runs(client: Client) -> None:
    gw = client(security())
    response = await post(gw, {"query": "{ hello item { children(first: 3) { name } } }"})
    assert response.json() == {"data": {"hello": "world", "item": {"children": [{"name": "item"}] * 3}}}
    assert "hello" in calls(gw)


async def test_1000_aliases_are_refused(client: Client) -> None:
    gw = client(security(limits={"max_tokens": 100_000, "max_root_fields": 10_000}))
    query = "{ " + " ".join(f"a{i}: hello" for i in range(1000)) + " }"
    response = await post(gw, {"query": query})
    assert codes(response) == ["TOO_MANY_ALIASES"]
    assert calls(gw) == []


async def test_1000_aliases_are_refused_by_the_token_count_by_default(client: Client) -> None:
    gw = client(security(limits={"max_body_bytes": 1_000_000}))
    query = "{ " + " ".join(f"a{i}: hello" for i in range(1000)) + " }"
    response = await post(gw, {"query": query})
    assert codes(response) == ["TOO_MANY_TOKENS"]
    assert "more than 2000 tokens" in response.json()["errors"][0]["message"]
    assert calls(gw) == []


async def test_a_1_mb_document_is_refused_by_its_size(client: Client) -> None:
    gw = client(security())
    query = "{ hello " + "#" * 1_000_000 + "\n}"
    response = await post(gw, {"query": query})
    assert response.status_code == 413
    assert codes(response) == ["PAYLOAD_TOO_LARGE"]
    assert calls(gw) == []


async def test_a_1_mb_document_under_a_larger_body_limit_is_refused_while_lexing(client: Client) -> None:
    gw = client(security(limits={"max_body_bytes": 2_000_000}))
    query = "{ " + "hello " * 170_000 + "}"
    response = await post(gw, {"query": query})
    assert codes(response) == ["TOO_MANY_TOKENS"]
    assert calls(gw) == []


async def test_a_chunked_body_is_counted_as_it_arrives(client: Client) -> None:
    gw = client(security(limits={"max_body_bytes": 1000}))

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ hello '
        for _ in range(100):
            yield b" " * 100
        yield b'}"}'

    response = await gw.post("/graphql", content=chunks(), headers=JSON_HEADERS)
    assert response.status_code == 413
    assert codes(response) == ["PAYLOAD_TOO_LARGE"]
    assert calls(gw) == []


async def test_100_batched_operations_are_refused(client: Client) -> None:
    gw = client(security())
    response = await post(gw, [{"query": "{ hello }"}] * 100)
    assert response.status_code == 400
    assert codes(response) == ["TOO_MANY_OPERATIONS"]
    assert calls(gw) == []


async def test_a_small_batch_runs(client: Client) -> None:
    gw = client(security())
    response = await post(gw, [{"query": "{ hello }"}] * 3)
    assert response.json() == [{"data": {"hello": "world"}}] * 3


async def test_a_batch_is_refused_when_the_schema_does_not_enable_batching(client: Client) -> None:
    gw = client(security(), batching=False)
    response = await post(gw, [{"query": "{ hello }"}] * 2)
    assert response.status_code == 400
    assert codes(response) == ["BATCHING_NOT_ENABLED"]
    assert calls(gw) == []


# --- production mode ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["{ helo }", "{ item { nme } }", "{ item { children(frist: 2) { name } } }"])
async def test_production_suggests_no_field_names(client: Client, query: str) -> None:
    response = await post(client(security(production=True)), {"query": query})
    messages = [error["message"] for error in response.json()["errors"]]
    assert messages
    assert not any("Did you mean" in message for message in messages)
    assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_outside_production_suggestions_help(client: Client) -> None:
    response = await post(client(security(production=False)), {"query": "{ helo }"})
    assert "Did you mean 'hello'?" in response.json()["errors"][0]["message"]


async def test_introspection_is_refused_in_production(client: Client) -> None:
    response = await post(client(security(production=True)), {"query": "{ __schema { types { name } } }"})
    assert set(codes(response)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in response.json()["errors"][0]["message"].lower()
    response = await post(client(security(production=True)), {"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_introspection_is_allowed_outside_production(client: Client) -> None:
    from graphql import get_introspection_query

    response = await post(client(security(production=False)), {"query": get_introspection_query()})
    assert "errors" not in response.json()
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


# --- CSRF ---------------------------------------------------------------------------------------------------------


async def test_a_get_without_a_preflight_header_is_refused(client: Client) -> None:
    gw = client(security())
    response = await gw.get("/graphql", params={"query": "{ hello }"})
    assert response.status_code == 400
    assert codes(response) == ["CSRF_PREVENTED"]
    assert calls(gw) == []


@pytest.mark.parametrize("header", ["X-OneWindow-Request", "Apollo-Require-Preflight", "X-Apollo-Operation-Name"])
async def test_a_get_with_a_preflight_header_runs(client: Client, header: str) -> None:
    response = await client(security()).get("/graphql", params={"query": "{ hello }"}, headers={header: "1"})
    assert response.json() == {"data": {"hello": "world"}}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_a_simple_post_is_refused(client: Client, content_type: str) -> None:
    gw = client(security())
    response = await gw.post("/graphql", content='{"query": "{ hello }"}', headers={"content-type": content_type})
    assert response.status_code == 400
    assert codes(response) == ["CSRF_PREVENTED"]
    assert calls(gw) == []


async def test_csrf_prevention_can_be_turned_off(client: Client) -> None:
    response = await client(security(csrf=False)).get("/graphql", params={"query": "{ hello }"})
    assert response.json() == {"data": {"hello": "world"}}


# --- rate limit ---------------------------------------------------------------------------------------------------


async def test_a_client_over_its_budget_gets_429_with_retry_after(client: Client) -> None:
    gw = client(security(rate_limit_per_client="2/minute"))
    for _ in range(2):
        assert (await post(gw, {"query": "{ hello }"})).status_code == 200
    response = await post(gw, {"query": "{ hello }"})
    assert response.status_code == 429
    assert codes(response) == ["RATE_LIMITED"]
    assert 0 < int(response.headers["retry-after"]) <= 60
    assert calls(gw) == ["hello", "hello"]


def test_a_malformed_rate_limit_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"security\.rate_limit: 'lots' is not a rate limit"):
        Starlette(middleware=hardening_middleware(security(rate_limit="lots"))).build_middleware_stack()


# --- persisted queries --------------------------------------------------------------------------------------------


def _apq(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def test_automatic_persisted_queries_round_trip(client: Client) -> None:
    gw = client(security())
    query = "{ hello }"
    sha256 = hashlib.sha256(query.encode()).hexdigest()
    response = await post(gw, {"extensions": _apq(sha256)})
    assert codes(response) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert (await post(gw, {"query": query, "extensions": _apq(sha256)})).json() == {"data": {"hello": "world"}}
    assert (await post(gw, {"extensions": _apq(sha256)})).json() == {"data": {"hello": "world"}}
    params = {"extensions": json.dumps(_apq(sha256))}
    response = await gw.get("/graphql", params=params, headers={"x-onewindow-request": "1"})
    assert response.json() == {"data": {"hello": "world"}}


async def test_a_persisted_query_must_match_its_hash(client: Client) -> None:
    gw = client(security())
    response = await post(gw, {"query": "{ hello }", "extensions": _apq("0" * 64)})
    assert codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert calls(gw) == []


async def test_an_invalid_document_is_not_persisted(client: Client) -> None:
    gw = client(security())
    query = "{ nope }"
    sha256 = hashlib.sha256(query.encode()).hexdigest()
    await post(gw, {"query": query, "extensions": _apq(sha256)})
    assert codes(await post(gw, {"extensions": _apq(sha256)})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_safelist_mode_runs_only_listed_documents(client: Client, tmp_path: Path) -> None:
    listed = "{ hello }"
    safelist = tmp_path / "safelist.json"
    safelist.write_text(json.dumps([listed]))
    gw = client(security(persisted_queries="safelist", safelist=str(safelist)))
    assert (await post(gw, {"query": listed})).json() == {"data": {"hello": "world"}}
    sha256 = hashlib.sha256(listed.encode()).hexdigest()
    assert (await post(gw, {"extensions": _apq(sha256)})).json() == {"data": {"hello": "world"}}
    gw.app.state.calls.clear()  # type: ignore[attr-defined]
    for body in ({"query": "{ item { name } }"}, {"query": "{ item { name } }", "extensions": _apq("1" * 64)}):
        response = await post(gw, body)
        assert codes(response) == ["PERSISTED_QUERY_NOT_IN_SAFELIST"]
    assert calls(gw) == []


def test_safelist_mode_needs_a_readable_safelist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"security\.safelist"):
        hardening_extensions(security(persisted_queries="safelist"))
    broken = tmp_path / "safelist.json"
    broken.write_text(json.dumps({"0" * 64: "{ hello }"}))
    with pytest.raises(ConfigError, match="is not the SHA-256 of its document"):
        hardening_extensions(security(persisted_queries="safelist", safelist=str(broken)))


# --- GraphQL over HTTP ----------------------------------------------------------------------------------------------


async def test_graphql_response_json_answers_a_request_error_with_400(client: Client) -> None:
    gw = client(security())
    response = await post(gw, {"query": "{ nope }"}, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    response = await post(gw, {"query": "{ hello }"}, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)


@pytest.mark.parametrize("query", ["{ hello", "{ nope }"], ids=["parse", "validation"])
async def test_legacy_json_clients_get_200_and_only_errors_for_a_document_that_fails(
    client: Client, query: str
) -> None:
    gw = client(security())
    response = await post(gw, {"query": query}, accept=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert "data" not in body  # a request error: nothing ran, so no data entry (GraphQL, "Response Format")
    assert codes(response) in (["GRAPHQL_PARSE_FAILED"], ["GRAPHQL_VALIDATION_FAILED"])
    assert calls(gw) == []


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_document_that_fails_is_400_without_data_for_graphql_response_json_only(
    client: Client, accept: str
) -> None:
    response = await post(client(security()), {"query": "{ hello"}, accept=accept)
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE_JSON else 200)
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert "data" not in response.json()


async def test_a_mutation_over_get_is_405(client: Client) -> None:
    gw = client(security())
    response = await gw.get("/graphql", params={"query": "mutation { touch }"}, headers={"x-onewindow-request": "1"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["METHOD_NOT_ALLOWED"]
    assert calls(gw) == []
    assert (await post(gw, {"query": "mutation { touch }"})).json() == {"data": {"touch": 1}}


async def test_errors_the_view_raises_are_graphql_json(client: Client) -> None:
    gw = client(security())
    response = await gw.post("/graphql", content='{"query":', headers=JSON_HEADERS)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "Unable to parse request body as JSON", "extensions": {"code": "BAD_REQUEST"}}]
    }


def test_defaults_come_from_limits_config() -> None:
    assert LimitsConfig().max_batch == 10
    assert len(hardening_middleware(SecurityConfig())) == 3


async def test_a_syntax_error_is_coded(client: Client) -> None:
    response = await post(client(security()), {"query": "{ hello"}, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert codes(response) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_client_leaving_before_its_body_arrives_gets_nothing_and_raises_nothing() -> None:
    app = make_app(security())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("203.0.113.7", 40000),
        "server": ("gateway", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)

    assert sent == []
    assert app.state.calls == []


# --- GraphQL over HTTP, clause by clause (graphql/graphql-over-http, spec/GraphQLOverHTTP.md) -----------------------

BOTH = pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (JSON, JSON),
        ("*/*", JSON),  # a legacy client's default
        ("application/*", JSON),
        (f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE_JSON),  # recommended
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", JSON),  # equal q: the client's order
        (f"{JSON};q=0.5, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, */*", JSON),  # q=0: not acceptable, whatever else matches
        (f"{GRAPHQL_RESPONSE_JSON};q=0.2, */*;q=0.5", JSON),
        ("text/html, */*;q=0.1", JSON),
        ("Application/GraphQL-Response+JSON", GRAPHQL_RESPONSE_JSON),
    ],
)
async def test_the_answer_takes_the_highest_priority_media_type_accepted(
    client: Client, accept: str, media_type: str
) -> None:
    response = await post(client(security()), {"query": "{ hello }"}, accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert response.json() == {"data": {"hello": "world"}}


async def test_no_accept_header_is_answered_as_graphql_response_json(client: Client) -> None:
    gw = client(security())
    request = gw.build_request("POST", "/graphql", content=json.dumps({"query": "{ nope }"}), headers=JSON_HEADERS)
    del request.headers["accept"]
    response = await gw.send(request)
    assert response.status_code == 400
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml, text/*", f"{JSON};q=0", f"{JSON}; charset=iso-8859-1", "image/*"]
)
async def test_an_accept_naming_neither_media_type_is_406_and_nothing_runs(client: Client, accept: str) -> None:
    gw = client(security())
    response = await post(gw, {"query": "mutation { touch }"}, accept=accept)
    assert response.status_code == 406
    assert codes(response) == ["NOT_ACCEPTABLE"]
    assert calls(gw) == []


async def test_graphiql_is_still_shown_to_a_browser_accepting_only_html(client: Client) -> None:
    gw = client(security(csrf=False), ide="graphiql")
    response = await gw.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


@BOTH
async def test_data_with_field_errors_is_200(client: Client, accept: str) -> None:
    response = await post(client(security()), {"query": "{ hello broken }"}, accept=accept)
    assert response.status_code == 200
    assert response.json()["data"] == {"hello": "world", "broken": None}
    assert len(response.json()["errors"]) == 1


@BOTH
async def test_data_null_from_a_field_error_is_200_with_a_data_entry(client: Client, accept: str) -> None:
    """Execution ran: a non-null field's error nulls ``data``, which is a partial response, not a request error."""
    response = await post(client(security()), {"query": "{ required }"}, accept=accept)
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["path"] == ["required"]


@BOTH
async def test_an_operation_that_cannot_be_determined_is_a_request_error(client: Client, accept: str) -> None:
    gw = client(security())
    response = await post(gw, {"query": "query A { hello }", "operationName": "B"}, accept=accept)
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE_JSON else 200)
    assert response.json() == {
        "errors": [{"message": 'Unknown operation named "B".', "extensions": {"code": "OPERATION_RESOLUTION_FAILURE"}}]
    }
    assert calls(gw) == []


@BOTH
async def test_variables_that_cannot_be_coerced_are_a_request_error(client: Client, accept: str) -> None:
    gw = client(security())
    query = "query($n: Int!) { item { children(first: $n) { name } } }"
    response = await post(gw, {"query": query, "variables": {"n": "many"}}, accept=accept)
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE_JSON else 200)
    assert "data" not in response.json()
    assert calls(gw) == []


@BOTH
@pytest.mark.parametrize(
    "body",
    [
        "NONSENSE",
        '{"query":',
        '"{ hello }"',
        "7",
        "null",
        "[1, 2]",
        '{"qeury": "{ hello }"}',
        '{"query": 7}',
        '{"query": "{ hello }", "variables": [7]}',
        '{"query": "{ hello }", "operationName": 7}',
        '{"query": "{ hello }", "extensions": "apq"}',
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_400(client: Client, accept: str, body: str) -> None:
    gw = client(security())
    response = await gw.post("/graphql", content=body, headers={**JSON_HEADERS, "accept": accept})
    assert response.status_code == 400
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["BAD_REQUEST"]
    assert calls(gw) == []


async def test_an_empty_operation_name_is_no_operation_name(client: Client) -> None:
    response = await post(client(security()), {"query": "query A { hello }", "operationName": ""})
    assert response.json() == {"data": {"hello": "world"}}


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "application/graphql", f"{GRAPHQL_RESPONSE_JSON}", f"{JSON}; charset=iso-8859-1", None],
)
async def test_a_body_in_another_media_type_or_charset_is_415(client: Client, content_type: str | None) -> None:
    gw = client(security(csrf=False))  # the CSRF check refuses the simple ones first, with 400
    headers = {"content-type": content_type} if content_type is not None else {}
    request = gw.build_request("POST", "/graphql", content='{"query": "{ hello }"}', headers=headers)
    assert content_type is not None or "content-type" not in request.headers
    response = await gw.send(request)
    assert response.status_code == 415
    assert codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert calls(gw) == []


@pytest.mark.parametrize("content_type", [JSON, f"{JSON}; charset=utf-8", "Application/JSON; Charset=UTF-8"])
async def test_json_in_utf_8_is_read_with_or_without_a_charset(client: Client, content_type: str) -> None:
    gw = client(security())
    body = json.dumps({"query": "# 民政局的窗口\n{ hello }"}, ensure_ascii=False)
    response = await gw.post("/graphql", content=body.encode(), headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "world"}}


@BOTH
async def test_a_query_over_get_runs(client: Client, accept: str) -> None:
    gw = client(security())
    params = {"query": "query($n: Int) { item { children(first: $n) { name } } }", "variables": '{"n": 1}'}
    response = await gw.get("/graphql", params=params, headers={"x-onewindow-request": "1", "accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert response.json() == {"data": {"item": {"children": [{"name": "item"}]}}}


@BOTH
@pytest.mark.parametrize(
    "params",
    [{"query": "mutation { touch }"}, {"query": "query A { hello } mutation B { touch }", "operationName": "B"}],
    ids=["mutation", "mutation-by-name"],
)
async def test_a_mutation_over_get_is_405_with_allow_post(client: Client, accept: str, params: dict[str, str]) -> None:
    gw = client(security())
    response = await gw.get("/graphql", params=params, headers={"x-onewindow-request": "1", "accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["METHOD_NOT_ALLOWED"]
    assert calls(gw) == []
