"""Relations declared by configuration alone (the ``model:`` section of ``demo/onewindow.yaml``): a person's spouse
from the marriage registry, the members of their household from the household registry, and the legal entities
they represent from the enterprise registry, asked through GraphQL of the gateway over the running demo.

The gateway runs the demo's own policy: the development principal is a ``case_handler`` clerk of 民政局 (or of
another bureau), a person's fields need a purpose, and a related person is read under the purpose of the person
they were reached from -- a case of that original applicant, handled by the clerk's department.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auth.audit.query import AuditRecord
from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, MARKET_REGULATION, DemoDepartments
from demo.model import Case, Dataset, Person
from tests.demo_gateway import ServedGateway, demo_gateways


@dataclass
class Relations(ServedGateway):
    """The gateway, with the demo's policy, over the running demo departments."""

    dataset: Dataset

    async def person(self, id_number: str, selection: str, *, case: str | None) -> dict[str, Any]:
        return await self.ask_person(id_number, selection, case=case)

    async def audit(self, applicant: str) -> list[AuditRecord]:
        return await self.audit_of(applicant)


Start = Callable[..., Awaitable[Relations]]


@pytest.fixture
async def start(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Start]:
    """Start a gateway whose development principal is a clerk of ``clerk_department``; no cache, own audit."""
    async with demo_gateways(departments.variables, tmp_path) as serve:

        async def run(clerk_department: str = "民政局") -> Relations:
            url, config = await serve(clerk_department)
            return Relations(url, config, departments.dataset)

        yield run


@pytest.fixture
async def gateway(start: Start) -> Relations:
    relations: Relations = await start()
    return relations


def _case_at(dataset: Dataset, applicant: str, department: str) -> Case | None:
    return next(
        (
            c
            for c in dataset.cases_by_applicant.get(applicant, ())
            if dataset.service_items_by_code[c.service_item].department == department
        ),
        None,
    )


def _married_applicant(dataset: Dataset) -> tuple[Person, Person, str]:
    """A married person with a case at 民政局, their spouse, and that case's number."""
    for person in dataset.persons:
        case = _case_at(dataset, person.id_number, "民政局")
        if person.marriage.spouse_id is not None and case is not None:
            return person, dataset.persons_by_id[person.marriage.spouse_id], case.case_number
    raise AssertionError("the demo data has no married applicant at 民政局")


def _errors(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Each error's (code, reason or source) by its path joined with dots (``person.spouse``)."""
    return {
        ".".join(str(p) for p in e.get("path") or ()): (
            e["extensions"]["code"],
            e["extensions"].get("reason") or e["extensions"].get("source"),
        )
        for e in body.get("errors", [])
    }


# -- the values ---------------------------------------------------------------------------------------------------


async def test_a_spouse_is_a_person_whose_spouse_is_the_applicant(gateway: Relations) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    body = await gateway.person(
        person.id_number,
        "idNumber householdNumber spouse { idNumber name gender maritalStatus householdNumber spouse { idNumber } }",
        case=case,
    )
    assert "errors" not in body, body
    answer = body["data"]["person"]
    assert answer["spouse"] == {
        "idNumber": spouse.id_number,
        "name": spouse.name,
        "gender": spouse.gender,
        "maritalStatus": "MARRIED",
        "householdNumber": person.household_number,
        "spouse": {"idNumber": person.id_number},
    }
    assert answer["householdNumber"] == person.household_number


async def test_a_widow_has_no_spouse(gateway: Relations) -> None:
    body = await gateway.person(
        SAMPLE_PERSON_ID, "maritalStatus spouse { idNumber }", case=gateway.dataset.sample_purpose.case_number
    )
    assert "errors" not in body, body
    assert body["data"]["person"] == {"maritalStatus": "WIDOWED", "spouse": None}


async def test_household_members_share_the_applicants_household(gateway: Relations) -> None:
    dataset = gateway.dataset
    sample = dataset.sample_person
    body = await gateway.person(
        SAMPLE_PERSON_ID,
        "householdNumber householdMembers { idNumber name householdNumber householdMembers { idNumber } }",
        case=dataset.sample_purpose.case_number,
    )
    assert "errors" not in body, body
    answer = body["data"]["person"]
    (grandson_id,) = dataset.household_members(SAMPLE_PERSON_ID)
    assert answer == {
        "householdNumber": sample.household_number,
        "householdMembers": [
            {
                "idNumber": grandson_id,
                "name": "王建国",
                "householdNumber": sample.household_number,
                "householdMembers": [{"idNumber": SAMPLE_PERSON_ID}],
            }
        ],
    }


async def test_a_couple_are_each_others_household(gateway: Relations) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    body = await gateway.person(person.id_number, "householdMembers { idNumber }", case=case)
    assert body["data"]["person"]["householdMembers"] == [{"idNumber": spouse.id_number}]


async def test_represented_entities_have_the_person_as_legal_representative(gateway: Relations) -> None:
    dataset = gateway.dataset
    body = await gateway.person(
        SAMPLE_PERSON_ID,
        "representedEntities { creditCode name status legalRepresentative { idNumber name } }",
        case=dataset.sample_purpose.case_number,
    )
    assert "errors" not in body, body
    entities = body["data"]["person"]["representedEntities"]
    expected = dataset.entities_by_representative[SAMPLE_PERSON_ID]
    assert [e["creditCode"] for e in entities] == [e.credit_code for e in expected]
    assert SAMPLE_ENTITY_CODE in [e["creditCode"] for e in entities]
    assert {e["name"] for e in entities} == {e.name for e in expected}
    for entity in entities:
        assert entity["legalRepresentative"] == {"idNumber": SAMPLE_PERSON_ID, "name": "王秀英"}


async def test_a_person_representing_nothing_has_an_empty_list(gateway: Relations) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    assert spouse.id_number not in gateway.dataset.entities_by_representative
    body = await gateway.person(person.id_number, "spouse { representedEntities { creditCode } }", case=case)
    assert "errors" not in body, body
    assert body["data"]["person"]["spouse"] == {"representedEntities": []}


# -- purpose ------------------------------------------------------------------------------------------------------


async def test_without_a_purpose_every_relation_is_refused_purpose_required(gateway: Relations) -> None:
    person, _, _ = _married_applicant(gateway.dataset)
    body = await gateway.person(
        person.id_number,
        "spouse { name } householdMembers { name } representedEntities { creditCode }",
        case=None,
    )
    assert body["data"]["person"] == {"spouse": None, "householdMembers": None, "representedEntities": None}
    assert _errors(body) == {
        "person.spouse": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "person.householdMembers": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "person.representedEntities": ("FORBIDDEN", "PURPOSE_REQUIRED"),
    }


async def test_a_related_person_reached_without_a_purpose_needs_one_for_their_fields(gateway: Relations) -> None:
    # A legal entity is read without a purpose; its representative is a person, and a person's fields need one.
    body = await gateway.query(
        """query($code: CreditCode!) {
          legalEntity(creditCode: $code) { name legalRepresentative { name spouse { name } householdMembers { name } } }
        }""",
        code=SAMPLE_ENTITY_CODE,
    )
    assert body["data"]["legalEntity"]["name"] == gateway.dataset.sample_entity.name
    assert body["data"]["legalEntity"]["legalRepresentative"] == {
        "name": None,
        "spouse": None,
        "householdMembers": None,
    }
    assert _errors(body) == {
        "legalEntity.legalRepresentative.name": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "legalEntity.legalRepresentative.spouse": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "legalEntity.legalRepresentative.householdMembers": ("FORBIDDEN", "PURPOSE_REQUIRED"),
    }


async def test_the_purpose_carried_to_a_spouse_is_the_original_applicants_case(gateway: Relations) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    through = await gateway.person(person.id_number, "spouse { name phone }", case=case)
    assert "errors" not in through, through
    assert through["data"]["person"]["spouse"] == {"name": spouse.name, "phone": spouse.phone}
    # The same case does not let the clerk read the spouse directly: it is not the spouse's case.
    direct = await gateway.person(spouse.id_number, "name", case=case)
    assert direct["data"]["person"]["name"] is None
    assert _errors(direct) == {"person.name": ("FORBIDDEN", "PURPOSE_INVALID")}


async def test_a_clerk_of_another_bureau_may_not_use_a_case_handled_by_the_civil_affairs_bureau(
    start: Start,
) -> None:
    other = await start(clerk_department="公安局")
    person, _, case = _married_applicant(other.dataset)
    body = await other.person(person.id_number, "spouse { name } householdMembers { name }", case=case)
    assert _errors(body) == {
        "person.spouse": ("FORBIDDEN", "PURPOSE_INVALID"),
        "person.householdMembers": ("FORBIDDEN", "PURPOSE_INVALID"),
    }


async def test_related_persons_disclosures_are_audited_under_their_own_id_numbers(gateway: Relations) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    body = await gateway.person(person.id_number, "name spouse { name phone }", case=case)
    assert "errors" not in body, body
    (applicant,) = await gateway.audit(person.id_number)
    assert set(applicant.released) == {"name", "spouse"}
    assert applicant.purpose == case
    assert set(applicant.sources) == {"public_security", "civil_affairs"}
    (related,) = await gateway.audit(spouse.id_number)
    assert set(related.released) == {"name", "phone"}
    assert related.purpose == case
    assert related.outcome == "released"
    assert related.department == "民政局"
    assert set(related.sources) == {"public_security"}


async def test_household_members_are_audited_and_refusals_under_the_applicant(gateway: Relations) -> None:
    dataset = gateway.dataset
    (grandson,) = dataset.household_members(SAMPLE_PERSON_ID)
    case = dataset.sample_purpose.case_number
    await gateway.person(SAMPLE_PERSON_ID, "householdMembers { name ethnicity }", case=case)
    (member,) = await gateway.audit(grandson)
    assert (member.released, member.refused, member.outcome) == (("name",), ("ethnicity",), "partial")
    assert member.purpose == case
    refused = await gateway.person(SAMPLE_PERSON_ID, "householdMembers { name }", case=None)
    assert _errors(refused) == {"person.householdMembers": ("FORBIDDEN", "PURPOSE_REQUIRED")}
    assert len(await gateway.audit(grandson)) == 1  # never reached: nothing disclosed, nothing to record
    assert (await gateway.audit(SAMPLE_PERSON_ID))[-1].refused == ("householdMembers",)


# -- a department down ---------------------------------------------------------------------------------------------


async def test_marriage_registry_down_fails_the_spouse_only(gateway: Relations, departments: DemoDepartments) -> None:
    person, spouse, case = _married_applicant(gateway.dataset)
    await departments.stop(CIVIL_AFFAIRS)
    body = await gateway.person(
        person.id_number, "name spouse { name } householdMembers { name } representedEntities { creditCode }", case=case
    )
    assert _errors(body) == {"person.spouse": ("SOURCE_UNAVAILABLE", "civil_affairs")}
    answer = body["data"]["person"]
    assert answer["name"] == person.name
    assert answer["spouse"] is None
    assert answer["householdMembers"] == [{"name": spouse.name}]
    assert isinstance(answer["representedEntities"], list)


async def test_enterprise_registry_down_fails_the_represented_entities_only(
    gateway: Relations, departments: DemoDepartments
) -> None:
    await departments.stop(MARKET_REGULATION)
    body = await gateway.person(
        SAMPLE_PERSON_ID,
        "name householdMembers { name } representedEntities { creditCode }",
        case=gateway.dataset.sample_purpose.case_number,
    )
    assert _errors(body) == {"person.representedEntities": ("SOURCE_UNAVAILABLE", "market_regulation")}
    answer = body["data"]["person"]
    assert answer == {"name": "王秀英", "householdMembers": [{"name": "王建国"}], "representedEntities": None}
