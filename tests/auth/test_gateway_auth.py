"""Identity, sharing, masking and the audit end to end: real departments, the real gateway, signed tokens.

Callers present the gateway's own session tokens (what a CAS login hands out), signed with the configured secret,
so every request goes through the real authentication backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from auth.audit import AuditFilter, AuditLog
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionTokens
from demo.departments import DemoDepartments
from demo.model import SAMPLE_PERSON_ID
from demo.variants import DEMO_OPERATOR
from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.serving import serve_asgi
from tests.demo_config import demo_yaml
from tests.gateway.faults import Fault, FaultProxy

SESSION_SECRET = "test-session-secret-with-enough-entropy-0123456789"
PERSON_FIELDS = "idNumber name phone maritalStatus ethnicity socialInsurance { insured }"
PERSON = f"""
query($id: IdNumber!, $case: String!) {{
  person(idNumber: $id, purpose: {{caseNumber: $case}}) {{ {PERSON_FIELDS} provenance {{ field masked }} }}
}}"""
PERSON_NO_PURPOSE = f"query($id: IdNumber!) {{ person(idNumber: $id) {{ {PERSON_FIELDS} }} }}"


@dataclass
class Secured:
    url: str
    config: GatewayConfig
    departments: DemoDepartments
    tokens: SessionTokens

    def token(self, principal: Principal) -> str:
        return self.tokens.issue(principal)[0]

    async def ask(
        self, principal: Principal | None, query: str, client: httpx.AsyncClient | None = None, **variables: Any
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        headers = {} if principal is None else {"Authorization": f"Bearer {self.token(principal)}"}
        async with contextlib.nullcontext(client) if client is not None else httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        return response.status_code, response.json(), response.headers

    def calls(self) -> int:
        return sum(counter.total for counter in self.departments.counters.values())


def _secure(data: dict[str, Any], audit_url: str) -> None:
    data["security"]["production"] = True
    data["auth"].pop("development_principal")
    data["auth"]["sessions"] = {"secret": SESSION_SECRET, "ttl": "5m"}
    data["auth"]["audit"] = {"url": audit_url, "write_timeout": "1s"}


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "departments") as demo:
        yield demo


async def _serve(
    departments: DemoDepartments,
    tmp_path: Path,
    audit_url: str,
    edit: Callable[[dict[str, Any]], None] = lambda data: None,
) -> AsyncIterator[Secured]:
    def secure(data: dict[str, Any]) -> None:
        _secure(data, audit_url)
        edit(data)

    path = demo_yaml(tmp_path, open_policy=False, edit=secure)
    config = load_config(path, variables=departments.variables)
    async with serve_asgi(create_app(config)) as url:
        secured = Secured(url, config, departments, SessionTokens(config.auth.sessions))
        for counter in departments.counters.values():
            counter.reset()
        yield secured


@pytest.fixture
async def secured(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Secured]:
    async for s in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"):
        yield s


def clerk(department: str = "民政局", *roles: str, subject: str = "wang.fang") -> Principal:
    return Principal(subject, PrincipalKind.CLERK, "cas", department=department, window="A-07", roles=frozenset(roles))


def citizen(id_number: str = SAMPLE_PERSON_ID) -> Principal:
    return Principal("citizen-1", PrincipalKind.CITIZEN, "cas", id_number=id_number)


def _codes(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        str(e["path"][-1]): (e["extensions"]["code"], e["extensions"].get("reason")) for e in body.get("errors", [])
    }


# -- identity ---------------------------------------------------------------------------------------------------


async def test_no_credentials_get_401_with_a_challenge(secured: Secured) -> None:
    status, body, headers = await secured.ask(None, PERSON_NO_PURPOSE, id=SAMPLE_PERSON_ID)
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer realm="onewindow"')
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert secured.calls() == 0


async def test_a_token_signed_with_another_secret_is_refused(secured: Secured) -> None:
    forged = SessionTokens(secured.config.auth.sessions.model_copy(update={"secret": None})).issue(clerk())[0]
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{secured.url}/graphql",
            json={"query": "{ viewer { subject } }"},
            headers={"Authorization": f"Bearer {forged}"},
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_viewer_is_the_authenticated_principal(secured: Secured) -> None:
    status, body, _ = await secured.ask(clerk(), "{ viewer { subject kind via department window } }")
    assert status == 200, body
    assert body["data"]["viewer"] == {
        "subject": "wang.fang",
        "kind": "clerk",
        "via": "cas",
        "department": "民政局",
        "window": "A-07",
    }


# -- purpose and sharing ----------------------------------------------------------------------------------------


async def test_clerk_without_a_purpose_gets_nothing_and_no_department_is_asked(secured: Secured) -> None:
    _, body, _ = await secured.ask(clerk(), PERSON_NO_PURPOSE, id=SAMPLE_PERSON_ID)
    person = body["data"]["person"]
    assert {k: v for k, v in person.items() if k != "idNumber"} == dict.fromkeys(person.keys() - {"idNumber"})
    codes = _codes(body)
    assert codes["name"] == ("FORBIDDEN", "PURPOSE_REQUIRED")
    assert codes["maritalStatus"] == ("FORBIDDEN", "PURPOSE_REQUIRED")
    household_and_marriage = ("public_security", "civil_affairs", "hrss")
    assert all(secured.departments.counters[name].total == 0 for name in household_and_marriage)


async def test_clerk_with_a_purpose_reads_what_sharing_allows_masked_by_role(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    expected = secured.departments.dataset.sample_person
    _, body, _ = await secured.ask(clerk(), PERSON, id=SAMPLE_PERSON_ID, case=case)
    person = body["data"]["person"]
    assert person["name"] == expected.name
    assert person["maritalStatus"] is not None  # conditional: 民政局 owns the marriage registry
    assert person["socialInsurance"] is not None  # conditional: 民政局 holds an agreement with hrss
    assert person["phone"] == expected.phone[:3] + "****" + expected.phone[-4:]
    assert person["idNumber"] == "110***********002X"
    assert _codes(body) == {"ethnicity": ("FORBIDDEN", "NOT_SHARED")}
    masked = {p["field"]: p["masked"] for p in person["provenance"]}
    assert masked["phone"] is True
    assert masked["name"] is False
    assert "ethnicity" not in masked


async def test_case_handler_role_reveals_masked_values(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    expected = secured.departments.dataset.sample_person
    _, body, _ = await secured.ask(clerk("民政局", "case_handler"), PERSON, id=SAMPLE_PERSON_ID, case=case)
    assert body["data"]["person"]["phone"] == expected.phone
    assert body["data"]["person"]["idNumber"] == SAMPLE_PERSON_ID


async def test_a_purpose_that_does_not_hold_is_refused_with_the_reason(secured: Secured) -> None:
    dataset = secured.departments.dataset
    case = dataset.sample_purpose.case_number
    other_person = next(p.id_number for p in dataset.persons if p.id_number != SAMPLE_PERSON_ID)
    # Someone else's case, another department's case, and no such case.
    _, wrong_applicant, _ = await secured.ask(clerk(), PERSON, id=other_person, case=case)
    _, wrong_department, _ = await secured.ask(clerk("人力资源和社会保障局"), PERSON, id=SAMPLE_PERSON_ID, case=case)
    _, unknown, _ = await secured.ask(clerk(), PERSON, id=SAMPLE_PERSON_ID, case="BJ-NO-SUCH-CASE")
    for body, detail in (
        (wrong_applicant, "does not belong"),
        (wrong_department, "not handled by"),
        (unknown, "does not exist"),
    ):
        assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID")
        assert any(detail in e["message"] for e in body["errors"]), body["errors"]


async def test_department_without_an_agreement_gets_unconditional_fields_only(secured: Secured) -> None:
    dataset = secured.departments.dataset
    agreements = set(secured.config.sources["civil_affairs"].agreements) | {"民政局"}
    case = next(
        c
        for c in dataset.cases_by_applicant[SAMPLE_PERSON_ID]
        if dataset.service_items_by_code[c.service_item].department not in agreements
    )
    department = dataset.service_items_by_code[case.service_item].department
    _, body, _ = await secured.ask(clerk(department), PERSON, id=SAMPLE_PERSON_ID, case=case.case_number)
    assert body["data"]["person"]["name"] == dataset.sample_person.name
    assert _codes(body)["maritalStatus"] == ("FORBIDDEN", "NO_SHARING_AGREEMENT")


# -- citizens ---------------------------------------------------------------------------------------------------


async def test_citizen_reads_their_own_record_whole(secured: Secured) -> None:
    expected = secured.departments.dataset.sample_person
    _, body, _ = await secured.ask(citizen(), f"{{ me {{ {PERSON_FIELDS} cases {{ caseNumber status }} }} }}")
    me = body["data"]["me"]
    assert "errors" not in body, body["errors"]
    assert me["idNumber"] == SAMPLE_PERSON_ID
    assert me["phone"] == expected.phone
    assert me["ethnicity"]
    assert len(me["cases"]) == len(secured.departments.dataset.cases_by_applicant[SAMPLE_PERSON_ID])


async def test_citizen_reading_anyone_else_is_refused_and_audited(secured: Secured) -> None:
    dataset = secured.departments.dataset
    other = next(p.id_number for p in dataset.persons if p.id_number != SAMPLE_PERSON_ID)
    other_case = next(c.case_number for c in dataset.cases if c.applicant_id != SAMPLE_PERSON_ID)
    _, person, _ = await secured.ask(citizen(), PERSON_NO_PURPOSE, id=other)
    assert _codes(person)["name"] == ("FORBIDDEN", "NOT_OWN_DATA")
    _, case, _ = await secured.ask(citizen(), "query($n: String!) { case(caseNumber: $n) { status } }", n=other_case)
    assert case["data"] == {"case": None}
    assert _codes(case)["case"] == ("FORBIDDEN", "NOT_OWN_DATA")
    _, listing, _ = await secured.ask(
        citizen(), "query($a: String) { cases(applicant: $a) { edges { cursor } } }", a=other
    )
    assert _codes(listing)["cases"] == ("FORBIDDEN", "NOT_OWN_DATA")
    audit = AuditLog(secured.config.auth.audit)
    await audit.open()
    try:
        records = await audit.query(AuditFilter(subject="citizen-1"))
    finally:
        await audit.aclose()
    refused = {(r.entity, r.applicant, r.outcome) for r in records}
    assert ("Person", other, "refused") in refused
    assert ("Case", other_case, "refused") in refused


# -- the audit --------------------------------------------------------------------------------------------------


async def test_n_concurrent_requests_leave_n_matching_audit_records_and_the_chain_verifies(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    n = 30
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{secured.url}/graphql",
                    json={"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID, "case": case}},
                    headers={"Authorization": f"Bearer {secured.token(clerk())}", "X-Request-Id": f"req-{i}"},
                )
                for i in range(n)
            )
        )
    assert all(a.status_code == 200 and a.json()["data"]["person"]["name"] for a in answers)
    audit = AuditLog(secured.config.auth.audit)
    await audit.open()
    try:
        records = await audit.query(AuditFilter(applicant=SAMPLE_PERSON_ID), limit=1000)
        report = await audit.verify()
    finally:
        await audit.aclose()
    # the gateway's ids (each answer's X-Request-Id), the client's kept apart
    ids = sorted((a.headers["x-request-id"], f"req-{i}") for i, a in enumerate(answers))
    assert sorted((r.request_id, r.client_request_id) for r in records) == ids
    record = records[0]
    assert (record.subject, record.department, record.window, record.purpose) == ("wang.fang", "民政局", "A-07", case)
    # The ID number the clerk typed is echoed back (masked), not released: it is not in the record.
    assert set(record.released) == {"name", "phone", "maritalStatus", "socialInsurance"}
    assert record.masked == ("phone",)
    assert record.refused == ("ethnicity",)
    assert record.outcome == "partial"
    assert {"public_security", "civil_affairs", "hrss"} <= set(record.sources)
    assert report.ok, report


@pytest.mark.postgres
async def test_audit_store_down_means_no_personal_value_leaves(
    departments: DemoDepartments, tmp_path: Path, postgres_url: str
) -> None:
    engine = create_async_engine(postgres_url)
    port = engine.url.port or 5432
    await engine.dispose()
    async with FaultProxy(port) as proxy:
        audit_url = create_async_engine(postgres_url).url.set(port=proxy.port).render_as_string(hide_password=False)
        async for secured in _serve(departments, tmp_path, audit_url):
            case = departments.dataset.sample_purpose.case_number
            _, before, _ = await secured.ask(clerk(), PERSON, id=SAMPLE_PERSON_ID, case=case)
            assert before["data"]["person"]["name"]
            proxy.mode = Fault.STALL
            _, during, _ = await secured.ask(clerk(), PERSON, id=SAMPLE_PERSON_ID, case=case)
            person = during["data"]["person"]
            assert all(person[f] is None for f in ("name", "phone", "maritalStatus", "socialInsurance"))
            assert person["idNumber"] != SAMPLE_PERSON_ID  # the key typed, echoed masked: no disclosure
            codes = _codes(during)
            assert codes["name"] == ("AUDIT_UNAVAILABLE", None)
            assert codes["ethnicity"] == ("FORBIDDEN", "NOT_SHARED")
            async with httpx.AsyncClient() as http:
                ready = (await http.get(f"{secured.url}/readyz", headers=DEMO_OPERATOR)).json()
            assert "audit" in ready["degraded"]
            proxy.mode = Fault.FORWARD


async def test_audit_store_unreachable_at_start_withholds_until_it_answers(
    departments: DemoDepartments, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("auth.audit.log.RECONNECT_BACKOFF", (0.05, 0.2))
    store = tmp_path / "audit-volume"  # not there yet: SQLite cannot open a file in it
    async for secured in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{store / 'audit.db'}"):
        case = departments.dataset.sample_purpose.case_number
        async with httpx.AsyncClient(timeout=30) as http:
            _, during, _ = await secured.ask(clerk(), PERSON, http, id=SAMPLE_PERSON_ID, case=case)
            assert during["data"]["person"]["name"] is None
            assert _codes(during)["name"] == ("AUDIT_UNAVAILABLE", None)
            ready = (await http.get(f"{secured.url}/readyz", headers=DEMO_OPERATOR)).json()
            assert ready["degraded"][0] == "audit"
            assert "cannot reach the audit store" in ready["audit"]["last_error"]

            store.mkdir()
            for _ in range(100):
                ready = (await http.get(f"{secured.url}/readyz", headers=DEMO_OPERATOR)).json()
                if "audit" not in ready["degraded"]:
                    break
                await asyncio.sleep(0.05)
            assert ready["audit"]["status"] == "ok", ready
            _, after, _ = await secured.ask(clerk(), PERSON, http, id=SAMPLE_PERSON_ID, case=case)
        assert after["data"]["person"]["name"] == departments.dataset.sample_person.name
        audit = AuditLog(secured.config.auth.audit)
        await audit.open()
        try:
            records = await audit.query(AuditFilter(applicant=SAMPLE_PERSON_ID))
        finally:
            await audit.aclose()
        assert [r.outcome for r in records] == ["partial"], "one disclosure: the one made after the store answered"


# -- one principal's permissions never shape another's answer (the cache sits below the policy) -------------------


async def test_leak_probe_interleaved_principals_each_get_only_their_own_decisions(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    phone = secured.departments.dataset.sample_person.phone
    handler = clerk("民政局", "case_handler", subject="handler")
    plain = clerk("民政局", subject="plain")
    outsider_case = next(
        c
        for c in secured.departments.dataset.cases_by_applicant[SAMPLE_PERSON_ID]
        if secured.departments.dataset.service_items_by_code[c.service_item].department == "教育委员会"
    )
    outsider = clerk("教育委员会", subject="outsider")
    expectations: dict[str, Callable[[dict[str, Any]], bool]] = {
        "handler": lambda b: b["data"]["person"]["phone"] == phone and b["data"]["person"]["maritalStatus"],
        "plain": lambda b: (
            b["data"]["person"]["phone"] == phone[:3] + "****" + phone[-4:] and b["data"]["person"]["maritalStatus"]
        ),
        "outsider": lambda b: (
            b["data"]["person"]["maritalStatus"] is None
            and _codes(b)["maritalStatus"] == ("FORBIDDEN", "NO_SHARING_AGREEMENT")
        ),
    }
    order = list(itertools.islice(itertools.cycle([handler, plain, outsider]), 60))
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(
            *(
                secured.ask(
                    p, PERSON, http, id=SAMPLE_PERSON_ID, case=outsider_case.case_number if p is outsider else case
                )
                for p in order
            )
        )
    for principal, (_, body, _) in zip(order, answers, strict=True):
        assert expectations[principal.subject](body), (principal.subject, body)


# -- invalidation is an officer's or integrator's act --------------------------------------------------------------


async def test_invalidate_mutation_needs_an_invalidation_role(secured: Secured) -> None:
    mutation = 'mutation { invalidate(source: "hrss", key: "11010519491231002X") }'
    officer = Principal(
        "ops", PrincipalKind.OFFICER, "cas", department="政务服务管理办公室", roles=frozenset({"cache_admin"})
    )
    _, allowed, _ = await secured.ask(officer, mutation)
    assert "errors" not in allowed, allowed
    assert isinstance(allowed["data"]["invalidate"], int)
    _, refused, _ = await secured.ask(clerk("民政局", "case_handler"), mutation)
    assert _codes(refused)["invalidate"] == ("FORBIDDEN", "ROLE_REQUIRED")


# -- reading the audit back --------------------------------------------------------------------------------------


async def test_citizen_sees_who_read_their_data_with_staff_masked(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    await secured.ask(clerk(subject="zhang.wei"), PERSON, id=SAMPLE_PERSON_ID, case=case)
    _, body, _ = await secured.ask(citizen(), "{ myAccessLog { subject kind department purpose released outcome } }")
    assert "errors" not in body, body
    (entry,) = body["data"]["myAccessLog"]
    assert entry["subject"] == "zh***ei"
    assert (entry["kind"], entry["department"], entry["purpose"]) == ("clerk", "民政局", case)
    assert "maritalStatus" in entry["released"]
    _, staff, _ = await secured.ask(clerk(), "{ myAccessLog { subject } }")
    assert _codes(staff)["myAccessLog"] == ("FORBIDDEN", "NOT_OWN_DATA")


async def test_supervisors_read_the_audit_log_and_others_may_not(secured: Secured) -> None:
    case = secured.departments.dataset.sample_purpose.case_number
    await secured.ask(clerk(subject="zhang.wei"), PERSON, id=SAMPLE_PERSON_ID, case=case)
    query = "query($a: String) { auditLog(filter: {applicant: $a}) { seq subject window purpose outcome hash } }"
    supervisor = Principal("inspector", PrincipalKind.OFFICER, "cas", roles=frozenset({"supervisor"}))
    _, body, _ = await secured.ask(supervisor, query, a=SAMPLE_PERSON_ID)
    (record,) = body["data"]["auditLog"]
    assert (record["subject"], record["window"], record["purpose"]) == ("zhang.wei", "A-07", case)
    assert len(record["hash"]) == 64
    _, refused, _ = await secured.ask(clerk("民政局", "case_handler"), query, a=SAMPLE_PERSON_ID)
    assert _codes(refused)["auditLog"] == ("FORBIDDEN", "ROLE_REQUIRED")
