"""Prefilling the demo's forms over HTTP, against the demo departments, as a clerk of each form's department.

Each form is filled for 20 different applicants, each under a case of theirs for the form's service item (handled
by the clerk's department, so a valid purpose): every field some department holds comes back with its provenance,
or is refused with a documented reason; a field no source provides is NOT_CONNECTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth.policy import Reason
from demo.data import Dataset
from demo.departments import DemoDepartments
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.serving import serve_asgi
from tests.demo_config import demo_config
from tests.demo_gateway import ServedGateway

APPLICANTS = 20
DOCUMENTED_REASONS = {str(r) for r in Reason}

# form -> what an applicant must hold in the dataset for every field the form asks to be there
HOLDS: dict[str, Callable[[Any], bool]] = {
    "teacher_qualification": lambda p: bool(p.degrees),
    "social_assistance": lambda p: bool(p.marriage.spouse_id and p.social_insurance),
    "public_rental_housing": lambda p: bool(p.marriage.spouse_id and p.social_insurance and p.licences),
    "business_licence_change": lambda e: bool(e.licences),
}
# What the demo policy refuses, by form and label, and why (documented in docs/configuration.md, "Forms").
REFUSED = {
    ("teacher_qualification", "民族"): Reason.NOT_SHARED,
    ("teacher_qualification", "户籍地址"): Reason.NO_SHARING_AGREEMENT,
    ("teacher_qualification", "联系电话"): Reason.NO_SHARING_AGREEMENT,
    ("business_licence_change", "法定代表人电话"): Reason.NO_SHARING_AGREEMENT,
}
NOT_CONNECTED = {("teacher_qualification", "无犯罪记录")}


async def _served(departments: DemoDepartments, tmp_path: Path, department: str, **options: Any) -> Any:
    variables = {**departments.variables, "DEMO_CLERK_DEPARTMENT": department}
    config = demo_config(variables, tmp_path, open_policy=False, **options)
    return config, serve_asgi(create_app(config))


def _applicants(dataset: Dataset, form: str, service_item: str) -> list[tuple[str, str]]:
    """(applicant, case) for the first applicants with a case of ``service_item`` who hold the form's data."""
    found: dict[str, str] = {}
    for case in dataset.cases:
        record = dataset.persons_by_id.get(case.applicant_id) or dataset.entities_by_code.get(case.applicant_id)
        if case.service_item == service_item and record is not None and HOLDS[form](record):
            found.setdefault(case.applicant_id, case.case_number)
    assert len(found) >= APPLICANTS
    return list(found.items())[:APPLICANTS]


async def _get(url: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, params=params)


@pytest.mark.parametrize("form", sorted(HOLDS))
async def test_each_demo_form_prefills_twenty_applicants_or_says_why(
    form: str, departments: DemoDepartments, tmp_path: Path
) -> None:
    dataset = departments.dataset
    probe: GatewayConfig = demo_config(departments.variables, tmp_path, open_policy=False)
    template = probe.forms[form]
    item = dataset.service_items_by_code[template.service_item]
    config, served = await _served(departments, tmp_path, item.department)
    prefilled: dict[str, int] = {}
    async with served as url:
        for applicant, case in _applicants(dataset, form, template.service_item):
            response = await _get(f"{url}/prefill/{form}/{applicant}", purpose=case)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["applicant"] == applicant
            assert body["serviceItem"] == template.service_item
            for field in body["fields"]:
                label = field["label"]
                if (form, label) in NOT_CONNECTED:
                    assert field["status"] == "NOT_CONNECTED"
                    assert field["value"] is None
                elif (form, label) in REFUSED:
                    assert field["status"] == "REFUSED", field
                    assert field["reason"] == REFUSED[(form, label)]
                    assert field["reason"] in DOCUMENTED_REASONS
                    assert field["value"] is None
                else:
                    assert field["status"] == "PREFILLED", (applicant, field)
                    assert field["value"] not in (None, [])
                    provider_sources = {p["source"] for p in field["provenance"]}
                    assert provider_sources
                    assert all(p["department"] for p in field["provenance"])
                    prefilled[label] = prefilled.get(label, 0) + 1
        first = ServedGateway(url, config)
        audited = await first.audit_of(applicant)
    held = {label for label in template.fields if (form, label) not in REFUSED.keys() | NOT_CONNECTED}
    assert prefilled == dict.fromkeys(held, APPLICANTS)
    if template.applicant == "Person":  # a legal entity is not personal data; its representative's name is
        assert audited
        assert audited[-1].purpose == case


async def test_prefilled_values_are_the_departments_and_masked_as_the_policy_says(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    dataset = departments.dataset
    person = dataset.sample_person
    case = dataset.sample_purpose.case_number
    config, served = await _served(departments, tmp_path, "民政局")
    async with served as url:
        gateway = ServedGateway(url, config)
        body = await gateway.query(
            """query($a: String!, $c: String!) { prefill(form: "social_assistance", applicant: $a,
                 purpose: {caseNumber: $c}) { form applicant fields { label status value reason
                 provenance { source department } } } }""",
            a=person.id_number,
            c=case,
        )
        without = await _get(f"{url}/prefill/social_assistance/{person.id_number}")
    fields = {f["label"]: f for f in body["data"]["prefill"]["fields"]}
    assert fields["申请人姓名"]["value"] == person.name
    assert fields["申请人姓名"]["provenance"][0]["source"] == "public_security"
    assert fields["出生日期"]["value"] == person.birth_date.isoformat()
    assert fields["婚姻状况"]["value"] == person.marriage.status
    # The sample person lives with her grandson and has no spouse on record: the registry asked is named.
    if person.marriage.spouse_id is None:
        assert fields["配偶姓名"]["status"] == "NO_RECORD"
    # Without a purpose every field of a person is refused, with the documented reason.
    reasons = {f["reason"] for f in without.json()["fields"]}
    assert reasons == {"PURPOSE_REQUIRED"}


async def test_unknown_form_bad_key_and_the_openapi_document(departments: DemoDepartments, tmp_path: Path) -> None:
    _, served = await _served(departments, tmp_path, "民政局")
    async with served as url:
        missing = await _get(f"{url}/prefill/nope/11010519491231002X")
        bad = await _get(f"{url}/prefill/social_assistance/123")
        document = (await _get(f"{url}/prefill/openapi.json")).json()
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert bad.status_code == 400
    assert document["openapi"].startswith("3.")
    parameters = document["paths"]["/prefill/{form}/{applicant}"]["get"]["parameters"]
    assert parameters[0]["schema"]["enum"] == sorted(HOLDS)


@pytest.fixture
async def address_registry(departments: DemoDepartments) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A second department holding registered addresses: the same as the household registry's for most persons,
    written differently (full-width digits, spaces) for one, and a different address for another."""
    persons = departments.dataset.persons[:3]
    addresses = {
        persons[0].id_number: persons[0].address,
        persons[1].id_number: " " + persons[1].address.replace("1", "１") + " ",
        persons[2].id_number: "天津市和平区南京路1号",
    }

    async def address(request: Request) -> JSONResponse:
        found = addresses.get(request.path_params["key"])
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"address": found})

    async with serve_asgi(Starlette(routes=[Route("/addresses/{key}", address)])) as url:
        yield url, addresses


async def test_conflict_mode_flags_two_departments_disagreeing(
    departments: DemoDepartments, address_registry: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    registry_url, addresses = address_registry
    same, written_differently, different = list(addresses)

    def add_registry(data: dict[str, Any]) -> None:
        data["sources"]["address_registry"] = {
            "kind": "rest",
            "department": "不动产登记中心 (test address registry)",
            "base_url": registry_url,
            "owner": "不动产登记中心",
            "agreements": ["民政局"],
            "queries": {"address": {"path": "/addresses/{key}", "method": "GET", "not_found": [404]}},
            "provides": {
                "Person.registeredAddress": {"query": "address", "value": "address", "sharing": "unconditional"}
            },
        }

    # The demo clerk's purposes would bind the applicants to its own cases; relaxed here to a service principal
    # (open policy) so that the test is about comparing departments, not about purposes.
    config = demo_config(departments.variables, tmp_path, edit=add_registry)
    dataset = departments.dataset
    async with serve_asgi(create_app(config)) as url:
        answers = {}
        for key in addresses:
            response = await _get(f"{url}/prefill/public_rental_housing/{key}", conflicts="true")
            answers[key] = {f["label"]: f for f in response.json()["fields"]}
        plain = await _get(f"{url}/prefill/public_rental_housing/{different}")
    assert answers[same]["户籍地址"]["status"] == "PREFILLED"
    assert answers[written_differently]["户籍地址"]["status"] == "PREFILLED"  # normalised: NFKC, stripped
    conflict = answers[different]["户籍地址"]
    assert conflict["status"] == "CONFLICT"
    assert {v["source"]: v["value"] for v in conflict["values"]} == {
        "public_security": dataset.persons_by_id[different].address,
        "address_registry": "天津市和平区南京路1号",
    }
    assert answers[different]["申请人姓名"]["status"] == "PREFILLED"  # one provider: nothing to compare
    # Without conflict mode the first department's answer stands.
    plain_field = {f["label"]: f for f in plain.json()["fields"]}["户籍地址"]
    assert plain_field["status"] == "PREFILLED"
    assert plain_field["value"] == dataset.persons_by_id[different].address
