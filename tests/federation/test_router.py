"""A province composes two city gateways: each city runs ``onewindow serve --subgraph`` over its own departments, a
real federation router (Apollo Gateway, installed from npm) composes them, and one query reads one person whose
fields come from both cities -- each city deciding, reading and auditing its own."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.departments import DemoDepartments
from demo.model import Dataset
from gateway.config import GatewayConfig, load_config
from schema.federation import PURPOSE_HEADER
from tests.demo_gateway import ServedGateway
from tests.federation.cities import CITY_A, CITY_B, applicant_of_both, married_applicant
from tests.federation.router import city_subgraph, federation_router, install_router

PERSON = """
query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) {
    idNumber name birthDate socialInsurance { insured contributionMonths city }
    maritalStatus degrees { degree school graduatedOn }
  }
}"""


@dataclass
class Province:
    """The router's URL, and each city's configuration (to read its audit)."""

    url: str
    cities: dict[str, ServedGateway]
    dataset: Dataset

    async def query(self, query: str, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(self.url, json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def province(tmp_path: Path) -> AsyncIterator[Province]:
    await install_router()  # first: a missing router skips (or fails, under CI) before anything starts
    logs = tmp_path / "logs"
    logs.mkdir()
    async with DemoDepartments(tmp_path / "departments") as departments:
        configs: dict[str, tuple[Path, dict[str, str], GatewayConfig]] = {}
        for city in (CITY_A, CITY_B):
            path, variables = city.config_file(tmp_path), city.variables(departments.variables, tmp_path)
            configs[city.name] = (path, variables, load_config(path, variables))
        (path_a, vars_a, config_a), (path_b, vars_b, config_b) = configs[CITY_A.name], configs[CITY_B.name]
        async with contextlib.AsyncExitStack() as running:
            url_a = await running.enter_async_context(city_subgraph(path_a, vars_a, logs))
            url_b = await running.enter_async_context(city_subgraph(path_b, vars_b, logs))
            router = await running.enter_async_context(
                federation_router({CITY_A.name: url_a, CITY_B.name: url_b}, logs)
            )
            yield Province(
                router,
                {CITY_A.name: ServedGateway(url_a, config_a), CITY_B.name: ServedGateway(url_b, config_b)},
                departments.dataset,
            )


def _codes(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        ".".join(str(p) for p in e.get("path") or ()): (e["extensions"]["code"], e["extensions"].get("reason"))
        for e in body.get("errors", [])
    }


async def test_one_person_is_read_across_both_cities_and_each_audits_its_own(province: Province) -> None:
    person, case = applicant_of_both(province.dataset)
    started = dt.datetime.now(dt.UTC)
    body = await province.query(PERSON, {PURPOSE_HEADER: case}, id=person.id_number, case=case)
    assert "errors" not in body, body
    insurance = person.social_insurance
    assert insurance is not None
    assert body["data"]["person"] == {
        "idNumber": person.id_number,
        "name": person.name,  # city A: household registry
        "birthDate": person.birth_date.isoformat(),
        "socialInsurance": {  # city A: social security
            "insured": insurance.insured,
            "contributionMonths": insurance.months,
            "city": insurance.city,
        },
        "maritalStatus": person.marriage.status,  # city B: marriage registry
        "degrees": [  # city B: degree registry
            {"degree": d.degree, "school": d.school, "graduatedOn": d.graduated_on.isoformat()}
            for d in sorted(person.degrees, key=lambda d: d.graduated_on)
        ],
    }
    (in_a,) = await province.cities[CITY_A.name].audit_of(person.id_number)
    (in_b,) = await province.cities[CITY_B.name].audit_of(person.id_number)
    for record in (in_a, in_b):
        assert record.at >= started
        assert (record.purpose, record.outcome, record.department) == (case, "released", "民政局")
    assert set(in_a.released) == {"name", "birthDate", "socialInsurance"}
    assert set(in_a.sources) == {"public_security", "hrss"}
    assert set(in_b.released) == {"maritalStatus", "degrees"}
    assert set(in_b.sources) == {"civil_affairs", "education"}


SPOUSE = """
query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) { maritalStatus spouse { idNumber name spouse { name } } }
}"""


async def test_an_entity_joined_from_the_other_city_is_read_for_the_forwarded_purpose(province: Province) -> None:
    """``spouse`` is city B's (the marriage registry), a person's ``name`` city A's: the router asks A for each
    spouse by representation, and A checks the purpose it receives in the header against that very person."""
    person, spouse, case = married_applicant(province.dataset)
    body = await province.query(SPOUSE, {PURPOSE_HEADER: case}, id=person.id_number, case=case)
    # The spouse's spouse is the applicant: the case is theirs, so A releases the name. The spouse's own name is
    # refused: the case is not the spouse's, and A cannot see the relation B holds.
    assert body["data"]["person"] == {
        "maritalStatus": "MARRIED",
        "spouse": {"idNumber": spouse.id_number, "name": None, "spouse": {"name": person.name}},
    }
    assert _codes(body) == {"person.spouse.name": ("FORBIDDEN", "PURPOSE_INVALID")}
    city_a = province.cities[CITY_A.name]
    (released,) = await city_a.audit_of(person.id_number)
    assert (released.released, released.purpose, released.sources) == (("name",), case, ("public_security",))
    (refused,) = await city_a.audit_of(spouse.id_number)
    assert (refused.outcome, refused.refused, refused.purpose) == ("refused", ("name",), case)


async def test_without_the_purpose_header_the_other_city_refuses(province: Province) -> None:
    person, spouse, case = married_applicant(province.dataset)
    body = await province.query(SPOUSE, {}, id=person.id_number, case=case)
    assert body["data"]["person"] == {
        "maritalStatus": "MARRIED",  # city B, under the purpose argument
        "spouse": {"idNumber": spouse.id_number, "name": None, "spouse": {"name": None}},
    }
    assert _codes(body) == {
        "person.spouse.name": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "person.spouse.spouse.name": ("FORBIDDEN", "PURPOSE_REQUIRED"),
    }
    (record,) = await province.cities[CITY_A.name].audit_of(person.id_number)
    assert (record.outcome, record.refused, record.purpose) == ("refused", ("name",), None)
