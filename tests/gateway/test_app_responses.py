"""Whole answers to hot documents, end to end: the demo departments, the audit on SQLite, Redis where shared."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from auth.audit import AuditFilter, AuditLog
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionTokens
from demo.data import SAMPLE_PERSON_ID
from demo.departments import HRSS, PUBLIC_SECURITY, DemoDepartments
from demo.variants import DEMO_OPERATOR
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.hardening import GRAPHQL_RESPONSE_JSON
from gateway.serving import serve_asgi
from tests.demo_config import demo_config
from tests.gateway.conftest import Gateway

PERSON = "query($id: IdNumber!) { person(idNumber: $id) { name socialInsurance { insured city } } }"
HOOK_TOKEN = "demo-hrss-hook-token"


async def _ask(url: str, query: str, request_id: str | None = None, **variables: Any) -> httpx.Response:
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers)


async def _metrics(url: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/metrics", headers=DEMO_OPERATOR)).text


async def _lookups(url: str) -> dict[str, float]:
    text = await _metrics(url)
    found = re.findall(r'onewindow_response_cache_lookups_total\{result="(\w+)"\} ([0-9.]+)', text)
    return {result: float(count) for result, count in found}


async def _invalidate(url: str, key: str) -> Any:
    """What the household department does when a record changes: call the gateway's invalidation hook."""
    async with httpx.AsyncClient() as client:
        done = await client.post(
            f"{url}/hooks/invalidate/{HRSS}", json={"key": key}, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
        )
    return done.json()


async def _audited(config: GatewayConfig) -> list[tuple[str, str | None]]:
    """The gateway's and the client's request ids of the sample person's audit records."""
    assert config.auth.audit is not None
    async with AuditLog(config.auth.audit) as audit:
        records = await audit.query(AuditFilter(applicant=SAMPLE_PERSON_ID), limit=1000)
        assert (await audit.verify()).ok
    return sorted((r.request_id, r.client_request_id) for r in records)


async def test_a_hot_document_is_answered_whole_and_every_answer_is_audited(gateway: Gateway) -> None:
    answers = [await _ask(gateway.url, PERSON, f"req-{i}", id=SAMPLE_PERSON_ID) for i in range(6)]

    bodies = {a.content for a in answers}
    assert len(bodies) == 1
    assert all(a.status_code == 200 and a.headers["content-type"].startswith("application/json") for a in answers)
    assert answers[0].json()["data"]["person"]["socialInsurance"]["insured"] is True
    # the first answer loads the records (stored in the record cache) and is kept; the other five are that answer
    assert await _lookups(gateway.url) == {"miss": 1.0, "hit": 5.0}
    metrics = await _metrics(gateway.url)
    assert 'onewindow_cache_lookups_total{result="miss",source="hrss"} 1.0' in metrics
    assert 'onewindow_cache_lookups_total{result="hit",source="hrss"}' not in metrics
    assert 'onewindow_graphql_requests_total{outcome="ok"} 6.0' in metrics
    calls = gateway.department_calls()
    assert (calls[PUBLIC_SECURITY], calls[HRSS]) == (1, 1)
    # each answer, kept or not, carries its own request's id, and its audit record both that id and the client's
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 6
    assert await _audited(gateway.config) == sorted((ids[i], f"req-{i}") for i in range(6))


async def test_an_invalidated_record_ends_the_kept_answer(gateway: Gateway) -> None:
    for _ in range(3):
        await _ask(gateway.url, PERSON, id=SAMPLE_PERSON_ID)
    assert await _invalidate(gateway.url, SAMPLE_PERSON_ID) == {"invalidated": 1}

    after = await _ask(gateway.url, PERSON, id=SAMPLE_PERSON_ID)

    assert after.json()["data"]["person"]["socialInsurance"]["insured"] is True
    assert await _lookups(gateway.url) == {"miss": 1.0, "hit": 2.0, "changed": 1.0}
    assert gateway.department_calls()[HRSS] == 2


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        # a case's warning state is derived from the moment it is asked
        ("query($n: String!) { case(caseNumber: $n) { status warningState } }", "case"),
        # an error in the answer (an ID number with a wrong check character)
        ("query($id: IdNumber!) { person(idNumber: $id) { name } }", "bad-id"),
        # roots other than applicant lookups
        ("query($id: IdNumber!) { viewer { subject } person(idNumber: $id) { name } }", "person"),
        # a listing asks the department every time
        ("{ cases(first: 2) { edges { node { caseNumber status } } } }", None),
    ],
    ids=["time-dependent", "error", "other-root", "listing"],
)
async def test_what_is_never_answered_whole(gateway: Gateway, query: str, variables: str | None) -> None:
    dataset = gateway.departments.dataset
    given = {
        "case": {"n": dataset.sample_purpose.case_number},
        "bad-id": {"id": SAMPLE_PERSON_ID[:-1] + ("0" if SAMPLE_PERSON_ID[-1] != "0" else "1")},
        "person": {"id": SAMPLE_PERSON_ID},
        None: {},
    }[variables]
    answers = [(await _ask(gateway.url, query, **given)).json() for _ in range(4)]

    assert len({str(a) for a in answers}) == 1
    assert "hit" not in await _lookups(gateway.url)


@pytest.fixture
async def shared_gateways(
    departments: DemoDepartments, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[str, str]]:
    """Two gateways (as two processes would be) sharing the real Redis as their record cache."""
    namespace = f"test-responses-{uuid.uuid4().hex}"

    def edit(data: dict[str, Any]) -> None:
        data["cache"] |= {"url": redis_url, "namespace": namespace}

    apps = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        apps.append(create_app(demo_config(departments.variables, tmp_path / name, edit=edit)))
    try:
        async with serve_asgi(apps[0]) as one, serve_asgi(apps[1]) as two:
            yield one, two
    finally:  # leave no keys behind in the shared Redis
        client = redis.Redis.from_url(redis_url)
        async for key in client.scan_iter(match=f"{namespace}:*"):
            await client.delete(key)
        await client.aclose()


@pytest.mark.redis
async def test_an_invalidation_through_another_gateway_process_ends_the_kept_answer(
    shared_gateways: tuple[str, str], departments: DemoDepartments
) -> None:
    one, two = shared_gateways
    for _ in range(3):
        await _ask(one, PERSON, id=SAMPLE_PERSON_ID)
    assert (await _lookups(one)).get("hit") == 2.0
    assert await _invalidate(two, SAMPLE_PERSON_ID) == {"invalidated": 1}

    await _ask(one, PERSON, id=SAMPLE_PERSON_ID)

    assert (await _lookups(one)).get("changed") == 1.0


SESSION_SECRET = "test-session-secret-with-enough-entropy-0123456789"
MASKED_PERSON = """query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) { idNumber name phone maritalStatus } }"""


async def test_kept_answers_never_cross_callers(departments: DemoDepartments, tmp_path: Path) -> None:
    """Two clerks of one department, one allowed to see unmasked values, interleaved: each always gets their own."""

    def secure(data: dict[str, Any]) -> None:
        data["auth"].pop("development_principal")
        data["auth"]["sessions"] = {"secret": SESSION_SECRET, "ttl": "5m"}

    config = demo_config(departments.variables, tmp_path, open_policy=False, edit=secure)
    tokens = SessionTokens(config.auth.sessions)
    handler = Principal("handler", PrincipalKind.CLERK, "cas", department="民政局", roles=frozenset({"case_handler"}))
    plain = Principal("plain", PrincipalKind.CLERK, "cas", department="民政局")
    headers = {p.subject: {"Authorization": f"Bearer {tokens.issue(p)[0]}"} for p in (handler, plain)}
    phone = departments.dataset.sample_person.phone
    expected = {"handler": phone, "plain": phone[:3] + "****" + phone[-4:]}
    variables = {"id": SAMPLE_PERSON_ID, "case": departments.dataset.sample_purpose.case_number}

    async with serve_asgi(create_app(config)) as url, httpx.AsyncClient(timeout=30) as client:
        for i in range(40):
            subject = ("handler", "plain")[i % 2]
            answer = await client.post(
                f"{url}/graphql", json={"query": MASKED_PERSON, "variables": variables}, headers=headers[subject]
            )
            person = answer.json()["data"]["person"]
            assert person["phone"] == expected[subject], (i, subject, person)
            assert (person["idNumber"] == SAMPLE_PERSON_ID) is (subject == "handler")
        assert (await _lookups(url)).get("hit", 0) >= 30


async def test_answers_are_kept_per_media_type_not_per_accept_header(gateway: Gateway) -> None:
    body = {"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}}
    accepts = ["application/json", "*/*", "application/graphql-response+json", "application/graphql-response+json, */*"]
    async with httpx.AsyncClient(timeout=30) as client:
        answers = [
            await client.post(f"{gateway.url}/graphql", json=body, headers={"Accept": accept}) for accept in accepts
        ]

    types = [a.headers["content-type"].split(";")[0] for a in answers]
    assert types == ["application/json", "application/json", GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON]
    assert len({a.content for a in answers}) == 1
    assert await _lookups(gateway.url) == {"miss": 2.0, "hit": 2.0}
