"""Materials already held (:mod:`gateway.materials`): a service item's required materials and which of them
government holds for an applicant, asked through GraphQL of the gateway over the running demo departments, with the
demo's own policy (the development clerk of 民政局, or of another bureau, and a case of the applicant as purpose).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.data import SAMPLE_PERSON_ID
from demo.departments import DemoDepartments
from demo.model import Case, Dataset, Licence
from gateway.config import parse_config
from gateway.errors import ConfigError
from tests.demo_config import DEMO_CONFIG
from tests.demo_gateway import ServedGateway, demo_gateways

MATERIALS = """
query($item: String!, $applicant: String!, $purpose: PurposeInput) {
  materials(serviceItem: $item, applicant: $applicant, purpose: $purpose) {
    name required status reason field summary
    licence { type number issuer validUntil status }
    provenance { source department fetchedAt }
  }
}"""
# 最低生活保障审核确认 at 民政局: the demo's sample purpose is a case of it.
SUBSISTENCE = "11010501300003"


@dataclass
class Window(ServedGateway):
    """The gateway with the demo's policy, as a window's software asks it."""

    dataset: Dataset

    async def materials(self, item: str, applicant: str, case: str | None) -> dict[str, dict[str, Any]]:
        """Each material by name; fails on any GraphQL error (refusals are statuses, not errors)."""
        purpose = {"caseNumber": case} if case is not None else None
        body = await self.query(MATERIALS, item=item, applicant=applicant, purpose=purpose)
        assert "errors" not in body, body
        return {m["name"]: m for m in body["data"]["materials"]}


Start = Callable[..., Awaitable[Window]]


@pytest.fixture
async def start(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Start]:
    """Start a gateway whose development principal is a clerk of ``clerk_department``; no cache, own audit."""
    async with demo_gateways(departments.variables, tmp_path) as serve:

        async def run(clerk_department: str = "民政局") -> Window:
            url, config = await serve(clerk_department)
            return Window(url, config, departments.dataset)

        yield run


@pytest.fixture
async def window(start: Start) -> Window:
    served: Window = await start()
    return served


def _cases_at(dataset: Dataset, department: str, kind: str = "PERSON") -> Iterator[Case]:
    items = dataset.service_items_by_code
    for case in dataset.cases:
        if case.applicant_kind == kind and items[case.service_item].department == department:
            yield case


def _id_cards(dataset: Dataset, id_number: str) -> list[Licence]:
    return [lic for lic in dataset.persons_by_id[id_number].licences if lic.type == "居民身份证"]


def _applicant_with_id_cards(dataset: Dataset, statuses: list[str]) -> Case:
    """A case at 民政局 whose applicant holds 居民身份证 in exactly these states (none: ``[]``)."""
    for case in _cases_at(dataset, "民政局"):
        if [lic.status for lic in _id_cards(dataset, case.applicant_id)] == statuses:
            return case
    raise AssertionError(f"the demo data has no applicant at 民政局 whose ID cards are {statuses}")


# -- held, and not held --------------------------------------------------------------------------------------------


async def test_a_required_material_held_as_a_valid_electronic_licence_is_marked_held(window: Window) -> None:
    dataset = window.dataset
    case = dataset.sample_purpose
    found = await window.materials(SUBSISTENCE, SAMPLE_PERSON_ID, case.case_number)

    [card] = _id_cards(dataset, SAMPLE_PERSON_ID)
    id_card = found["居民身份证"]
    assert (id_card["required"], id_card["status"]) == (True, "HELD")
    assert id_card["licence"] == {
        "type": "居民身份证",
        "number": card.number,
        "issuer": card.issuer,
        "validUntil": card.valid_until.isoformat() if card.valid_until else None,
        "status": "VALID",
    }
    assert id_card["provenance"]["source"] == "licences"
    assert id_card["provenance"]["department"].startswith("电子证照库")
    # a unified field: the household registry holds her household (户口簿)
    register = found["户口簿"]
    person = dataset.sample_person
    assert (register["status"], register["field"], register["summary"]) == (
        "HELD",
        "Person.householdNumber",
        person.household_number,
    )
    assert register["provenance"]["source"] == "public_security"
    # an optional material read from a conditional field (民政局 holds an agreement with social security)
    insurance = found["社会保险缴费证明"]
    assert (insurance["required"], insurance["status"]) == (False, "HELD")
    assert person.social_insurance is not None
    assert f"contributionMonths: {person.social_insurance.months}" in insurance["summary"]
    # matched to no department system: always to submit
    for name in ("家庭收入证明", "银行卡"):
        assert (found[name]["status"], found[name]["licence"], found[name]["provenance"]) == (
            "NOT_CONNECTED",
            None,
            None,
        )
    assert list(found) == ["居民身份证", "户口簿", "家庭收入证明", "银行卡", "社会保险缴费证明"]  # as configured


async def test_a_required_licence_the_library_does_not_hold_is_not_held(window: Window) -> None:
    case = _applicant_with_id_cards(window.dataset, [])
    found = await window.materials(case.service_item, case.applicant_id, case.case_number)
    id_card = next(m for m in found.values() if m["licence"] is None and "居民身份证" in m["reason"])
    assert id_card["required"] is True
    assert id_card["status"] == "NOT_HELD"
    assert id_card["reason"] == "no 居民身份证 in the licence library: to submit"
    assert id_card["provenance"] is None  # the library holds no record for the applicant


async def test_an_expired_licence_is_held_but_must_be_submitted_again(window: Window) -> None:
    case = _applicant_with_id_cards(window.dataset, ["EXPIRED"])
    [card] = _id_cards(window.dataset, case.applicant_id)
    found = await window.materials(case.service_item, case.applicant_id, case.case_number)
    [id_card] = [m for m in found.values() if m["licence"] is not None and m["licence"]["type"] == "居民身份证"]
    assert id_card["status"] == "EXPIRED"
    assert card.valid_until is not None
    assert id_card["reason"] == f"held but expired on {card.valid_until.isoformat()}: submit a current one"
    assert id_card["licence"]["number"] == card.number


async def test_a_revoked_or_suspended_licence_is_not_held_and_says_why(window: Window) -> None:
    case = next(
        c
        for c in _cases_at(window.dataset, "民政局")
        if [lic.status for lic in _id_cards(window.dataset, c.applicant_id)] in (["REVOKED"], ["SUSPENDED"])
    )
    [card] = _id_cards(window.dataset, case.applicant_id)
    found = await window.materials(case.service_item, case.applicant_id, case.case_number)
    [id_card] = [m for m in found.values() if m["licence"] is not None and m["licence"]["type"] == "居民身份证"]
    assert id_card["status"] == "NOT_HELD"
    assert id_card["reason"] == f"held but {card.status.lower()}: submit a current one"


async def test_the_legal_representatives_id_card_is_read_through_the_relation(start: Start) -> None:
    window = await start("市场监督管理局")
    dataset = window.dataset
    case = next(c for c in _cases_at(dataset, "市场监督管理局", "LEGAL_ENTITY") if c.service_item == "11010500100002")
    entity = dataset.entities_by_code[case.applicant_id]
    found = await window.materials(case.service_item, entity.credit_code, case.case_number)
    [business] = [lic for lic in entity.licences if lic.type == "营业执照"]
    assert found["营业执照"]["licence"]["number"] == business.number
    assert found["营业执照"]["status"] == ("HELD" if business.status == "VALID" else "NOT_HELD")
    cards = _id_cards(dataset, entity.legal_representative)
    representative = found["法定代表人身份证"]
    if not cards:
        assert representative["status"] == "NOT_HELD"
        assert representative["reason"] == "no 居民身份证 of the legalRepresentative in the licence library: to submit"
    else:
        assert representative["licence"]["number"] in {card.number for card in cards}
    assert found["股东会决议"]["status"] == "NOT_CONNECTED"


# -- the policy and the audit ----------------------------------------------------------------------------------------


async def test_without_a_purpose_every_connected_material_is_refused_and_no_department_is_asked(
    window: Window, departments: DemoDepartments
) -> None:
    for counter in departments.counters.values():
        counter.reset()
    found = await window.materials(SUBSISTENCE, SAMPLE_PERSON_ID, None)
    for name in ("居民身份证", "户口簿", "社会保险缴费证明"):
        assert found[name]["status"] == "REFUSED", found[name]
        assert found[name]["reason"].startswith("PURPOSE_REQUIRED: ")
        assert (found[name]["licence"], found[name]["summary"], found[name]["provenance"]) == (None, None, None)
    assert found["银行卡"]["status"] == "NOT_CONNECTED"
    assert sum(counter.total for counter in departments.counters.values()) == 0
    [record] = await window.audit_of(SAMPLE_PERSON_ID)
    assert record.outcome == "refused"
    assert set(record.refused) == {"licences", "householdNumber", "socialInsurance"}


async def test_a_department_without_a_sharing_agreement_is_refused_the_conditional_field(start: Start) -> None:
    window = await start("教育委员会")
    dataset = window.dataset
    case = next(c for c in _cases_at(dataset, "教育委员会") if c.service_item == "11010501500002")  # 教师资格认定
    found = await window.materials(case.service_item, case.applicant_id, case.case_number)
    assert found["学历证书"]["status"] in ("HELD", "NOT_HELD")  # education's own registry: released
    assert found["学历证书"]["provenance"] is None or found["学历证书"]["provenance"]["source"] == "education"
    person = dataset.persons_by_id[case.applicant_id]
    assert found["学历证书"]["status"] == ("HELD" if person.degrees else "NOT_HELD")
    # 公共租赁住房申请 asks 婚姻状况证明 of civil affairs, which 教育委员会 holds no agreement for
    refused = await window.materials("11010500200003", case.applicant_id, case.case_number)
    assert refused["婚姻状况证明"]["status"] == "REFUSED"
    assert refused["婚姻状况证明"]["reason"].startswith("NO_SHARING_AGREEMENT: ")


async def test_every_disclosed_material_is_audited_under_the_purpose(window: Window) -> None:
    case = window.dataset.sample_purpose
    await window.materials(SUBSISTENCE, SAMPLE_PERSON_ID, case.case_number)
    [record] = await window.audit_of(SAMPLE_PERSON_ID)
    assert record.purpose == case.case_number
    assert set(record.released) == {"licences", "householdNumber", "socialInsurance"}
    assert set(record.sources) == {"licences", "public_security", "hrss"}


async def test_an_unknown_item_or_an_applicant_of_the_wrong_kind_is_bad_input(window: Window) -> None:
    body = await window.query(MATERIALS, item="999", applicant=SAMPLE_PERSON_ID)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no materials are configured for service item '999'" in body["errors"][0]["message"]
    entity = window.dataset.sample_entity.credit_code
    body = await window.query(MATERIALS, item=SUBSISTENCE, applicant=entity)
    assert body["errors"][0]["message"] == f"service item {SUBSISTENCE} is applied for by a Person, not a LegalEntity"


# -- the configuration -----------------------------------------------------------------------------------------------


def _config_with(materials: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["materials"] = materials
    return data


def _variables(departments: DemoDepartments) -> dict[str, str]:
    return dict(departments.variables)


@pytest.mark.parametrize(
    ("materials", "path", "message"),
    [
        (
            {"1": {"学历证书": {"field": "Person.diploma"}}},
            "materials.1.学历证书.field",
            "Person has no field 'diploma'",
        ),
        ({"1": {"学历证书": {"field": "Case.status"}}}, "materials.1.学历证书.field", "write <Applicant>.<field>"),
        ({"1": {"配偶": {"field": "Person.spouse"}}}, "materials.1.配偶.field", "is a relation"),
        ({"1": {"x": {"licence_type": "结婚证", "field": "Person.maritalStatus"}}}, "materials.1.x", "not both"),
        ({"1": {"x": {"holder": "LegalEntity.legalRepresentative"}}}, "materials.1.x", "give 'licence_type'"),
        (
            {"1": {"x": {"licence_type": "居民身份证", "holder": "LegalEntity.name"}}},
            "materials.1.x.holder",
            "relation",
        ),
        ({"1": {"x": {"licence_type": ""}}}, "materials.1.x.licence_type", "at least 1 character"),
        ({"1": {"x": {"licence_typ": "居民身份证"}}}, "materials.1.x.licence_typ", "Extra inputs"),
        ({11010501300003: {"x": {}}}, "materials", 'quote it ("11010501300003")'),
        ({"1": {}}, "materials.1", "list the item's materials"),
        (
            {"1": {"a": {"field": "Person.degrees"}, "b": {"field": "LegalEntity.status"}}},
            "materials.1.b",
            "reads a LegalEntity but materials.1.a reads a Person",
        ),
    ],
)
def test_a_wrong_material_fails_at_start_up_naming_its_key(
    departments: DemoDepartments, materials: Any, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config_with(materials), _variables(departments))
    assert raised.value.path == path, raised.value
    assert message in str(raised.value)


def test_the_demo_lists_materials_for_every_service_item_it_offers_and_only_those(departments: DemoDepartments) -> None:
    config = parse_config(
        _config_with(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))["materials"]), _variables(departments)
    )
    dataset = departments.dataset
    assert set(config.service_materials) == set(dataset.service_items_by_code)
    issued = {lic.type for p in dataset.persons for lic in p.licences}
    issued |= {lic.type for e in dataset.entities for lic in e.licences}
    for code, item in config.service_materials.items():
        served = dataset.service_items_by_code[code]
        assert item.entity in (None, "LegalEntity" if served.for_entities else "Person"), code
        assert any(m.required for m in item.materials), code
        for material in item.materials:
            assert material.licence_type is None or material.licence_type in issued, (code, material)
