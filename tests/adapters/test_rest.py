"""The REST adapter against a real Starlette department on loopback; edge cases with httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.conformance import AdapterConformance
from adapters.rest import RestAdapter
from gateway.config import SourceConfig
from gateway.errors import (
    BadSourceData,
    ConfigError,
    SourceError,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from gateway.keys import id_number_check_char
from gateway.serving import serve_asgi

SOURCE = "social_insurance"


def _id_number(first17: str) -> str:
    return first17 + id_number_check_char(first17)


KNOWN = [_id_number("11010519491231002"), _id_number("31011519900615123"), _id_number("44030519751120456")]
UNKNOWN = _id_number("11010519800101001")

INSURED_QUERY: dict[str, Any] = {
    "path": "/insured/{key}",
    "batch": {"path": "/insured:batch", "body": {"ids": "{keys}"}, "result": "items", "key": "idNumber"},
}
PAYMENTS_QUERY: dict[str, Any] = {"path": "/insured/{key}/payments", "result": "payments", "many": True}


def _source(url: str, **changes: Any) -> SourceConfig:
    """A social-insurance source; ``changes`` replace its top-level keys (``queries``, ``openapi``, ...)."""
    data: dict[str, Any] = {
        "kind": "rest",
        "department": "Human Resources and Social Security Bureau",
        "timeout": "2s",
        "base_url": url,
        "openapi": "/openapi.json",
        "queries": {"insured": INSURED_QUERY, "payments": PAYMENTS_QUERY},
        "provides": {"Person.socialInsurance": {"query": "insured", "fields": {"insured": {"value": "insured"}}}},
    }
    data.update(changes)
    return SourceConfig.model_validate(data)


# -- the department ------------------------------------------------------------------------------------------


def _openapi_document() -> dict[str, Any]:
    insured = {
        "type": "object",
        "required": ["idNumber", "insured"],
        "properties": {
            "idNumber": {"type": "string"},
            "insured": {"type": "boolean"},
            "months": {"type": "integer"},
            "city": {"type": "string"},
            "balance": {"type": "number", "format": "decimal"},
        },
    }
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

    def answers(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "found", "content": {"application/json": {"schema": schema}}}

    return {
        "openapi": "3.0.3",
        "info": {"title": "Social insurance enrolment", "version": "1.2.0"},
        "paths": {
            "/insured/{id}": {
                "get": {
                    "operationId": "getInsured",
                    "parameters": [id_param],
                    "responses": {
                        "200": answers({"$ref": "#/components/schemas/Insured"}),
                        "404": {"description": "no such person"},
                    },
                }
            },
            "/insured/{id}/payments": {
                "get": {
                    "operationId": "getPayments",
                    "parameters": [id_param],
                    "responses": {
                        "200": answers({"type": "object", "properties": {"payments": {"type": "array"}}}),
                        "404": {"description": "no such person"},
                    },
                }
            },
            "/insured:batch": {
                "post": {
                    "operationId": "batchInsured",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": answers(
                            {
                                "type": "object",
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Insured"},
                                    }
                                },
                            }
                        )
                    },
                }
            },
        },
        "components": {"schemas": {"Insured": insured}},
    }


class Department:
    """A social-insurance bureau's REST API; ``hits`` counts requests per route, as the server saw them."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.records = {
            KNOWN[0]: {
                "idNumber": KNOWN[0],
                "insured": True,
                "months": 120,
                "city": "北京市",
                "balance": 12345.67,
            },
            KNOWN[1]: {
                "idNumber": KNOWN[1],
                "insured": True,
                "months": 36,
                "city": "上海市",
                "balance": 880.05,
            },
            KNOWN[2]: {"idNumber": KNOWN[2], "insured": False, "months": 0, "city": "深圳市", "balance": 0.0},
        }
        self.payments = {
            KNOWN[0]: [{"month": "2024-01", "amount": 1021.5}, {"month": "2024-02", "amount": 1021.5}],
            KNOWN[1]: [{"month": "2024-01", "amount": 640.25}],
            KNOWN[2]: [],
        }

    async def insured(self, request: Request) -> Response:
        self.hits["insured"] += 1
        record = self.records.get(request.path_params["id"])
        if record is None:
            return JSONResponse({"error": "NOT_FOUND", "message": "no such insured person"}, status_code=404)
        return JSONResponse(record)

    async def payments_of(self, request: Request) -> Response:
        self.hits["payments"] += 1
        payments = self.payments.get(request.path_params["id"])
        if payments is None:
            return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
        return JSONResponse({"payments": payments})

    async def batch(self, request: Request) -> Response:
        self.hits["batch"] += 1
        ids = (await request.json())["ids"]
        return JSONResponse({"items": [self.records[i] for i in ids if i in self.records]})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(_openapi_document())

    async def fault(self, request: Request) -> Response:
        kind, wanted = request.path_params["kind"], request.query_params.get("id", "")
        if kind == "500":
            trace = f"java.lang.NullPointerException: insured {wanted}\n\tat gov.si.Dao.find(Dao.java:88)\n"
            return PlainTextResponse(trace * 50, status_code=500)
        if kind == "503":
            return PlainTextResponse("scheduled maintenance until 06:00", status_code=503)
        if kind == "403":
            return JSONResponse({"error": "client certificate not authorised"}, status_code=403)
        if kind == "bad-json":
            page = f"<html><body>Login required to see {wanted}</body></html>"
            return Response(page, media_type="application/json")
        if kind == "slow":
            await asyncio.sleep(1.0)
            return JSONResponse({"idNumber": wanted})
        if kind == "wrong-shape":
            return JSONResponse({"data": {"person": None}, "meta": {}})
        raise AssertionError(kind)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/openapi.json", self.openapi),
                Route("/insured:batch", self.batch, methods=["POST"]),
                Route("/insured/{id}", self.insured),
                Route("/insured/{id}/payments", self.payments_of),
                Route("/faults/{kind}", self.fault),
            ]
        )


@pytest.fixture
def department() -> Department:
    return Department()


@pytest.fixture
async def department_url(department: Department) -> AsyncIterator[str]:
    async with serve_asgi(department.app()) as url:
        yield url


@pytest.fixture
async def adapter(department_url: str) -> AsyncIterator[RestAdapter]:
    opened = RestAdapter(SOURCE, _source(department_url))
    await opened.open()
    yield opened
    await opened.aclose()


# -- the conformance suite -----------------------------------------------------------------------------------


class TestRestConformance(AdapterConformance):
    @pytest.fixture
    def query(self) -> str:
        return "insured"

    @pytest.fixture
    def known_keys(self) -> list[str]:
        return KNOWN

    @pytest.fixture
    def unknown_key(self) -> str:
        return UNKNOWN

    @pytest.fixture
    def key_path(self) -> str:
        return "idNumber"

    @pytest.fixture
    async def unreachable_adapter(self, free_port: int) -> AsyncIterator[RestAdapter]:
        adapter = RestAdapter(SOURCE, _source(f"http://127.0.0.1:{free_port}"))
        yield adapter
        await adapter.aclose()

    @pytest.fixture
    async def slow_adapter(self, department_url: str) -> AsyncIterator[RestAdapter]:
        """``insured`` on the department's slow endpoint (1 s), with a 200 ms timeout."""
        queries = {"insured": {"path": "/faults/slow", "params": {"id": "{key}"}}}
        async with RestAdapter(SOURCE, _source(department_url, openapi=None, timeout="200ms", queries=queries)) as slow:
            assert isinstance(slow, RestAdapter)
            yield slow


# -- against the department ----------------------------------------------------------------------------------


async def test_batch_is_one_request_at_the_department(adapter: RestAdapter, department: Department) -> None:
    result = await adapter.fetch("insured", [*KNOWN, UNKNOWN])

    assert department.hits == Counter(batch=1)
    assert set(result) == set(KNOWN)
    assert [record["idNumber"] for record in result[KNOWN[1]]] == [KNOWN[1]]


async def test_one_key_is_one_single_request(adapter: RestAdapter, department: Department) -> None:
    await adapter.fetch("insured", [KNOWN[0], KNOWN[0]])

    assert department.hits == Counter(insured=1)


async def test_money_and_names_arrive_exact(adapter: RestAdapter) -> None:
    (record,) = (await adapter.fetch("insured", [KNOWN[0]]))[KNOWN[0]]

    assert record["balance"] == Decimal("12345.67")
    assert isinstance(record["balance"], Decimal)
    assert record["months"] == 120
    assert record["city"] == "北京市"


async def test_many_query_maps_each_key_to_its_list(adapter: RestAdapter) -> None:
    assert await adapter.fetch("payments", [KNOWN[0]]) == {
        KNOWN[0]: [
            {"month": "2024-01", "amount": Decimal("1021.5")},
            {"month": "2024-02", "amount": Decimal("1021.5")},
        ]
    }
    assert await adapter.fetch("payments", [KNOWN[2]]) == {}, "an empty list means no records"
    assert await adapter.fetch("payments", [UNKNOWN]) == {}
    assert not adapter.capabilities("payments").batch
    assert adapter.capabilities("insured").batch


async def test_several_keys_for_a_query_without_batch_are_refused(adapter: RestAdapter) -> None:
    with pytest.raises(ValueError, match="no batch"):
        await adapter.fetch("payments", KNOWN[:2])


@pytest.mark.parametrize(
    ("queries", "at_fault", "said"),
    [
        ({"insured": {"path": "/insured/{key}/history"}}, "insured.path", "GET /insured/{key}/history"),
        ({"insured": {"path": "/insured/{key}", "method": "POST"}}, "insured.path", "POST /insured/{key}"),
        (
            {"insured": {**INSURED_QUERY, "batch": {**INSURED_QUERY["batch"], "path": "/insured/batch"}}},
            "insured.batch.path",
            "POST /insured/batch",
        ),
    ],
    ids=["path", "method", "batch-path"],
)
async def test_query_missing_from_the_openapi_document_fails_open(
    department_url: str, queries: dict[str, Any], at_fault: str, said: str
) -> None:
    adapter = RestAdapter(SOURCE, _source(department_url, queries=queries))
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    await adapter.aclose()

    assert info.value.path == f"sources.{SOURCE}.queries.{at_fault}"
    assert said in info.value.reason
    assert "it has: GET /insured/{id}, GET /insured/{id}/payments, POST /insured:batch" in info.value.reason


@pytest.mark.parametrize(
    ("openapi", "said"),
    [
        (f"/insured/{KNOWN[0]}", "is not an OpenAPI 3 document"),
        ("/faults/bad-json", "is not JSON"),
        ("/no-such-document.json", "answered 404 Not Found (a path starting with '/' is read under base_url"),
    ],
)
async def test_unusable_openapi_document_names_the_openapi_key(department_url: str, openapi: str, said: str) -> None:
    adapter = RestAdapter(SOURCE, _source(department_url, openapi=openapi))
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    await adapter.aclose()

    assert info.value.path == f"sources.{SOURCE}.openapi"
    assert said in info.value.reason


async def test_openapi_document_from_a_local_file(department_url: str, tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(_openapi_document()), encoding="utf-8")
    async with RestAdapter(SOURCE, _source(department_url, openapi=document.as_uri())) as adapter:
        assert await adapter.fetch("insured", [KNOWN[2]]) != {}

    missing = RestAdapter(SOURCE, _source(department_url, openapi=(tmp_path / "missing.json").as_uri()))
    with pytest.raises(ConfigError, match="cannot read") as info:
        await missing.open()
    await missing.aclose()
    assert info.value.path == f"sources.{SOURCE}.openapi"


@pytest.mark.parametrize(
    ("fault", "result", "error", "said"),
    [
        (
            "500",
            None,
            SourceFault,
            "answered 500 Internal Server Error: java.lang.NullPointerException: insured {key} at",
        ),
        ("503", None, SourceUnavailable, "answered 503 Service Unavailable: scheduled maintenance"),
        ("403", None, SourceFault, "answered 403 Forbidden"),
        ("bad-json", None, BadSourceData, "not JSON: <html><body>Login required to see {key}<"),
        ("wrong-shape", "data.person.insured", BadSourceData, "without 'data.person.insured'"),
    ],
)
async def test_department_faults_raise_typed_errors_naming_the_source(
    department_url: str, fault: str, result: str | None, error: type[SourceError], said: str
) -> None:
    queries = {"insured": {"path": f"/faults/{fault}", "params": {"id": "{key}"}, "result": result}}
    async with RestAdapter(SOURCE, _source(department_url, openapi=None, queries=queries)) as adapter:
        with pytest.raises(error) as info:
            await adapter.fetch("insured", [KNOWN[0]])

    assert info.value.source == SOURCE
    assert f"GET /faults/{fault}" in info.value.reason
    assert said in info.value.reason
    assert len(info.value.reason) < 300, "a long error page is cut to an excerpt"
    assert KNOWN[0] not in str(info.value), "the key is personal data and stays out of error messages"


async def test_no_answer_within_the_timeout_is_a_source_timeout(department_url: str) -> None:
    queries = {"insured": {"path": "/faults/slow", "params": {"id": "{key}"}}}
    source = _source(department_url, openapi=None, timeout="200ms", queries=queries)
    async with RestAdapter(SOURCE, source) as adapter:
        with pytest.raises(SourceTimeout, match=r"within 0\.2s") as info:
            await adapter.fetch("insured", [KNOWN[0]])

    assert info.value.source == SOURCE
    assert isinstance(info.value.__cause__, httpx.TimeoutException)


async def test_refused_connection_on_fetch_is_source_unavailable(free_port: int) -> None:
    async with RestAdapter(SOURCE, _source(f"http://127.0.0.1:{free_port}", openapi=None)) as adapter:
        with pytest.raises(SourceUnavailable, match=re.escape(f"cannot reach http://127.0.0.1:{free_port}")):
            await adapter.fetch("insured", [KNOWN[0]])


async def test_probe_reports_the_status_or_raises(department_url: str, free_port: int) -> None:
    async with RestAdapter(SOURCE, _source(department_url)) as adapter:
        assert await adapter.probe() == f"HTTP 200 OK from {department_url}/openapi.json"

    async with RestAdapter(
        SOURCE, _source(department_url, openapi=None, base_url=f"{department_url}/faults/503")
    ) as down:
        with pytest.raises(SourceUnavailable):
            await down.probe()

    unreachable = RestAdapter(SOURCE, _source(f"http://127.0.0.1:{free_port}"))
    with pytest.raises(SourceUnavailable):
        await unreachable.probe()
    await unreachable.aclose()


# -- unit tests with httpx.MockTransport ---------------------------------------------------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def _mocked(handler: Handler, **changes: Any) -> tuple[RestAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    changes.setdefault("openapi", None)
    return RestAdapter(SOURCE, _source("https://si.example.gov.cn/api/v1/", **changes), client=client), client


async def test_key_is_url_encoded_in_the_path_and_templated_in_params() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"idNumber": "x"})

    queries = {"lookup": {"path": "/people/{key}/card", "params": {"q": "id:{key}", "fields": "all"}}}
    adapter, client = _mocked(answer, queries=queries, headers={"X-Client-Id": "onewindow"})
    async with client, adapter:
        await adapter.fetch("lookup", ["a/b c&d=李"])
        await adapter.fetch("lookup", [".."])

    first, dots = seen
    assert first.url.raw_path.split(b"?")[0] == b"/api/v1/people/a%2Fb%20c%26d%3D%E6%9D%8E/card"
    assert dict(first.url.params) == {"q": "id:a/b c&d=李", "fields": "all"}
    assert first.headers["X-Client-Id"] == "onewindow"
    assert first.headers["Accept"] == "application/json"
    assert dots.url.raw_path.split(b"?")[0] == b"/api/v1/people/%2E%2E/card", "a dot key must not climb the path"


async def test_batch_over_get_groups_records_by_a_nested_key_and_ignores_others() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        records = [
            {"person": {"id": "A"}, "n": 1},
            {"person": {"id": "B"}, "n": 2},
            {"person": {"id": "Z"}, "n": 26},
            {"person": {"id": "A"}, "n": 3},
        ]
        return httpx.Response(200, json={"data": {"records": records}})

    batch = {"method": "GET", "path": "/records", "params": {"id": "{keys}", "in": "({keys})"}}
    queries = {
        "records": {
            "path": "/records/{key}",
            "many": True,
            "batch": {**batch, "result": "data.records", "key": "person.id"},
        }
    }
    adapter, client = _mocked(answer, queries=queries)
    async with client, adapter:
        result = await adapter.fetch("records", ["A", "B", "C"])

    (request,) = seen
    assert request.method == "GET"
    assert request.url.params.get_list("id") == ["A", "B", "C"]
    assert request.url.params["in"] == "(A,B,C)"
    assert {key: [r["n"] for r in records] for key, records in result.items()} == {"A": [1, 3], "B": [2]}


async def test_decimals_beyond_float_precision_are_exact() -> None:
    body = b'{"idNumber": "A", "balance": 12345678901234567.89, "rate": 0.1}'
    adapter, client = _mocked(lambda request: httpx.Response(200, content=body))
    async with client, adapter:
        (record,) = (await adapter.fetch("insured", ["A"]))["A"]

    assert record["balance"] == Decimal("12345678901234567.89")
    assert record["rate"] == Decimal("0.1")


async def test_null_result_is_absent_and_custom_not_found_statuses() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone"):
            return httpx.Response(410, json={"error": "archived"})
        return httpx.Response(200, json={"code": 0, "data": None})

    queries = {"insured": {"path": "/insured/{key}", "result": "data", "not_found": [404, 410]}}
    adapter, client = _mocked(answer, queries=queries)
    async with client, adapter:
        assert await adapter.fetch("insured", ["nobody"]) == {}
        assert await adapter.fetch("insured", ["gone"]) == {}


async def test_a_list_where_one_record_is_expected_is_bad_data() -> None:
    adapter, client = _mocked(lambda request: httpx.Response(200, json=[{"idNumber": "A"}]))
    async with client, adapter:
        with pytest.raises(BadSourceData, match="not an object"):
            await adapter.fetch("insured", ["A"])


async def test_post_query_sends_its_body_template() -> None:
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"result": {"idNumber": "A"}})

    body = {"query": {"idNumber": "{key}", "fields": ["insured"]}, "page": 1}
    queries = {"insured": {"path": "/search", "method": "POST", "body": body, "result": "result"}}
    adapter, client = _mocked(answer, queries=queries)
    async with client, adapter:
        assert await adapter.fetch("insured", ["A"]) == {"A": [{"idNumber": "A"}]}

    assert seen == [{"query": {"idNumber": "A", "fields": ["insured"]}, "page": 1}]


async def test_an_injected_client_is_left_open() -> None:
    adapter, client = _mocked(lambda request: httpx.Response(200, json={}))
    async with client:
        await adapter.open()
        await adapter.aclose()
        await adapter.aclose()
        assert not client.is_closed


@pytest.mark.parametrize(
    ("changes", "at_fault", "said"),
    [
        ({"base_url": "ftp://si.example.gov.cn"}, "base_url", "not an http"),
        ({"queries": {"insured": {"path": "/insured"}}}, "queries.insured", "must carry the key"),
        (
            {"queries": {"insured": {"path": "/i/{key}", "batch": {"path": "/b", "key": "id"}}}},
            "queries.insured.batch",
            "must send the keys",
        ),
        (
            {"queries": {"insured": {"path": "/i/{key}", "verb": "GET"}}},
            "queries.insured.verb",
            "Extra inputs",
        ),
    ],
)
def test_configuration_mistakes_are_named_before_anything_is_opened(
    changes: dict[str, Any], at_fault: str, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        RestAdapter(SOURCE, _source("https://si.example.gov.cn", **changes))

    assert info.value.path == f"sources.{SOURCE}.{at_fault}"
    assert said in info.value.reason
