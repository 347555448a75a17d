"""The case workflow (:mod:`gateway.workflow`) over HTTP against the running demo departments: each mutation written
through to the approval platform's database, idempotency keys replayed, typed errors for bad input and for actions
the case does not allow, the supervisors' deadline view, and case events over WebSocket and over SSE."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import create_engine, text
from starlette.applications import Starlette

from demo.data import SAMPLE_PERSON_ID
from demo.departments import DemoDepartments
from demo.model import Case, Dataset
from demo.sql_departments import sqlite_url
from demo.variants import DEMO_CONFIG
from gateway.app import create_app
from gateway.calendar import Pause, deadline_status
from gateway.config import GatewayConfig, load_config
from gateway.mapping import CHINA_STANDARD_TIME
from gateway.serving import serve_asgi
from gateway.workflow import CaseWorkflow
from tests.demo_gateway import ServedGateway
from tests.gateway.conftest import Gateway

RECEIVE = """
mutation($key: String!, $item: String!, $applicant: String!, $note: String) {
  receiveApplication(input: {idempotencyKey: $key, serviceItem: $item, applicant: $applicant, note: $note}) {
    caseNumber status event at handler note replayed
  }
}"""
SUPPLEMENT = """
mutation($key: String!, $case: String!, $missing: [String!]!) {
  requestSupplement(input: {idempotencyKey: $key, caseNumber: $case, missingMaterials: $missing}) {
    caseNumber status event note replayed
  }
}"""
SUPPLIED = """
mutation($key: String!, $case: String!) {
  receiveSupplement(input: {idempotencyKey: $key, caseNumber: $case}) { caseNumber status event replayed }
}"""
RATE = """
mutation($key: String!, $case: String!, $score: Int!, $comment: String) {
  rateCase(input: {idempotencyKey: $key, caseNumber: $case, score: $score, comment: $comment}) {
    caseNumber status event note replayed
  }
}"""
CASE = """
query($n: String!) {
  case(caseNumber: $n) { status warningState events { type handler note } serviceItem { department } }
}"""
DEADLINES = """
query($d: String!) {
  caseDeadlines(department: $d) { caseNumber serviceItem status state workingDaysUsed workingDaysLeft due paused }
}"""
EVENTS = "subscription($n: String) { caseEvents(caseNumber: $n) { caseNumber event status note department } }"
# 最低生活保障审核确认, handled by 民政局 (the demo clerk's bureau)
SUBSISTENCE = "11010501300003"
CIVIL_AFFAIRS = "民政局"
SUPERVISOR = """
auth:
  development_principal:
    subject: demo-supervisor
    kind: officer
    department: 督查室
    roles: [supervisor]
"""

# A clerk of the hall's own centre at a comprehensive window (demo: purposes.windows.comprehensive), and one at a
# plain window of the centre: the first takes in SUBSISTENCE for 民政局, the second takes in nothing.
WINDOW_CLERK = """
auth:
  development_principal:
    subject: demo-window-clerk
    kind: clerk
    department: 政务服务中心
    window: B-07
    roles: [comprehensive_window]
"""
CENTRE_CLERK = WINDOW_CLERK.replace("demo-window-clerk", "demo-centre-clerk").replace("[comprehensive_window]", "[]")


@dataclass
class Window(ServedGateway):
    """A gateway with the workflow, its app (to see its subscribers) and the approval platform's database."""

    app: Starlette
    database: Path
    dataset: Dataset

    async def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.query(query, **variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.query(query, **variables)
        assert body.get("errors"), body
        extensions: dict[str, Any] = body["errors"][0]["extensions"]
        return extensions

    def rows(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(sqlite_url(self.database))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params))
        finally:
            engine.dispose()

    async def subscribed(self, count: int = 1) -> None:
        """Wait until ``count`` subscriptions listen for case events."""
        workflow: CaseWorkflow = self.app.state.workflow
        async with asyncio.timeout(10):
            # polled: across processes (Redis) the count is the server's, with nothing to wait on
            while await workflow.events.subscribers() < count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)


Start = Callable[..., Awaitable[Window]]


@pytest.fixture
async def start(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Start]:
    """Gateways on the demo configuration (its workflow included), no cache unless given a URL, own audit."""
    numbers = itertools.count(1)
    async with contextlib.AsyncExitStack() as stack:

        async def run(
            clerk_department: str = CIVIL_AFFAIRS,
            *,
            overlay: str | None = None,
            cache_url: str | None = None,
            audit_url: str | None = None,
        ) -> Window:
            n = next(numbers)
            overlays = []
            if overlay is not None:
                path = tmp_path / f"overlay-{n}.yaml"
                path.write_text(overlay, encoding="utf-8")
                overlays.append(path)
            variables = {
                **departments.variables,
                "DEMO_AUDIT_URL": audit_url or f"sqlite+aiosqlite:///{tmp_path / f'audit-{n}.db'}",
                "DEMO_CACHE": "true" if cache_url else "false",
                "DEMO_CACHE_URL": cache_url or "memory://",
                "DEMO_CLERK_DEPARTMENT": clerk_department,
            }
            config: GatewayConfig = load_config(DEMO_CONFIG, variables, overlays=overlays)
            app = create_app(config)
            url = await stack.enter_async_context(serve_asgi(app))
            return Window(url, config, app, departments.databases["approval"], departments.dataset)

        yield run


def _key() -> str:
    return f"test-{uuid.uuid4()}"


async def _received(window: Window, applicant: str = SAMPLE_PERSON_ID) -> str:
    data = await window.ok(RECEIVE, key=_key(), item=SUBSISTENCE, applicant=applicant, note=None)
    number: str = data["receiveApplication"]["caseNumber"]
    return number


async def test_receiving_an_application_writes_the_case_and_its_first_event(start: Start) -> None:
    window = await start()
    data = await window.ok(RECEIVE, key=_key(), item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note="窗口收件")
    result = data["receiveApplication"]
    number = result["caseNumber"]
    assert result["status"] == "RECEIVED"
    assert result["event"] == "RECEIVED"
    assert not result["replayed"]
    assert result["handler"].startswith("A-01 ")
    # written to the approval platform's own tables, in its own codes
    [case] = window.rows("SELECT SXBM, SQRLX, SQRZJHM, BJZT, BJSX FROM T_BJ WHERE BJBH = :n", n=number)
    assert (case.SXBM, case.SQRLX, case.SQRZJHM, case.BJZT) == (SUBSISTENCE, "1", SAMPLE_PERSON_ID, "01")
    [event] = window.rows("SELECT HJ, YJ FROM T_BJ_GC WHERE BJBH = :n", n=number)
    assert (event.HJ, event.YJ) == ("SJ", "窗口收件")
    # and read back through the gateway like any other case
    read = (await window.ok(CASE, n=number))["case"]
    assert read["status"] == "RECEIVED"
    assert read["warningState"] == "ON_TIME"
    assert [e["type"] for e in read["events"]] == ["RECEIVED"]
    assert read["serviceItem"]["department"] == CIVIL_AFFAIRS
    # the write is in the audit, under the applicant, with the case as its purpose
    writes = [r for r in await window.audit_of(SAMPLE_PERSON_ID) if "write:receiveApplication" in r.released]
    assert [(w.purpose, w.sources, w.subject) for w in writes] == [
        (number, ("approval",), "demo-clerk (development principal)")
    ]


async def test_a_replayed_key_answers_the_first_result_and_writes_nothing(start: Start) -> None:
    window = await start()
    key = _key()
    first = await window.ok(RECEIVE, key=key, item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note=None)
    again = await window.ok(RECEIVE, key=key, item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note=None)
    number = first["receiveApplication"]["caseNumber"]
    assert again["receiveApplication"]["caseNumber"] == number
    assert again["receiveApplication"]["replayed"]
    mine = "SELECT BJBH FROM T_BJ WHERE SQRZJHM = :a AND SXBM = :i AND BJZT = '01'"
    seeded = {c.case_number for c in window.dataset.cases if c.applicant_id == SAMPLE_PERSON_ID}
    assert {r.BJBH for r in window.rows(mine, a=SAMPLE_PERSON_ID, i=SUBSISTENCE)} - seeded == {number}
    assert len(window.rows("SELECT 1 FROM T_BJ_GC WHERE BJBH = :n", n=number)) == 1
    # the same key for another input is refused, and writes nothing either
    other = await window.error(RECEIVE, key=key, item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note="另一件")
    assert other["code"] == "IDEMPOTENCY_CONFLICT"
    # a replayed step answers its first result even though the case has moved on since
    step = _key()
    asked = await window.ok(SUPPLEMENT, key=step, case=number, missing=["身份证明复印件"])
    await window.ok(SUPPLIED, key=_key(), case=number)
    replay = await window.ok(SUPPLEMENT, key=step, case=number, missing=["身份证明复印件"])
    assert replay["requestSupplement"] == {**asked["requestSupplement"], "replayed": True}
    assert len(window.rows("SELECT 1 FROM T_BJ_GC WHERE BJBH = :n AND HJ = 'BZGZ'", n=number)) == 1


async def test_bad_input_is_refused_before_any_department_is_asked(gateway: Gateway) -> None:
    async def refused(query: str, **variables: Any) -> str:
        body = await gateway.query(query, **variables)
        assert body.get("errors"), body
        assert body["data"] is None
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    bad_id = await refused(RECEIVE, key=_key(), item=SUBSISTENCE, applicant="11010519491231002Y", note=None)
    assert bad_id == "BAD_USER_INPUT"
    assert await refused(RATE, key=_key(), case="BJ1", score=6, comment=None) == "BAD_USER_INPUT"
    assert await refused(RATE, key=_key(), case="BJ1", score=0, comment=None) == "BAD_USER_INPUT"
    assert await refused(SUPPLEMENT, key=_key(), case="BJ1", missing=["  "]) == "BAD_USER_INPUT"
    assert await refused(SUPPLIED, key="", case="BJ1") == "BAD_USER_INPUT"
    assert gateway.department_calls()["approval"] == 0  # not one statement reached the approval platform
    # an item or case the platform does not know is asked of it, and refused by name; nothing is written
    unknown = await refused(RECEIVE, key=_key(), item="11010599999999", applicant=SAMPLE_PERSON_ID, note=None)
    assert unknown == "NOT_FOUND"
    assert await refused(SUPPLIED, key=_key(), case="BJ20990101000001") == "NOT_FOUND"
    assert gateway.department_calls()["approval"] > 0


async def test_supplements_stop_the_clock_and_steps_follow_the_status(start: Start) -> None:
    window = await start()
    number = await _received(window)
    asked = await window.ok(SUPPLEMENT, key=_key(), case=number, missing=["户口簿", "近期免冠照片"])
    assert asked["requestSupplement"]["status"] == "SUPPLEMENT_REQUESTED"
    assert asked["requestSupplement"]["note"] == "材料不全，请补正：户口簿、近期免冠照片"
    [row] = window.rows("SELECT BJZT FROM T_BJ WHERE BJBH = :n", n=number)
    assert row.BJZT == "03"
    # asked again while it waits: not valid in this status, nothing written
    again = await window.error(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    assert again["code"] == "INVALID_CASE_ACTION"
    read = (await window.ok(CASE, n=number))["case"]
    assert [e["type"] for e in read["events"]] == ["RECEIVED", "SUPPLEMENT_REQUESTED"]
    supplied = await window.ok(SUPPLIED, key=_key(), case=number)
    assert supplied["receiveSupplement"]["status"] == "ACCEPTED"
    assert supplied["receiveSupplement"]["event"] == "SUPPLEMENT_RECEIVED"
    assert [r.HJ for r in window.rows("SELECT HJ FROM T_BJ_GC WHERE BJBH = :n ORDER BY GCID", n=number)] == [
        "SJ", "BZGZ", "BZJS"
    ]  # fmt: skip
    assert (await window.error(SUPPLIED, key=_key(), case=number))["code"] == "INVALID_CASE_ACTION"


def _completed(dataset: Dataset, department: str) -> Case:
    items = {i.code for i in dataset.service_items if i.department == department}
    return next(c for c in dataset.cases if c.status == "COMPLETED" and c.service_item in items)


async def test_a_completed_case_is_rated_once(start: Start) -> None:
    window = await start()
    case = _completed(window.dataset, CIVIL_AFFAIRS)
    rated = await window.ok(RATE, key=_key(), case=case.case_number, score=5, comment="办事快，态度好")
    assert rated["rateCase"]["event"] is None
    assert rated["rateCase"]["note"] == "办事快，态度好"
    [row] = window.rows("SELECT PJDJ, PJNR FROM T_BJ_PJ WHERE BJBH = :n", n=case.case_number)
    assert (row.PJDJ, row.PJNR) == (5, "办事快，态度好")
    twice = await window.error(RATE, key=_key(), case=case.case_number, score=1, comment=None)
    assert twice["code"] == "INVALID_CASE_ACTION"
    assert window.rows("SELECT PJDJ FROM T_BJ_PJ WHERE BJBH = :n", n=case.case_number)[0].PJDJ == 5
    # an open case is not rated yet
    number = await _received(window)
    assert (await window.error(RATE, key=_key(), case=number, score=4, comment=None))["code"] == "INVALID_CASE_ACTION"


async def test_staff_of_another_department_may_not_act_and_the_refusal_is_audited(start: Start) -> None:
    civil = await start()
    number = await _received(civil)
    other = await start("市场监督管理局")
    refused = await other.error(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    assert refused["code"] == "FORBIDDEN"
    assert refused["reason"] == "NOT_CASE_DEPARTMENT"
    assert [r.HJ for r in civil.rows("SELECT HJ FROM T_BJ_GC WHERE BJBH = :n", n=number)] == ["SJ"]
    receive = await other.error(RECEIVE, key=_key(), item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note=None)
    assert receive["code"] == "FORBIDDEN"
    refusals = [r for r in await other.audit_of(SAMPLE_PERSON_ID) if r.outcome == "refused"]
    assert {r.refused for r in refusals} == {("requestSupplement",), ("receiveApplication",)}


async def test_a_comprehensive_window_acts_on_the_cases_of_the_items_it_takes_in(start: Start) -> None:
    """The workflow follows the rule reads follow: a window taking an item in for its department receives and
    steps its cases; on a case of any other item it is refused like staff of another department."""
    window = await start(overlay=WINDOW_CLERK)
    number = await _received(window)
    asked = await window.ok(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    assert asked["requestSupplement"]["status"] == "SUPPLEMENT_REQUESTED"
    assert (await window.ok(SUPPLIED, key=_key(), case=number))["receiveSupplement"]["status"] == "ACCEPTED"
    handlers = window.rows("SELECT CLR FROM T_BJ_GC WHERE BJBH = :n ORDER BY GCID", n=number)
    assert len(handlers) == 3
    assert all(str(h.CLR).startswith("B-07 ") for h in handlers), handlers
    writes = [r for r in await window.audit_of(SAMPLE_PERSON_ID) if r.outcome == "released" and r.purpose == number]
    assert {r.released for r in writes} == {
        ("write:receiveApplication",),
        ("write:requestSupplement",),
        ("write:receiveSupplement",),
    }
    assert all(r.subject == "demo-window-clerk" for r in writes)

    # a case of an item the window does not take in: refused, audited, nothing written
    taken_in = window.config.auth.policy.purposes.windows["comprehensive"].items
    other = next(
        c
        for c in window.dataset.cases
        if c.service_item not in taken_in and c.status in ("RECEIVED", "ACCEPTED") and c.applicant_kind == "PERSON"
    )
    written = "SELECT T_BJ.BJZT, COUNT(GCID) FROM T_BJ JOIN T_BJ_GC USING (BJBH) WHERE BJBH = :n GROUP BY T_BJ.BJZT"
    before = window.rows(written, n=other.case_number)
    refused = await window.error(SUPPLEMENT, key=_key(), case=other.case_number, missing=["户口簿"])
    assert (refused["code"], refused["reason"]) == ("FORBIDDEN", "NOT_CASE_DEPARTMENT")
    assert window.rows(written, n=other.case_number) == before
    refusals = [r for r in await window.audit_of(other.applicant_id) if r.outcome == "refused"]
    assert [r.refused for r in refusals] == [("requestSupplement",)]


async def test_a_clerk_of_the_centre_at_a_plain_window_may_not_act(start: Start) -> None:
    """Sitting in the hall is not handling an item: a clerk of the centre without a comprehensive window is refused
    every action, each refusal audited, and nothing is written."""
    civil = await start()
    number = await _received(civil)
    centre = await start(overlay=CENTRE_CLERK)
    cases_before = len(centre.rows("SELECT 1 FROM T_BJ"))
    receive = await centre.error(RECEIVE, key=_key(), item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note=None)
    supplement = await centre.error(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    for refused in (receive, supplement):
        assert (refused["code"], refused["reason"]) == ("FORBIDDEN", "NOT_CASE_DEPARTMENT")
    assert len(centre.rows("SELECT 1 FROM T_BJ")) == cases_before
    assert [r.HJ for r in centre.rows("SELECT HJ FROM T_BJ_GC WHERE BJBH = :n", n=number)] == ["SJ"]
    refusals = [r for r in await centre.audit_of(SAMPLE_PERSON_ID) if r.outcome == "refused"]
    assert sorted(r.refused for r in refusals) == [("receiveApplication",), ("requestSupplement",)]
    assert all(r.subject == "demo-centre-clerk" for r in refusals)


async def test_supervisors_see_the_warning_and_overdue_cases_of_a_department(start: Start) -> None:
    window = await start(overlay=SUPERVISOR)
    clerk = await start()
    number = await _received(clerk)
    await clerk.ok(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    listed = (await window.ok(DEADLINES, d=CIVIL_AFFAIRS))["caseDeadlines"]
    # what the department's open cases say, counted here from the seeded timelines with the demo's calendar
    workflow: CaseWorkflow = window.app.state.workflow
    items = {i.code: i for i in window.dataset.service_items if i.department == CIVIL_AFFAIRS}
    now = dt.datetime.now(CHINA_STANDARD_TIME)
    expected = {}
    for case in window.dataset.cases:
        if case.service_item not in items or case.status in ("COMPLETED", "REJECTED"):
            continue
        pauses, start_at = [], None
        for event in case.events:
            if event.type == "SUPPLEMENT_REQUESTED":
                start_at = event.at.replace(tzinfo=CHINA_STANDARD_TIME)
            elif event.type == "SUPPLEMENT_RECEIVED" and start_at is not None:
                pauses.append(Pause(start_at, event.at.replace(tzinfo=CHINA_STANDARD_TIME)))
                start_at = None
        if start_at is not None:
            pauses.append(Pause(start_at, None))
        submitted = case.submitted_at.replace(tzinfo=CHINA_STANDARD_TIME)
        status = deadline_status(workflow.calendar, submitted, items[case.service_item].promised_days, pauses, now)
        if status.left <= workflow.settings.warning_days:
            expected[case.case_number] = (status.left, status.paused)
    assert expected, "the seeded data has warning or overdue cases at 民政局"
    assert {d["caseNumber"]: (d["workingDaysLeft"], d["paused"]) for d in listed} == expected
    assert all(d["state"] == ("OVERDUE" if d["workingDaysLeft"] < 0 else "WARNING") for d in listed)
    assert [d["workingDaysLeft"] for d in listed] == sorted(d["workingDaysLeft"] for d in listed)
    assert number not in expected  # a fresh case is on time
    # each case listed is a disclosure to the supervisor, recorded under the case
    for line in listed:
        [record] = await window.audit_of(line["caseNumber"])
        assert record.subject == "demo-supervisor"
        assert {"caseNumber", "serviceItem", "status"} <= set(record.released)
    # a clerk is not a supervisor
    assert (await clerk.error(DEADLINES, d=CIVIL_AFFAIRS))["code"] == "FORBIDDEN"


async def test_with_the_audit_down_no_case_is_listed_and_nothing_is_written(start: Start, tmp_path: Path) -> None:
    """An audit store that cannot record: caseDeadlines is refused with AUDIT_UNAVAILABLE, as the ``cases`` listing
    would be, and a workflow action writes nothing it could not record."""
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'no-such-volume' / 'audit.db'}"  # SQLite cannot create it
    supervisor = await start(overlay=SUPERVISOR, audit_url=unreachable)
    body = await supervisor.query(DEADLINES, d=CIVIL_AFFAIRS)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["AUDIT_UNAVAILABLE"]
    clerk = await start(audit_url=unreachable)
    cases_before = len(clerk.rows("SELECT 1 FROM T_BJ"))
    refused = await clerk.error(RECEIVE, key=_key(), item=SUBSISTENCE, applicant=SAMPLE_PERSON_ID, note=None)
    assert refused["code"] == "AUDIT_UNAVAILABLE"
    assert len(clerk.rows("SELECT 1 FROM T_BJ")) == cases_before


@contextlib.asynccontextmanager
async def _case_events(window: Window) -> AsyncIterator[websockets.ClientConnection]:
    """A WebSocket to ``window`` subscribed to case events (as id "1"), once the window counts the subscription."""
    address = window.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(address, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        await window.subscribed()
        yield ws


async def test_case_events_reach_a_websocket_subscriber(start: Start) -> None:
    window = await start()
    async with _case_events(window) as ws:
        number = await _received(window)
        await window.ok(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
        async with asyncio.timeout(10):
            first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
    assert first["type"] == "next"
    assert first["id"] == "1"
    assert first["payload"]["data"]["caseEvents"] == {
        "caseNumber": number, "event": "RECEIVED", "status": "RECEIVED", "note": "材料已接收",
        "department": CIVIL_AFFAIRS,
    }  # fmt: skip
    assert second["payload"]["data"]["caseEvents"]["event"] == "SUPPLEMENT_REQUESTED"


async def test_a_comprehensive_window_hears_the_cases_of_the_items_it_takes_in(start: Start) -> None:
    window = await start(overlay=WINDOW_CLERK)
    async with _case_events(window) as ws:
        number = await _received(window)  # an item of 民政局 that the window takes in
        async with asyncio.timeout(10):
            heard = json.loads(await ws.recv())
    assert heard["payload"]["data"]["caseEvents"]["caseNumber"] == number
    assert heard["payload"]["data"]["caseEvents"]["department"] == CIVIL_AFFAIRS


async def test_a_websocket_of_another_department_hears_nothing_of_the_case(start: Start) -> None:
    window = await start()
    other = await start("市场监督管理局")
    address = other.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(address, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        await other.subscribed()
        await _received(window)  # heard by the bus (one process), not shown to 市场监督管理局
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"


async def _sse_events(window: Window, query: str, variables: dict[str, Any], wanted: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    headers = {"accept": "text/event-stream", "content-type": "application/json"}
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST", f"{window.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "next":
                events.append(json.loads(line.removeprefix("data: ")))
                if len(events) == wanted:
                    return events
    return events


async def test_case_events_reach_an_sse_subscriber(start: Start) -> None:
    window = await start()
    number = await _received(window)
    listening = asyncio.create_task(_sse_events(window, EVENTS, {"n": number}, 2))
    await window.subscribed()
    await window.ok(SUPPLEMENT, key=_key(), case=number, missing=["户口簿"])
    await window.ok(SUPPLIED, key=_key(), case=number)
    async with asyncio.timeout(10):
        events = await listening
    assert [e["data"]["caseEvents"]["event"] for e in events] == ["SUPPLEMENT_REQUESTED", "SUPPLEMENT_RECEIVED"]
    assert events[1]["data"]["caseEvents"]["status"] == "ACCEPTED"


async def test_case_events_cross_gateway_processes_through_redis(start: Start, redis_url: str) -> None:
    namespace = f"s17-workflow-{uuid.uuid4().hex[:8]}"
    overlay = f"cache: {{namespace: {namespace}, key_secret: test-only-key-secret}}\n"
    listener = await start(cache_url=redis_url, overlay=overlay)
    actor = await start(cache_url=redis_url, overlay=overlay)
    number = await _received(actor)
    listening = asyncio.create_task(_sse_events(listener, EVENTS, {"n": number}, 1))
    await listener.subscribed()
    # the idempotency key is shared too: a replay through the other process writes nothing
    key = _key()
    await actor.ok(SUPPLEMENT, key=key, case=number, missing=["户口簿"])
    replay = await listener.ok(SUPPLEMENT, key=key, case=number, missing=["户口簿"])
    assert replay["requestSupplement"]["replayed"]
    async with asyncio.timeout(10):
        [event] = await listening
    assert event["data"]["caseEvents"]["caseNumber"] == number
    assert event["data"]["caseEvents"]["event"] == "SUPPLEMENT_REQUESTED"
