"""A province composes two city gateways: each city runs ``onewindow serve --subgraph`` over its own departments, a
real federation router (Apollo Gateway, installed from npm) composes them, and one query reads one person whose
fields come from both cities -- each city deciding, reading and auditing its own.

The ``guarded_province`` tests run the cities as a province would: no development principal, a trusted OIDC issuer
(a real OAuth2 server) and each city's own API keys. The router composes them under a key of its own and passes
each caller's credentials on; each city authenticates the caller itself."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auth.apikeys import ApiKeyStore
from auth.principal import PrincipalKind
from demo.departments import DemoDepartments
from demo.model import Dataset
from gateway.config import GatewayConfig, load_config
from schema.federation import PURPOSE_HEADER
from tests.demo_gateway import ServedGateway
from tests.federation.cities import (
    AUDIENCE,
    CITY_A,
    CITY_B,
    CLERK_DEPARTMENT,
    applicant_of_both,
    married_applicant,
)
from tests.federation.router import city_subgraph, federation_router, install_router
from tests.oauth2_server import OAuth2MockServer, start_oauth2_mock_server

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


# -- a province whose cities admit only callers they authenticate -----------------------------------------------

A_FIELDS = """
query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) { idNumber name socialInsurance { insured } }
}"""
B_FIELDS = """
query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) { idNumber maritalStatus degrees { degree } }
}"""


@dataclass
class GuardedProvince(Province):
    """A :class:`Province` whose cities trust ``oauth2`` and their own API keys only; ``terminal_key`` is a counter
    terminal's key that city A issued (city B never heard of it)."""

    oauth2: OAuth2MockServer
    terminal_key: str

    async def clerk_token(self) -> str:
        claims = {"sub": "zhang.wei", "aud": AUDIENCE, "onewindow_kind": "clerk", "department": CLERK_DEPARTMENT}
        return await self.oauth2.token({**claims, "roles": ["case_handler"]})


async def _issue(
    config: GatewayConfig,
    *,
    subject: str,
    kind: PrincipalKind,
    roles: tuple[str, ...] = (),
    scopes: tuple[str, ...] = (),
) -> str:
    """An API key created in the key store of the city ``config`` describes (before the city starts)."""
    assert config.auth.api_keys is not None
    async with ApiKeyStore(config.auth.api_keys) as store:
        _, key = await store.create(subject=subject, kind=kind, department=CLERK_DEPARTMENT, roles=roles, scopes=scopes)
    return key


@pytest.fixture
async def guarded_province(tmp_path: Path) -> AsyncIterator[GuardedProvince]:
    await install_router()
    logs = tmp_path / "logs"
    logs.mkdir()
    async with start_oauth2_mock_server() as oauth2, DemoDepartments(tmp_path / "departments") as departments:
        cities: dict[str, tuple[Path, dict[str, str], GatewayConfig]] = {}
        for city in (CITY_A, CITY_B):
            path = city.config_file(tmp_path, issuer=oauth2.issuer)
            variables = city.variables(departments.variables, tmp_path)
            cities[city.name] = (path, variables, load_config(path, variables))
        # The router's own key in each city, for composition only: a service with no role reads no person.
        composition = {
            name: await _issue(config, subject=f"province-router@{name}", kind=PrincipalKind.SERVICE)
            for name, (_, _, config) in cities.items()
        }
        terminal = await _issue(
            cities[CITY_A.name][2],
            subject="terminal-A-07",
            kind=PrincipalKind.CLERK,
            roles=("case_handler",),
            scopes=("read:Person",),
        )
        async with contextlib.AsyncExitStack() as running:
            urls = {
                name: await running.enter_async_context(city_subgraph(path, variables, logs))
                for name, (path, variables, _) in cities.items()
            }
            router = await running.enter_async_context(federation_router(urls, logs, composition_keys=composition))
            yield GuardedProvince(
                router,
                {name: ServedGateway(urls[name], config) for name, (_, _, config) in cities.items()},
                departments.dataset,
                oauth2,
                terminal,
            )


async def test_a_clerks_token_is_passed_on_and_each_city_audits_under_that_clerk(
    guarded_province: GuardedProvince,
) -> None:
    province = guarded_province
    person, case = applicant_of_both(province.dataset)
    headers = {"Authorization": f"Bearer {await province.clerk_token()}", PURPOSE_HEADER: case}
    body = await province.query(PERSON, headers, id=person.id_number, case=case)
    assert "errors" not in body, body
    assert body["data"]["person"]["name"] == person.name  # city A
    assert body["data"]["person"]["maritalStatus"] == person.marriage.status  # city B
    (in_a,) = await province.cities[CITY_A.name].audit_of(person.id_number)
    (in_b,) = await province.cities[CITY_B.name].audit_of(person.id_number)
    for record in (in_a, in_b):
        assert (record.subject, record.via, record.principal_kind) == ("zhang.wei", "oidc:province", "clerk")
        assert (record.department, record.purpose, record.outcome) == (CLERK_DEPARTMENT, case, "released")
    assert set(in_a.released) == {"name", "birthDate", "socialInsurance"}
    assert set(in_b.released) == {"maritalStatus", "degrees"}


async def test_without_credentials_or_with_an_untrusted_token_no_city_answers_or_audits(
    guarded_province: GuardedProvince,
) -> None:
    """The router's own composition key is never lent to a caller: a caller without credentials is refused by the
    cities as one, not read as the router (whose service principal would be refused otherwise: FORBIDDEN)."""
    province = guarded_province
    person, case = applicant_of_both(province.dataset)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(  # names the trusted issuer, signed by another key
        {"iss": province.oauth2.issuer, "sub": "zhang.wei", "aud": AUDIENCE, "exp": 4102444800},
        stranger,
        algorithm="RS256",
        headers={"kid": province.oauth2.signing_kid},
    )
    for credentials in ({}, {"Authorization": f"Bearer {forged}"}, {"X-API-Key": "owk_0123456789abcdef_" + "x" * 43}):
        for query in (PERSON, A_FIELDS, B_FIELDS):
            body = await province.query(query, {**credentials, PURPOSE_HEADER: case}, id=person.id_number, case=case)
            assert body["data"] is None or body["data"]["person"] is None, body
            codes = {error["extensions"]["code"] for error in body["errors"]}
            assert codes == {"UNAUTHENTICATED"}, body
    for city in (CITY_A, CITY_B):
        assert await province.cities[city.name].audit_of(person.id_number) == []


async def test_an_api_key_is_honoured_by_the_city_that_issued_it_alone(guarded_province: GuardedProvince) -> None:
    province = guarded_province
    person, case = applicant_of_both(province.dataset)
    headers = {"X-API-Key": province.terminal_key, PURPOSE_HEADER: case}
    body = await province.query(A_FIELDS, headers, id=person.id_number, case=case)
    assert "errors" not in body, body
    assert body["data"]["person"]["name"] == person.name
    (in_a,) = await province.cities[CITY_A.name].audit_of(person.id_number)
    assert (in_a.subject, in_a.via, in_a.purpose) == ("terminal-A-07", "api_key", case)
    assert set(in_a.released) == {"name", "socialInsurance"}

    body = await province.query(B_FIELDS, headers, id=person.id_number, case=case)
    assert body["data"] is None or body["data"]["person"] is None, body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"UNAUTHENTICATED"}, body
    assert await province.cities[CITY_B.name].audit_of(person.id_number) == []
