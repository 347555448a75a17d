"""Purposes that fit a service hall (auth/purposes.py), over HTTP with real principals (session tokens of the
gateway's own sessions) against the demo departments, on the demo's own ``auth.policy.purposes`` section.

Each test is one finding of trying the gateway as a hall uses it: a comprehensive-window clerk read nothing; nothing
could be prefilled before the case existed; a case closed long ago still counted as a purpose; a purpose released
everything, needed or not; the household of a minimum-allowance applicant could not be read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.audit import AuditFilter, AuditLog
from auth.audit.query import AuditRecord
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionTokens
from demo.departments import DemoDepartments
from demo.model import SAMPLE_PERSON_ID, Case, Dataset
from gateway.app import create_app
from gateway.config import load_config
from gateway.mapping import CHINA_STANDARD_TIME
from gateway.serving import serve_asgi
from tests.auth.test_gateway_auth import Secured, _codes, _secure, clerk
from tests.demo_config import demo_yaml

ALLOWANCE = "11010501300003"  # 最低生活保障审核确认 (民政局): assesses the household, taken in by the hall's window
RENTAL_HOUSING = "11010500200003"  # 公共租赁住房申请: need to know for its own department too
HALL = "政务服务中心"  # the hall's own staff: no department of any item, no sharing agreement
REGISTER = """
mutation($item: String!, $applicant: String!) {
  registerIntake(serviceItem: $item, applicant: $applicant) { number token serviceItem department expiresAt }
}"""
PREFILL = """
query($applicant: String!, $purpose: PurposeInput) {
  prefill(form: "social_assistance", applicant: $applicant, purpose: $purpose) {
    fields { label path status value reason }
  }
}"""
PERSON = """
query($id: IdNumber!, $purpose: PurposeInput) {
  person(idNumber: $id, purpose: $purpose) { %s }
}"""


@dataclass
class Hall(Secured):
    """The secured demo gateway, with the clock its purposes are judged by."""

    now: list[dt.datetime]

    async def audit(self, **filters: str) -> list[AuditRecord]:
        assert self.config.auth.audit is not None
        log = AuditLog(self.config.auth.audit)
        await log.open()
        try:
            return sorted(await log.query(AuditFilter(**filters), limit=1000), key=lambda r: r.seq)
        finally:
            await log.aclose()

    async def prefill(self, principal: Principal, applicant: str, **purpose: str) -> dict[str, dict[str, Any]]:
        _, body, _ = await self.ask(principal, PREFILL, applicant=applicant, purpose=purpose or None)
        assert "errors" not in body, body["errors"]
        return {f["path"]: f for f in body["data"]["prefill"]["fields"]}


Start = Callable[..., Any]


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "departments") as demo:
        yield demo


@pytest.fixture
async def hall(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Hall]:
    """The demo gateway (production mode, session tokens, its own audit), grace period 30 days, clock in hand."""
    now = [dt.datetime.now(dt.UTC)]

    def edit(data: dict[str, Any]) -> None:
        _secure(data, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
        data["auth"]["policy"]["purposes"]["grace"] = "30d"

    config = load_config(demo_yaml(tmp_path, open_policy=False, edit=edit), variables=departments.variables)
    async with serve_asgi(create_app(config, clock=lambda: now[0])) as url:
        yield Hall(url, config, departments, SessionTokens(config.auth.sessions), now)


def window_clerk(*roles: str, subject: str = "li.na") -> Principal:
    """A clerk of the hall's comprehensive window (综合窗口), who belongs to no department of any item."""
    return Principal(subject, PrincipalKind.CLERK, "cas", department=HALL, window="综合窗口03", roles=frozenset(roles))


def _case_of(dataset: Dataset, item: str, *, closed: bool) -> Case:
    return next(c for c in dataset.cases if c.service_item == item and (c.closed_at is not None) == closed)


def _statuses(fields: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {path: (f["status"], f["reason"]) for path, f in fields.items()}


# -- intake: a purpose before the case exists ---------------------------------------------------------------------


async def test_an_intake_purpose_prefills_the_items_form_before_the_case_exists(hall: Hall) -> None:
    dataset = hall.departments.dataset
    applicant = next(
        p
        for p in dataset.persons
        if p.marriage.spouse_id and p.social_insurance and p.id_number not in dataset.cases_by_applicant
    )
    key = applicant.id_number
    # Before: no case, so no purpose: every field of the form is refused.
    before = await hall.prefill(clerk("民政局", "case_handler"), key)
    assert {status for status, _ in _statuses(before).values()} == {"REFUSED"}

    _, body, _ = await hall.ask(clerk("民政局", "case_handler"), REGISTER, item=ALLOWANCE, applicant=key)
    assert "errors" not in body, body["errors"]
    intake = body["data"]["registerIntake"]
    assert (intake["serviceItem"], intake["department"]) == (ALLOWANCE, "民政局")
    assert dt.datetime.fromisoformat(intake["expiresAt"]) - hall.now[0] <= dt.timedelta(minutes=30)
    assert key not in intake["token"]

    after = await hall.prefill(clerk("民政局", "case_handler"), key, intake=intake["token"])
    assert after["Person.name"]["value"] == applicant.name
    assert after["Person.maritalStatus"]["status"] == "PREFILLED"
    assert after["Person.socialInsurance.insured"]["status"] == "PREFILLED"
    # The intake releases only what the item needs: degrees are on none of its forms or materials.
    _, body, _ = await hall.ask(
        clerk("民政局", "case_handler"), PERSON % "name degrees { degree }", id=key, purpose={"intake": intake["token"]}
    )
    assert body["data"]["person"]["name"] == applicant.name
    assert _codes(body)["degrees"] == ("FORBIDDEN", "NOT_NEEDED")

    # Registered and audited under the applicant, every read under the intake's number.
    records = await hall.audit(applicant=key)
    assert [r.outcome for r in records[:1]] == ["refused"]  # the prefill without a purpose
    assert records[1].released == ("intake",)
    assert records[1].purpose == intake["number"]
    assert all(r.purpose == intake["number"] for r in records[1:])
    assert any("degrees" in r.refused for r in records)


async def test_an_intake_expires_and_is_its_registrars_alone(hall: Hall) -> None:
    key = SAMPLE_PERSON_ID
    _, body, _ = await hall.ask(clerk("民政局", "case_handler"), REGISTER, item=ALLOWANCE, applicant=key)
    token = body["data"]["registerIntake"]["token"]
    query = PERSON % "name"
    _, body, _ = await hall.ask(clerk("民政局", subject="zhao.lei"), query, id=key, purpose={"intake": token})
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID"), body  # another clerk's intake
    other = next(p.id_number for p in hall.departments.dataset.persons if p.id_number != key)
    _, body, _ = await hall.ask(clerk("民政局"), query, id=other, purpose={"intake": token})
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID")  # another applicant
    _, body, _ = await hall.ask(clerk("民政局"), query, id=key, purpose={"intake": token})
    assert body["data"]["person"]["name"] == hall.departments.dataset.sample_person.name
    hall.now[0] += dt.timedelta(minutes=31)
    _, body, _ = await hall.ask(clerk("民政局"), query, id=key, purpose={"intake": token})
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_EXPIRED")
    refused = [r for r in await hall.audit(applicant=key, subject="wang.fang") if r.outcome == "refused"]
    assert [r.refused for r in refused][-1] == ("name",)


async def test_an_intake_for_an_item_the_caller_does_not_take_in_is_refused_and_audited(hall: Hall) -> None:
    _, body, _ = await hall.ask(clerk("教育委员会"), REGISTER, item=ALLOWANCE, applicant=SAMPLE_PERSON_ID)
    assert body["data"] is None
    assert _codes(body)["registerIntake"] == ("FORBIDDEN", "PURPOSE_INVALID")
    _, body, _ = await hall.ask(clerk("民政局"), REGISTER, item="11010599999999", applicant=SAMPLE_PERSON_ID)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    records = await hall.audit(applicant=SAMPLE_PERSON_ID)
    assert [(r.department, r.outcome, r.refused) for r in records] == [("教育委员会", "refused", ("intake",))]


async def test_the_prefill_route_takes_an_intake(hall: Hall) -> None:
    principal = window_clerk("comprehensive_window")
    _, body, _ = await hall.ask(principal, REGISTER, item=ALLOWANCE, applicant=SAMPLE_PERSON_ID)
    token = body["data"]["registerIntake"]["token"]
    headers = {"Authorization": f"Bearer {hall.token(principal)}"}
    async with httpx.AsyncClient(timeout=30) as http:
        url = f"{hall.url}/prefill/social_assistance/{SAMPLE_PERSON_ID}"
        answer = (await http.get(url, params={"intake": token}, headers=headers)).json()
        both = await http.get(url, params={"intake": token, "purpose": "BJ1"}, headers=headers)
    fields = {f["path"]: f for f in answer["fields"]}
    assert fields["Person.name"]["value"] == hall.departments.dataset.sample_person.name
    assert fields["Person.maritalStatus"]["status"] == "PREFILLED"
    assert both.status_code == 400


# -- comprehensive windows ----------------------------------------------------------------------------------------


async def test_a_comprehensive_window_clerk_reads_what_the_item_needs(hall: Hall) -> None:
    dataset = hall.departments.dataset
    case = dataset.sample_purpose  # 最低生活保障审核确认, a 民政局 case
    assert case.service_item == ALLOWANCE
    # A clerk of the hall without the window's role: not their department's case, nothing is released.
    plain = await hall.prefill(window_clerk(), SAMPLE_PERSON_ID, caseNumber=case.case_number)
    assert {status for status, _ in _statuses(plain).values()} == {"REFUSED"}
    # With it, the form is prefilled as 民政局 would see it (its sharing agreements, not the hall's).
    fields = await hall.prefill(window_clerk("comprehensive_window"), SAMPLE_PERSON_ID, caseNumber=case.case_number)
    assert fields["Person.maritalStatus"]["value"] == "WIDOWED"
    assert fields["Person.phone"]["status"] == "PREFILLED"
    assert fields["Person.socialInsurance.insured"]["status"] == "PREFILLED"
    # Only what the item needs: degrees and representedEntities are not.
    _, body, _ = await hall.ask(
        window_clerk("comprehensive_window"),
        PERSON % "name degrees { degree } representedEntities { creditCode }",
        id=SAMPLE_PERSON_ID,
        purpose={"caseNumber": case.case_number},
    )
    codes = _codes(body)
    assert codes["degrees"] == codes["representedEntities"] == ("FORBIDDEN", "NOT_NEEDED")
    # An item the window does not take in stays another department's.
    other = next(
        c
        for c in dataset.cases_by_applicant[SAMPLE_PERSON_ID]
        if c.service_item not in hall.config.auth.policy.purposes.windows["comprehensive"].items
    )
    _, body, _ = await hall.ask(
        window_clerk("comprehensive_window"),
        PERSON % "name",
        id=SAMPLE_PERSON_ID,
        purpose={"caseNumber": other.case_number},
    )
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID")
    refusals = [r for r in await hall.audit(subject="li.na") if r.refused]
    assert {"degrees", "representedEntities"} <= {f for r in refusals for f in r.refused}


# -- closed cases: a grace period ---------------------------------------------------------------------------------


async def test_a_closed_case_is_a_purpose_only_during_its_grace_period(hall: Hall) -> None:
    dataset = hall.departments.dataset
    case = next(
        c
        for c in dataset.cases
        if c.closed_at is not None
        and c.applicant_kind == "PERSON"
        and dataset.service_items_by_code[c.service_item].department == "民政局"
    )
    assert case.closed_at is not None
    closed = case.closed_at.replace(tzinfo=CHINA_STANDARD_TIME)
    query = PERSON % "name maritalStatus"
    purpose = {"caseNumber": case.case_number}
    hall.now[0] = closed + dt.timedelta(days=29)
    _, body, _ = await hall.ask(clerk("民政局"), query, id=case.applicant_id, purpose=purpose)
    assert "errors" not in body, body["errors"]
    hall.now[0] = closed + dt.timedelta(days=31)
    _, body, _ = await hall.ask(clerk("民政局"), query, id=case.applicant_id, purpose=purpose)
    assert body["data"]["person"] == {"name": None, "maritalStatus": None}, (closed, hall.now[0])
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_EXPIRED")
    message = next(e["message"] for e in body["errors"] if e["path"][-1] == "name")
    assert f"closed on {closed:%Y-%m-%d}" in message
    assert "grace period of 30d" in message
    # The department still reads its own case record; only the purpose lapsed.
    _, body, _ = await hall.ask(
        clerk("民政局"), "query($n: String!) { case(caseNumber: $n) { status } }", n=case.case_number
    )
    assert body["data"]["case"] == {"status": "COMPLETED"}
    records = await hall.audit(applicant=case.applicant_id)
    assert [r.outcome for r in records] == ["released", "refused"]
    assert records[-1].purpose == case.case_number


# -- need to know -------------------------------------------------------------------------------------------------


async def test_an_item_with_need_to_know_releases_only_what_it_needs_to_its_own_department(hall: Hall) -> None:
    dataset = hall.departments.dataset
    case = _case_of(dataset, RENTAL_HOUSING, closed=False)
    department = dataset.service_items_by_code[RENTAL_HOUSING].department
    query = PERSON % "name maritalStatus householdNumber degrees { degree }"
    _, body, _ = await hall.ask(
        clerk(department), query, id=case.applicant_id, purpose={"caseNumber": case.case_number}
    )
    person = body["data"]["person"]
    assert person["name"] == dataset.persons_by_id[case.applicant_id].name  # on its form
    assert person["maritalStatus"] is not None  # on its form and materials (婚姻状况证明)
    assert person["householdNumber"] is not None  # a material (户口簿)
    assert _codes(body)["degrees"] == ("FORBIDDEN", "NOT_NEEDED")
    # An item without it (民政局's, need_to_know off) still releases what its department may read.
    sample = dataset.sample_purpose
    _, body, _ = await hall.ask(
        clerk("民政局"), PERSON % "degrees { degree }", id=SAMPLE_PERSON_ID, purpose={"caseNumber": sample.case_number}
    )
    assert "errors" not in body, body["errors"]
    (record,) = [r for r in await hall.audit(applicant=case.applicant_id)]
    assert (record.outcome, record.refused, record.purpose) == ("partial", ("degrees",), case.case_number)


# -- households ---------------------------------------------------------------------------------------------------


async def test_a_household_member_is_read_under_the_applicants_allowance_case(hall: Hall) -> None:
    dataset = hall.departments.dataset
    case = dataset.sample_purpose
    (grandson,) = dataset.household_members(SAMPLE_PERSON_ID)
    member = dataset.persons_by_id[grandson]
    query = PERSON % "name birthDate maritalStatus socialInsurance { insured } degrees { degree } phone"
    _, body, _ = await hall.ask(clerk("民政局"), query, id=grandson, purpose={"caseNumber": case.case_number})
    person = body["data"]["person"]
    assert person["name"] == member.name
    assert person["birthDate"] == member.birth_date.isoformat()
    assert person["maritalStatus"] is not None
    codes = _codes(body)
    # Only what the item needs of a household member: not their degrees, not their phone.
    assert codes["degrees"] == codes["phone"] == ("FORBIDDEN", "NOT_NEEDED")
    # Someone outside the household, under the same case: not this purpose.
    stranger = next(
        p.id_number
        for p in dataset.persons
        if p.id_number != SAMPLE_PERSON_ID and p.id_number not in dataset.household_members(SAMPLE_PERSON_ID)
    )
    _, body, _ = await hall.ask(clerk("民政局"), query, id=stranger, purpose={"caseNumber": case.case_number})
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID")
    # The member's disclosure is audited under the member's own ID number, with the applicant's case as purpose.
    (record,) = await hall.audit(applicant=grandson)
    assert record.purpose == case.case_number
    assert {"name", "birthDate", "maritalStatus", "socialInsurance"} <= set(record.released)
    assert set(record.refused) == {"degrees", "phone"}


async def test_a_household_member_is_not_read_under_an_item_that_does_not_assess_the_household(hall: Hall) -> None:
    dataset = hall.departments.dataset
    applicant, member, case = next(
        (c.applicant_id, dataset.household_members(c.applicant_id)[0], c)
        for c in dataset.cases
        if c.applicant_kind == "PERSON"
        and c.closed_at is None
        and c.service_item != ALLOWANCE
        and dataset.service_items_by_code[c.service_item].department == "民政局"
        and dataset.household_members(c.applicant_id)
    )
    _, body, _ = await hall.ask(clerk("民政局"), PERSON % "name", id=member, purpose={"caseNumber": case.case_number})
    assert _codes(body)["name"] == ("FORBIDDEN", "PURPOSE_INVALID")
    assert applicant != member
