"""The source layer through the schema: batching, bounded concurrency, error isolation, fallback, provenance.

Departments here are REST adapters over ``httpx.MockTransport`` handlers that count what reaches them; the
end-to-end tests against the real demo servers live in ``tests/test_gateway_demo.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.base import Adapter
from adapters.credentials import ACTING_PRINCIPAL, verify_hmac_request
from adapters.rest import RestAdapter
from auth.access import Access
from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from cache import RecordCache
from gateway.config import GatewayConfig, parse_config
from gateway.errors import InvalidCredentials
from gateway.extensions.errors import ErrorCodes
from gateway.keys import id_number_check_char
from gateway.sources import SourceSet
from schema.context import GatewayContext
from schema.query import build_schema
from tests.adapters.secured_servers import serve


def make_ids(n: int) -> list[str]:
    bodies = [f"11010519800101{i:03d}" for i in range(n)]
    return [b + id_number_check_char(b) for b in bodies]


@dataclass
class Department:
    """A handler standing for one department; counts requests and the most in flight at once."""

    people: dict[str, dict[str, Any]]
    delay: float = 0.0
    status: int = 200
    requests: list[httpx.Request] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.status != 200:
                return httpx.Response(self.status, text="down for maintenance")
            if request.method == "POST":
                ids = json.loads(request.content)["ids"]
                return httpx.Response(200, json={"items": [self.people[i] for i in ids if i in self.people]})
            key = request.url.path.rsplit("/", 1)[-1]
            if key not in self.people:
                return httpx.Response(404)
            return httpx.Response(200, json=self.people[key])
        finally:
            self.in_flight -= 1


def _source(department: str, fields: dict[str, Any], *, batch: bool, max_concurrency: int = 8) -> dict[str, Any]:
    query: dict[str, Any] = {"path": "/people/{key}"}
    if batch:
        query["batch"] = {"path": "/people:batch", "body": {"ids": "{keys}"}, "result": "items", "key": "id"}
    return {
        "kind": "rest",
        "department": department,
        "base_url": "http://department.invalid",
        "timeout": "1s",
        "max_concurrency": max_concurrency,
        "queries": {"people": query},
        "provides": fields,
    }


def _context(source_set: SourceSet, config: GatewayConfig) -> GatewayContext:
    """A request's context for a service principal: every field of these unconditional sources is released."""
    sources = source_set.for_request()
    principal = Principal("source-tests", PrincipalKind.SERVICE, "development")
    return GatewayContext(sources=sources, access=Access(principal, Policy(config), sources, request_id="test"))


@pytest.fixture
def gateway() -> Callable[..., Any]:
    """Build a schema executor over the given sources and departments."""

    async def run(
        sources: dict[str, dict[str, Any]], departments: dict[str, Department], query: str, **variables: Any
    ) -> dict[str, Any]:
        config: GatewayConfig = parse_config({"sources": sources}, {})
        adapters: dict[str, Adapter] = {
            name: RestAdapter(name, src, client=httpx.AsyncClient(transport=httpx.MockTransport(departments[name])))
            for name, src in config.sources.items()
        }
        source_set = SourceSet(config, adapters)
        await source_set.open()
        try:
            schema = build_schema([ErrorCodes])
            result = await schema.execute(query, variable_values=variables, context_value=_context(source_set, config))
        finally:
            for adapter in adapters.values():
                await adapter.aclose()
        return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}

    return run


PEOPLE = {k: {"id": k, "name": f"居民{i}", "flag": "1"} for i, k in enumerate(make_ids(60))}


async def test_fifty_persons_cost_one_call_to_a_batching_department(gateway: Callable[..., Any]) -> None:
    hrss = Department(PEOPLE)
    ids = list(PEOPLE)[:50]
    out = await gateway(
        {"hrss": _source("HRSS", {"Person.name": {"value": "name"}}, batch=True)},
        {"hrss": hrss},
        "query($ids: [IdNumber!]!) { persons(idNumbers: $ids) { idNumber name } }",
        ids=ids,
    )
    assert out["errors"] == []
    assert [p["name"] for p in out["data"]["persons"]] == [PEOPLE[k]["name"] for k in ids]
    assert len(hrss.requests) == 1
    assert hrss.requests[0].method == "POST"


async def test_persons_are_read_ahead_one_batch_per_provider_and_no_task_per_field(
    gateway: Callable[..., Any],
) -> None:
    """The fields a root asks of many persons are read ahead of their resolvers (schema.types.prefetch): one call
    per department query, the provider standing in for a failed first one included, and no asyncio task per person
    or field (the resolvers then answer synchronously)."""
    ids = list(PEOPLE)[:50]
    city, province, hrss = Department(PEOPLE, status=503), Department(PEOPLE), Department(PEOPLE)
    loop = asyncio.get_running_loop()
    default = loop.get_task_factory()
    created: list[Any] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        out = await gateway(
            {
                "city": _source("City registry", {"Person.name": {"value": "name"}}, batch=True),
                "province": _source("Province registry", {"Person.name": {"value": "name"}}, batch=True),
                "hrss": _source(
                    "HRSS", {"Person.socialInsurance": {"fields": {"insured": {"value": "flag"}}}}, batch=True
                ),
            },
            {"city": city, "province": province, "hrss": hrss},
            "query($ids: [IdNumber!]!) { persons(idNumbers: $ids) { idNumber name socialInsurance { insured } } }",
            ids=ids,
        )
    finally:
        loop.set_task_factory(default)
    assert out["errors"] == []
    assert [p["name"] for p in out["data"]["persons"]] == [PEOPLE[k]["name"] for k in ids]
    assert all(p["socialInsurance"] == {"insured": True} for p in out["data"]["persons"])
    assert (len(province.requests), len(hrss.requests)) == (1, 1)
    assert len(created) < len(ids)


async def test_a_department_without_batch_gets_bounded_concurrency(gateway: Callable[..., Any]) -> None:
    registry = Department(PEOPLE, delay=0.01)
    ids = list(PEOPLE)[:20]
    out = await gateway(
        {"ps": _source("Public Security", {"Person.name": {"value": "name"}}, batch=False, max_concurrency=3)},
        {"ps": registry},
        "query($ids: [IdNumber!]!) { persons(idNumbers: $ids) { name } }",
        ids=ids,
    )
    assert out["errors"] == []
    assert len(registry.requests) == 20
    assert registry.most_in_flight == 3


async def test_failed_department_costs_only_its_fields(gateway: Callable[..., Any]) -> None:
    key = next(iter(PEOPLE))
    out = await gateway(
        {
            "ps": _source("Public Security", {"Person.name": {"value": "name"}}, batch=False),
            "hrss": _source(
                "HRSS", {"Person.socialInsurance": {"fields": {"insured": {"value": "flag"}}}}, batch=False
            ),
        },
        {"ps": Department(PEOPLE), "hrss": Department(PEOPLE, status=500)},
        "query($id: IdNumber!) { person(idNumber: $id) { name socialInsurance { insured } "
        "provenance { field source } } }",
        id=key,
    )
    assert out["data"]["person"]["name"] == PEOPLE[key]["name"]
    assert out["data"]["person"]["socialInsurance"] is None
    assert out["data"]["person"]["provenance"] == [{"field": "name", "source": "ps"}]
    [error] = out["errors"]
    assert error["path"] == ["person", "socialInsurance"]
    assert error["extensions"] == {"code": "SOURCE_FAULT", "source": "hrss"}


async def test_second_provider_stands_in_for_a_failed_first(gateway: Callable[..., Any]) -> None:
    key = next(iter(PEOPLE))
    out = await gateway(
        {
            "city": _source("City registry", {"Person.name": {"value": "name"}}, batch=False),
            "province": _source("Province registry", {"Person.name": {"value": "name"}}, batch=False),
        },
        {"city": Department(PEOPLE, status=503), "province": Department(PEOPLE)},
        "query($id: IdNumber!) { person(idNumber: $id) { name provenance { field source department } } }",
        id=key,
    )
    assert out["errors"] == []
    assert out["data"]["person"]["provenance"] == [
        {"field": "name", "source": "province", "department": "Province registry"}
    ]


async def test_slow_department_times_out_with_its_name(gateway: Callable[..., Any]) -> None:
    key = next(iter(PEOPLE))
    source = _source("Slow bureau", {"Person.name": {"value": "name"}}, batch=False)
    source["timeout"] = "50ms"
    out = await gateway(
        {"slow": source},
        {"slow": Department(PEOPLE, delay=1.0)},
        "query($id: IdNumber!) { person(idNumber: $id) { idNumber name } }",
        id=key,
    )
    assert out["data"]["person"] == {"idNumber": key, "name": None}
    assert out["errors"][0]["extensions"] == {"code": "SOURCE_TIMEOUT", "source": "slow"}


async def test_invalid_id_number_is_refused_before_any_department(gateway: Callable[..., Any]) -> None:
    registry = Department(PEOPLE)
    out = await gateway(
        {"ps": _source("Public Security", {"Person.name": {"value": "name"}}, batch=False)},
        {"ps": registry},
        '{ person(idNumber: "110105194912310021") { name } }',
    )
    assert out["data"] is None
    [error] = out["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "check character" in error["message"]
    assert registry.requests == []


async def test_unknown_person_has_null_fields_and_no_provenance(gateway: Callable[..., Any]) -> None:
    stranger = make_ids(99)[-1]
    out = await gateway(
        {"ps": _source("Public Security", {"Person.name": {"value": "name"}}, batch=False)},
        {"ps": Department(PEOPLE)},
        "query($id: IdNumber!) { person(idNumber: $id) { name provenance { field } } }",
        id=stranger,
    )
    assert out == {"data": {"person": {"name": None, "provenance": []}}, "errors": []}


# -- who acts: departments told the acting principal (hmac_headers) ------------------------------------------------

HMAC_KEYS = {"onewindow-2026": "hmac-shared-secret-for-acting-tests"}
ZHAO = Principal("zhao.lei", PrincipalKind.CLERK, "cas", department="民政局", window="A-01")
QIAN = Principal("qian.min", PrincipalKind.OFFICER, "oidc:province", department="公安局")


@dataclass
class ActingDepartment:
    """A department that answers only requests signed with its key, and says in the record whom it answered for.

    ``served``: the acting subject of every request it answered, in order; ``delay``: how long each answer takes,
    so that concurrent requests overlap."""

    delay: float = 0.1
    served: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/people/{key}", self._person)])

    async def _person(self, request: Request) -> Response:
        target = request.scope["raw_path"].decode()
        try:
            acting = verify_hmac_request(request.method, target, request.headers, await request.body(), HMAC_KEYS)
        except InvalidCredentials as exc:
            return JSONResponse({"error": str(exc)}, 401)
        subject = "nobody" if acting is None else acting.subject
        self.served.append(subject)
        call = len(self.served)
        await asyncio.sleep(self.delay)
        return JSONResponse({"id": request.path_params["key"], "acting": subject, "call": call})


def _acting_source(url: str) -> dict[str, Any]:
    [(key_id, secret)] = HMAC_KEYS.items()
    return {
        **_source("HRSS", {"Person.name": {"value": "acting"}, "Person.phone": {"value": "call"}}, batch=False),
        "base_url": url,
        "credentials": {"type": "hmac_headers", "key_id": key_id, "secret": secret},
        "cache": {"ttl": "0.3s", "stale_while_revalidate": "1m"},
    }


async def _as_a_request(source_set: SourceSet, principal: Principal, key: str) -> tuple[str, str]:
    """One GraphQL request's read, as the app makes it: in its own task, the principal set in get_context."""

    async def request() -> tuple[str, str]:
        ACTING_PRINCIPAL.set(principal)
        sources = source_set.for_request()
        sources.scope = principal.identity
        return await sources.value("Person", key, "name"), await sources.value("Person", key, "phone")

    return await asyncio.create_task(request())


async def test_concurrent_principals_get_answers_signed_for_themselves_fresh_and_revalidated() -> None:
    department = ActingDepartment()
    key = make_ids(1)[0]
    async with serve(department.app()) as url:
        config = parse_config({"sources": {"hrss": _acting_source(url)}, "cache": {"url": "memory://"}}, {})
        adapters: dict[str, Adapter] = {"hrss": RestAdapter("hrss", config.sources["hrss"])}
        cache = RecordCache(config.cache)
        source_set = SourceSet(config, adapters, cache=cache)
        await source_set.open()
        try:
            # both ask for the same key at once: neither joins the other's load
            zhao, qian = await asyncio.gather(
                _as_a_request(source_set, ZHAO, key), _as_a_request(source_set, QIAN, key)
            )
            assert (zhao[0], qian[0]) == ("zhao.lei", "qian.min")
            assert sorted(department.served) == ["qian.min", "zhao.lei"]
            assert {zhao[1], qian[1]} == {"1", "2"}

            # once stale, each is served their own stale answer while their own refresh runs in the background
            await asyncio.sleep(0.35)
            zhao_stale, qian_stale = await asyncio.gather(
                _as_a_request(source_set, ZHAO, key), _as_a_request(source_set, QIAN, key)
            )
            assert (zhao_stale, qian_stale) == (zhao, qian)
            for _ in range(100):
                if len(department.served) == 4:
                    break
                await asyncio.sleep(0.02)
            assert sorted(department.served[2:]) == ["qian.min", "zhao.lei"]  # each refresh signed for its own
            await asyncio.sleep(0.25)  # the refreshed answers arrive and are stored

            zhao_fresh, qian_fresh = await asyncio.gather(
                _as_a_request(source_set, ZHAO, key), _as_a_request(source_set, QIAN, key)
            )
            assert (zhao_fresh[0], qian_fresh[0]) == ("zhao.lei", "qian.min")
            assert {zhao_fresh[1], qian_fresh[1]} == {"3", "4"}  # the refreshed answers, one per principal
            assert len(department.served) == 4
        finally:
            await source_set.aclose()


def test_only_sources_whose_credentials_carry_the_principal_are_told_who_acts() -> None:
    sources = {
        "hrss": _acting_source("http://department.invalid"),
        "ps": _source("Public Security", {"Person.ethnicity": {"value": "mz"}}, batch=False),
    }
    assert SourceSet(parse_config({"sources": sources}, {}), {}).acting_sources == {"hrss"}
