"""The gateway end to end, over HTTP, against the real demo departments (SOAP, REST and SQLite servers)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID
from demo.departments import (
    APPROVAL,
    CIVIL_AFFAIRS,
    EDUCATION,
    HRSS,
    LICENCES,
    PUBLIC_SECURITY,
    DemoDepartments,
)
from demo.variants import DEMO_OPERATOR
from gateway.app import YOUNG_COLLECTION_THRESHOLD, build_adapters, create_app
from gateway.cli import DEMO_CONFIG
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.serving import serve_asgi
from gateway.sources import SourceSet
from tests.demo_config import demo_config
from tests.gateway.conftest import Gateway

SOAP_SOURCES = {PUBLIC_SECURITY, CIVIL_AFFAIRS}
REST_SOURCES = {HRSS, LICENCES, "market_regulation"}
SQL_SOURCES = {EDUCATION, APPROVAL}

PERSON_QUERY = """
query($id: IdNumber!) {
  person(idNumber: $id) {
    idNumber name gender birthDate maritalStatus
    socialInsurance { insured contributionMonths city }
    degrees { degree school graduatedOn }
    licences { type number status }
    provenance { field source department fetchedAt stale }
  }
}
"""


async def test_one_query_reads_soap_rest_and_sql_departments_with_provenance(gateway: Gateway) -> None:
    body = await gateway.query(PERSON_QUERY, id=SAMPLE_PERSON_ID)
    assert "errors" not in body, body
    person = body["data"]["person"]
    expected = gateway.departments.dataset.sample_person
    assert person["name"] == expected.name
    assert person["birthDate"] == "1949-12-31"
    assert person["gender"] == "FEMALE"
    assert person["degrees"], "the sample person holds a degree"
    sources = {p["source"] for p in person["provenance"]}
    assert sources & SOAP_SOURCES
    assert sources & REST_SOURCES
    assert sources & SQL_SOURCES
    by_field = {p["field"]: p for p in person["provenance"]}
    assert by_field["maritalStatus"]["source"] == CIVIL_AFFAIRS
    assert by_field["degrees"]["source"] == EDUCATION
    assert by_field["socialInsurance"]["source"] == HRSS
    assert all(p["stale"] is False and p["fetchedAt"] for p in person["provenance"])


async def test_invalid_id_number_reaches_no_department(gateway: Gateway) -> None:
    body = await gateway.query(PERSON_QUERY, id="11010519491231002Y")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "check character" in error["message"]
    literal = await gateway.query('{ person(idNumber: "1101051949") { name maritalStatus degrees { degree } } }')
    assert literal["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(gateway.department_calls().values()) == {0}


async def test_stopped_department_costs_only_its_fields(gateway: Gateway) -> None:
    await gateway.departments.stop(HRSS)
    body = await gateway.query(PERSON_QUERY, id=SAMPLE_PERSON_ID)
    person = body["data"]["person"]
    assert person["socialInsurance"] is None
    assert person["name"] == gateway.departments.dataset.sample_person.name
    assert person["maritalStatus"] is not None
    assert person["degrees"]
    [error] = body["errors"]
    assert error["path"] == ["person", "socialInsurance"]
    assert error["extensions"] == {"code": "SOURCE_UNAVAILABLE", "source": HRSS}
    assert HRSS not in {p["source"] for p in person["provenance"]}


async def test_fifty_persons_cost_one_request_per_batch_capable_department(gateway: Gateway) -> None:
    ids = [p.id_number for p in gateway.departments.dataset.persons[:50]]
    body = await gateway.query(
        """query($ids: [IdNumber!]!) { persons(idNumbers: $ids) {
             idNumber name socialInsurance { insured } licences { number } degrees { degree } maritalStatus } }""",
        ids=ids,
    )
    assert "errors" not in body, body["errors"][:2]
    assert [p["idNumber"] for p in body["data"]["persons"]] == ids
    calls = gateway.department_calls()
    assert calls[PUBLIC_SECURITY] == 1
    assert calls[HRSS] == 1
    assert calls[LICENCES] == 1
    assert calls[EDUCATION] == 1
    assert calls[CIVIL_AFFAIRS] == 50, "the marriage registry takes one key per call"
    names = {p.id_number: p.name for p in gateway.departments.dataset.persons}
    assert all(p["name"] == names[p["idNumber"]] for p in body["data"]["persons"])


async def test_legal_entity_with_representative_and_exact_capital(gateway: Gateway) -> None:
    body = await gateway.query(
        """query($code: CreditCode!) { legalEntity(creditCode: $code) {
             creditCode name registeredCapital status legalRepresentative { idNumber name }
             licences { type } provenance { source } } }""",
        code=SAMPLE_ENTITY_CODE,
    )
    assert "errors" not in body, body
    entity = body["data"]["legalEntity"]
    expected = next(e for e in gateway.departments.dataset.entities if e.credit_code == SAMPLE_ENTITY_CODE)
    assert entity["name"] == expected.name
    assert entity["registeredCapital"] == str(expected.registered_capital)
    persons = gateway.departments.dataset.persons
    representative = next(p for p in persons if p.id_number == expected.legal_representative)
    assert entity["legalRepresentative"] == {"idNumber": representative.id_number, "name": representative.name}
    assert entity["licences"]


async def test_cases_are_listed_filtered_and_paged(gateway: Gateway) -> None:
    page_query = """query($after: String, $applicant: String) {
        cases(first: 7, after: $after, applicant: $applicant) {
          edges { cursor node { caseNumber status warningState applicant { __typename ... on Person { idNumber } } } }
          pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
    first = (await gateway.query(page_query))["data"]["cases"]
    second = (await gateway.query(page_query, after=first["pageInfo"]["endCursor"]))["data"]["cases"]
    numbers = [e["node"]["caseNumber"] for e in first["edges"] + second["edges"]]
    assert len(numbers) == len(set(numbers)) == 14
    assert first["pageInfo"]["hasNextPage"]
    assert not first["pageInfo"]["hasPreviousPage"]
    assert second["pageInfo"]["hasPreviousPage"]
    mine = (await gateway.query(page_query, applicant=SAMPLE_PERSON_ID))["data"]["cases"]["edges"]
    assert mine
    assert {e["node"]["applicant"]["idNumber"] for e in mine} == {SAMPLE_PERSON_ID}
    assert all(e["node"]["warningState"] in {"ON_TIME", "WARNING", "OVERDUE", "CLOSED"} for e in mine)

    status_query = "{ cases(first: 20, status: COMPLETED) { edges { node { status closedAt } } } }"
    completed = (await gateway.query(status_query))["data"]["cases"]["edges"]
    assert completed
    assert {e["node"]["status"] for e in completed} == {"COMPLETED"}


async def test_case_with_timeline_service_item_and_applicant(gateway: Gateway) -> None:
    expected = gateway.departments.dataset.cases[0]
    body = await gateway.query(
        """query($no: String!) { case(caseNumber: $no) {
             caseNumber status submittedAt deadline warningState
             serviceItem { code name promisedDays }
             applicant { __typename ... on Person { name } ... on LegalEntity { name } }
             events { type at handler } } }""",
        no=expected.case_number,
    )
    assert "errors" not in body, body
    case = body["data"]["case"]
    assert case["caseNumber"] == expected.case_number
    assert case["events"][0]["type"] == "RECEIVED"
    assert [e["at"] for e in case["events"]] == sorted(e["at"] for e in case["events"])
    assert case["serviceItem"]["code"] == expected.service_item
    assert case["applicant"]["name"]
    unknown = await gateway.query('{ case(caseNumber: "NO-SUCH-CASE") { status } }')
    assert unknown["data"] == {"case": None}


async def test_readiness_names_a_department_that_is_down_at_start(departments: DemoDepartments, tmp_path: Path) -> None:
    config = demo_config(departments.variables, tmp_path)
    await departments.stop(CIVIL_AFFAIRS)
    async with serve_asgi(create_app(config)) as url, httpx.AsyncClient() as client:
        ready = await client.get(f"{url}/readyz", headers=DEMO_OPERATOR)
        assert ready.status_code == 200
        assert ready.json()["degraded"] == [CIVIL_AFFAIRS]
        assert ready.json()["sources"][CIVIL_AFFAIRS]["status"] == "unavailable"
        assert ready.json()["sources"][HRSS]["status"] == "ready"
        assert (await client.get(f"{url}/healthz")).json() == {"status": "ok", "pid": os.getpid()}


async def test_graphiql_is_served_when_enabled(gateway: Gateway) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{gateway.url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda y: y.replace("table: T_XL_XX", "table: T_XL_XXX"), "sources.education.queries"),
        (lambda y: y.replace("operation: QueryMarriage", "operation: QueryMarriages"), "sources.civil_affairs.queries"),
        (lambda y: y.replace("path: /insured/{key}", "path: /insurance/{key}"), "sources.hrss.queries.insured"),
    ],
)
async def test_configuration_that_disagrees_with_a_department_fails_at_start_up(
    departments: DemoDepartments, tmp_path: Path, edit: Callable[[str], str], key: str
) -> None:
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text
    path = tmp_path / "onewindow.yaml"
    path.write_text(edited, encoding="utf-8")
    config = load_config(path, variables=departments.variables)
    sources = SourceSet(config, build_adapters(config))
    try:
        with pytest.raises(ConfigError) as info:
            await sources.open()
    finally:
        await sources.aclose()
    assert info.value.path.startswith(key), info.value


async def test_dead_department_opens_its_circuit_and_shows_in_readiness_and_metrics(gateway: Gateway) -> None:
    await gateway.departments.stop(HRSS)
    breaker = gateway.config.sources[HRSS].breaker.failures
    ids = [p.id_number for p in gateway.departments.dataset.persons[: breaker + 3]]
    for key in ids:
        body = await gateway.query(
            "query($id: IdNumber!) { person(idNumber: $id) { socialInsurance { insured } } }", id=key
        )
        assert body["errors"][0]["extensions"] == {"code": "SOURCE_UNAVAILABLE", "source": HRSS}
    async with httpx.AsyncClient() as client:
        ready = (await client.get(f"{gateway.url}/readyz", headers=DEMO_OPERATOR)).json()
        metrics = (await client.get(f"{gateway.url}/metrics", headers=DEMO_OPERATOR)).text
    assert ready["sources"][HRSS]["breaker"] == "open"
    assert HRSS in ready["degraded"]
    assert f'onewindow_source_breaker_state{{source="{HRSS}"}} 2.0' in metrics
    assert f'onewindow_source_calls_total{{outcome="CIRCUIT_OPEN",source="{HRSS}"}}' in metrics


async def test_the_served_gateway_freezes_what_it_built_at_start_and_thaws_on_shutdown(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = demo_config(departments.variables, tmp_path)
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with serve_asgi(create_app(config, freeze_startup_objects=True)) as url:
        frozen = gc.get_freeze_count()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])  # young objects die uncollected
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(f"{url}/graphql", json={"query": "{ viewer { subject } }"})
        assert answer.status_code == 200
    assert frozen > 10_000  # the schema, the adapters, the libraries' modules: not a handful of objects
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
