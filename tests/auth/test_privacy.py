"""Privacy rules on every path that reaches personal data, over HTTP with real principals (session tokens from the
gateway's own CAS sessions, API keys from the key store) against the demo departments.

Each test is one finding of the privacy review: case listings and case reads, refusals that left no audit row, a
key reached through a relation, a derived field, and departments asked while the audit could not record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from auth.apikeys import ApiKeyStore
from auth.audit import AuditFilter, AuditLog
from auth.audit.query import AuditRecord
from auth.principal import PrincipalKind
from demo.departments import DemoDepartments
from demo.model import SAMPLE_PERSON_ID
from tests.auth.test_gateway_auth import Secured, _codes, _serve, citizen, clerk

CASES = """
query($applicant: String, $case: String!) {
  cases(applicant: $applicant, first: 100, purpose: {caseNumber: $case}) {
    edges { node { caseNumber status serviceItem { department } } }
  }
}"""
CASES_NO_PURPOSE = """
query($applicant: String) {
  cases(applicant: $applicant, first: 100) { edges { node { caseNumber status serviceItem { department } } } }
}"""
CASE = "query($n: String!) { case(caseNumber: $n) { caseNumber status events { note } warningState } }"


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "departments") as demo:
        yield demo


@pytest.fixture
async def secured(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Secured]:
    async for s in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"):
        yield s


def _cases_of(departments: DemoDepartments, applicant: str) -> dict[str, str]:
    """The applicant's cases, and the department handling each."""
    dataset = departments.dataset
    items = dataset.service_items_by_code
    return {c.case_number: items[c.service_item].department for c in dataset.cases_by_applicant[applicant]}


async def _audit(secured: Secured, **filters: str) -> list[AuditRecord]:
    assert secured.config.auth.audit is not None
    log = AuditLog(secured.config.auth.audit)
    await log.open()
    try:
        return sorted(await log.query(AuditFilter(**filters), limit=1000), key=lambda r: r.seq)
    finally:
        await log.aclose()


def _listed(body: dict[str, object]) -> dict[str, str]:
    edges = body["data"]["cases"]["edges"]  # type: ignore[index]
    return {e["node"]["caseNumber"]: e["node"]["serviceItem"]["department"] for e in edges}  # type: ignore[index]


async def test_a_clerk_lists_only_the_cases_of_their_own_department_without_a_purpose(
    secured: Secured, departments: DemoDepartments
) -> None:
    held = _cases_of(departments, SAMPLE_PERSON_ID)
    assert len(set(held.values())) > 1, "the sample person has cases at several departments"
    _, body, _ = await secured.ask(clerk("民政局"), CASES_NO_PURPOSE, applicant=SAMPLE_PERSON_ID)
    listed = _listed(body)
    assert listed == {n: d for n, d in held.items() if d == "民政局"}
    # A bureau that handles none of them sees none: not even their numbers.
    departments_with_items = {item.department for item in departments.dataset.service_items}
    outsider = sorted(departments_with_items - set(held.values()))[0]
    _, body, _ = await secured.ask(clerk(outsider), CASES_NO_PURPOSE, applicant=SAMPLE_PERSON_ID)
    assert _listed(body) == {}
    # The listing is a disclosure of the applicant's cases, audited under the applicant with the reader named.
    records = await _audit(secured, applicant=SAMPLE_PERSON_ID)
    assert [(r.department, r.released) for r in records] == [("民政局", ("cases",))]


async def test_with_a_purpose_a_clerk_lists_every_case_of_that_applicant(
    secured: Secured, departments: DemoDepartments
) -> None:
    held = _cases_of(departments, SAMPLE_PERSON_ID)
    purpose = departments.dataset.sample_purpose.case_number
    _, body, _ = await secured.ask(clerk("民政局"), CASES, applicant=SAMPLE_PERSON_ID, case=purpose)
    assert "errors" not in body, body["errors"]
    assert _listed(body) == held
    # A purpose that is another bureau's case does not open the listing to this one.
    other = next(n for n, d in held.items() if d != "民政局")
    _, body, _ = await secured.ask(clerk("民政局"), CASES, applicant=SAMPLE_PERSON_ID, case=other)
    assert _listed(body) == {n: d for n, d in held.items() if d == "民政局"}
    # Every case read is audited, under its case number, with the purpose.
    reads = await _audit(secured, subject="wang.fang")
    case_reads = [r for r in reads if r.entity == "Case"]
    assert {r.applicant for r in case_reads} == set(held)
    assert all("status" in r.released for r in case_reads)


async def test_a_case_of_another_department_is_refused_and_the_refusal_audited(
    secured: Secured, departments: DemoDepartments
) -> None:
    held = _cases_of(departments, SAMPLE_PERSON_ID)
    other = next(n for n, d in held.items() if d != "民政局")
    own = next(n for n, d in held.items() if d == "民政局")
    _, body, _ = await secured.ask(clerk("民政局"), CASE, n=other)
    assert body["data"]["case"] is None
    assert _codes(body)["case"] == ("FORBIDDEN", "PURPOSE_INVALID")
    _, body, _ = await secured.ask(clerk("民政局"), CASE, n=own)
    assert body["data"]["case"]["status"]
    assert body["data"]["case"]["warningState"]
    records = {r.applicant: r for r in await _audit(secured, subject="wang.fang")}
    assert records[other].outcome == "refused"
    assert records[other].refused == ("status",)
    assert records[own].outcome == "released"
    assert {"status", "events"} <= set(records[own].released)  # the case number was typed: not a release


async def test_an_integrator_without_a_department_reads_no_case(
    secured: Secured, departments: DemoDepartments, tmp_path: Path
) -> None:
    assert secured.config.auth.api_keys is not None
    store = ApiKeyStore(secured.config.auth.api_keys)
    await store.open()
    try:
        _, key = await store.create(
            subject="integrator-1", kind=PrincipalKind.INTEGRATOR, scopes=["read:Case", "read:Person"]
        )
    finally:
        await store.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{secured.url}/graphql",
            json={"query": CASES_NO_PURPOSE, "variables": {"applicant": SAMPLE_PERSON_ID}},
            headers={"X-API-Key": key},
        )
    assert response.status_code == 200, response.text
    assert _listed(response.json()) == {}


async def test_a_citizen_listing_another_citizens_cases_is_refused_and_audited(
    secured: Secured, departments: DemoDepartments
) -> None:
    stranger = next(p.id_number for p in departments.dataset.persons if p.id_number != SAMPLE_PERSON_ID)
    _, body, _ = await secured.ask(citizen(stranger), CASES_NO_PURPOSE, applicant=SAMPLE_PERSON_ID)
    assert body["data"] is None or body["data"].get("cases") is None
    assert _codes(body)["cases"] == ("FORBIDDEN", "NOT_OWN_DATA")
    records = await _audit(secured, applicant=SAMPLE_PERSON_ID)
    assert [(r.subject, r.outcome, r.refused) for r in records] == [("citizen-1", "refused", ("cases",))]


async def test_a_person_key_reached_through_a_relation_needs_the_persons_purpose(
    secured: Secured, departments: DemoDepartments
) -> None:
    entity = next(e for e in departments.dataset.entities if e.legal_representative == SAMPLE_PERSON_ID)
    query = "query($c: CreditCode!) { legalEntity(creditCode: $c) { name legalRepresentative { idNumber } } }"
    _, body, _ = await secured.ask(clerk("民政局", "case_handler"), query, c=entity.credit_code)
    representative = body["data"]["legalEntity"]["legalRepresentative"]["idNumber"]
    assert representative != SAMPLE_PERSON_ID
    assert representative.count("*") >= 10
    records = await _audit(secured, applicant=SAMPLE_PERSON_ID)
    assert [(r.outcome, r.refused, r.released) for r in records] == [("refused", ("idNumber",), ())]


async def test_the_key_the_caller_typed_is_not_a_release(secured: Secured, departments: DemoDepartments) -> None:
    _, body, _ = await secured.ask(
        clerk("民政局", "case_handler"),
        "query($id: IdNumber!) { person(idNumber: $id) { idNumber } }",
        id=SAMPLE_PERSON_ID,
    )
    assert body["data"]["person"]["idNumber"] == SAMPLE_PERSON_ID
    assert await _audit(secured, applicant=SAMPLE_PERSON_ID) == []


async def test_no_department_is_asked_for_personal_data_while_the_audit_cannot_record(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    store = tmp_path / "audit-volume"  # not there: the audit store cannot be opened
    async for secured in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{store / 'audit.db'}"):
        purpose = departments.dataset.sample_purpose.case_number
        query = "query($id: IdNumber!, $c: String!) { person(idNumber: $id, purpose: {caseNumber: $c}) { name } }"
        _, body, _ = await secured.ask(clerk(), query, id=SAMPLE_PERSON_ID, c=purpose)
        assert body["data"]["person"]["name"] is None
        assert _codes(body)["name"] == ("AUDIT_UNAVAILABLE", None)
        household = departments.counters["public_security"]
        assert household.total == 0, "the household registry was asked while nothing could be recorded"


async def test_a_derived_field_is_released_only_if_every_field_it_reads_is(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    def refuse_deadlines(data: dict[str, object]) -> None:
        approval = data["sources"]["approval"]  # type: ignore[index]
        approval["provides"]["Case.deadline"]["sharing"] = "not_shared"  # type: ignore[index]
        approval["owner"] = "政务服务管理局"  # type: ignore[index]

    async for secured in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", refuse_deadlines):
        own = next(n for n, d in _cases_of(departments, SAMPLE_PERSON_ID).items() if d == "民政局")
        _, body, _ = await secured.ask(clerk("民政局"), CASE, n=own)
        assert body["data"]["case"]["status"]
        assert body["data"]["case"]["warningState"] is None
        assert _codes(body)["warningState"] == ("FORBIDDEN", "NOT_SHARED")


async def test_a_mask_on_a_sub_field_masks_that_part_only(departments: DemoDepartments, tmp_path: Path) -> None:
    def mask_city(data: dict[str, object]) -> None:
        masking = data["auth"]["policy"].setdefault("masking", {})  # type: ignore[index, union-attr]
        masking["Person.socialInsurance.city"] = {"mask": "name", "reveal_to": ["supervisor"]}

    async for secured in _serve(departments, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", mask_city):
        purpose = departments.dataset.sample_purpose.case_number
        query = """query($id: IdNumber!, $c: String!) {
          person(idNumber: $id, purpose: {caseNumber: $c}) {
            socialInsurance { city contributionMonths } provenance { field masked } } }"""
        _, body, _ = await secured.ask(clerk(), query, id=SAMPLE_PERSON_ID, c=purpose)
        insurance = body["data"]["person"]["socialInsurance"]
        held = departments.dataset.persons_by_id[SAMPLE_PERSON_ID].social_insurance
        assert held is not None
        assert insurance["city"] != held.city
        assert insurance["city"].startswith(held.city[0])
        assert insurance["city"].endswith("*")
        assert insurance["contributionMonths"] == held.months
        assert {"field": "socialInsurance", "masked": True} in body["data"]["person"]["provenance"]
        records = await _audit(secured, applicant=SAMPLE_PERSON_ID)
        assert records[-1].masked == ("socialInsurance",)
