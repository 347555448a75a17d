"""The subgraph a city serves (``serve --subgraph``), in process: its SDL as a router reads it from
``_service { sdl }``, and ``_entities`` read under the same rules as ``person(idNumber:)`` -- purpose, sharing,
audit -- over the running demo departments. The composition by a real router is tests/federation/test_router.py."""

from __future__ import annotations

import datetime as dt
import doctest
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import ObjectTypeDefinitionNode, parse

import schema.federation
from demo.departments import DemoDepartments
from demo.model import Dataset, Person
from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.serving import serve_asgi
from schema.federation import PURPOSE_HEADER, Subgraph
from schema.query import build_schema
from tests.demo_gateway import ServedGateway
from tests.federation.cities import CITY_A, CITY_B, City, applicant_of_both

ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Person { idNumber maritalStatus degrees { degree school graduatedOn } }
  }
}"""


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "departments") as demo:
        yield demo


def _config(city: City, departments: DemoDepartments, tmp_path: Path) -> GatewayConfig:
    return load_config(city.config_file(tmp_path), city.variables(departments.variables, tmp_path))


def _object_fields(sdl: str, name: str) -> set[str]:
    """The fields of the object type ``name`` as the SDL declares it (parsed, not built: the federation directives
    are the router's to know)."""
    for definition in parse(sdl).definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == name:
            return {field.name.value for field in definition.fields}
    raise AssertionError(f"no type {name} in the SDL")


async def test_each_city_declares_the_fields_its_own_departments_provide(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    a = _config(CITY_A, departments, tmp_path)
    b = _config(CITY_B, departments, tmp_path)
    sdl_a = str(build_schema(catalog=a.catalog, subgraph=Subgraph.of(a)))
    sdl_b = str(build_schema(catalog=b.catalog, subgraph=Subgraph.of(b)))

    person_a, person_b = _object_fields(sdl_a, "Person"), _object_fields(sdl_b, "Person")
    assert {"name", "birthDate", "phone", "householdMembers", "socialInsurance"} <= person_a
    assert {"degrees", "maritalStatus", "spouse"} <= person_b
    assert not {"degrees", "maritalStatus", "spouse"} & person_a
    assert not {"name", "socialInsurance", "licences"} & person_b
    # the key in both; cases from both approval platforms; provenance is one gateway's own, never federated
    assert {"idNumber", "cases"} <= person_a & person_b
    assert "provenance" not in person_a | person_b
    # a computed field is declared where all it reads is provided: both cities run an approval platform
    assert "warningState" in _object_fields(sdl_a, "Case") & _object_fields(sdl_b, "Case")
    for sdl in (sdl_a, sdl_b):
        assert 'type Person @key(fields: "idNumber", resolvable: true) @shareable {' in sdl
        assert 'type LegalEntity @key(fields: "creditCode", resolvable: true) @shareable {' in sdl
        assert '@link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@shareable"])' in sdl
        assert _object_fields(sdl, "Query") == {
            "_entities", "_service", "person", "persons", "legalEntity", "case", "me"
        }  # fmt: skip


def test_the_docstring_examples_hold() -> None:
    results = doctest.testmod(schema.federation)
    assert (results.failed, results.attempted > 0) == (0, True)


def test_the_ordinary_schema_is_not_federated() -> None:
    sdl = str(build_schema())
    assert not [word for word in ("@key", "@shareable", "_entities", "_service") if word in sdl]
    assert "provenance: [FieldProvenance!]!" in sdl


class Subgraphs:
    """City B's gateway served as a subgraph on loopback, over the running demo departments."""

    def __init__(self, gateway: ServedGateway, dataset: Dataset) -> None:
        self.gateway = gateway
        self.dataset = dataset

    async def post(self, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.gateway.url}/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def entities(self, *id_numbers: str, purpose: str | None) -> dict[str, Any]:
        headers = {PURPOSE_HEADER: purpose} if purpose is not None else None
        representations = [{"__typename": "Person", "idNumber": n} for n in id_numbers]
        return await self.post(ENTITIES, headers, representations=representations)


@pytest.fixture
async def city_b(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Subgraphs]:
    config = _config(CITY_B, departments, tmp_path)
    async with serve_asgi(create_app(config, subgraph=True)) as url:
        yield Subgraphs(ServedGateway(url, config), departments.dataset)


def _degrees(person: Person) -> list[dict[str, str]]:
    return [
        {"degree": d.degree, "school": d.school, "graduatedOn": d.graduated_on.isoformat()}
        for d in sorted(person.degrees, key=lambda d: d.graduated_on)
    ]


def _codes(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        ".".join(str(p) for p in e.get("path") or ()): (e["extensions"]["code"], e["extensions"].get("reason"))
        for e in body.get("errors", [])
    }


async def test_service_sdl_is_the_printed_subgraph(city_b: Subgraphs) -> None:
    body = await city_b.post("{ _service { sdl } }")
    config = city_b.gateway.config
    assert body["data"]["_service"]["sdl"] == str(build_schema(catalog=config.catalog, subgraph=Subgraph.of(config)))


async def test_entities_are_read_for_the_forwarded_purpose_and_audited(city_b: Subgraphs) -> None:
    person, case = applicant_of_both(city_b.dataset)
    started = dt.datetime.now(dt.UTC)
    body = await city_b.entities(person.id_number, purpose=case)
    assert "errors" not in body, body
    assert body["data"]["_entities"] == [
        {"idNumber": person.id_number, "maritalStatus": person.marriage.status, "degrees": _degrees(person)}
    ]
    (record,) = await city_b.gateway.audit_of(person.id_number)
    assert record.at >= started
    assert (record.entity, record.purpose, record.outcome) == ("Person", case, "released")
    assert set(record.released) == {"degrees", "maritalStatus"}  # the key echoes the representation: not disclosed
    assert set(record.sources) == {"education", "civil_affairs"}


async def test_entities_without_the_purpose_header_are_refused_and_the_refusal_audited(city_b: Subgraphs) -> None:
    person, _ = applicant_of_both(city_b.dataset)
    body = await city_b.entities(person.id_number, purpose=None)
    assert body["data"]["_entities"] == [{"idNumber": person.id_number, "maritalStatus": None, "degrees": None}]
    assert _codes(body) == {
        "_entities.0.maritalStatus": ("FORBIDDEN", "PURPOSE_REQUIRED"),
        "_entities.0.degrees": ("FORBIDDEN", "PURPOSE_REQUIRED"),
    }
    (record,) = await city_b.gateway.audit_of(person.id_number)
    assert (record.outcome, set(record.refused), record.released) == ("refused", {"degrees", "maritalStatus"}, ())


async def test_a_purpose_is_checked_against_the_entity_read_not_the_one_it_was_given_for(city_b: Subgraphs) -> None:
    person, case = applicant_of_both(city_b.dataset)
    stranger = next(p for p in city_b.dataset.persons if p.id_number != person.id_number and p.degrees)
    body = await city_b.entities(person.id_number, stranger.id_number, purpose=case)
    first, second = body["data"]["_entities"]
    assert first["degrees"] == _degrees(person)
    assert second == {"idNumber": stranger.id_number, "maritalStatus": None, "degrees": None}
    assert _codes(body) == {
        "_entities.1.maritalStatus": ("FORBIDDEN", "PURPOSE_INVALID"),
        "_entities.1.degrees": ("FORBIDDEN", "PURPOSE_INVALID"),
    }


async def test_a_bad_key_in_a_representation_is_refused_before_any_department(
    city_b: Subgraphs, departments: DemoDepartments
) -> None:
    person, case = applicant_of_both(city_b.dataset)
    mistyped = person.id_number[:-1] + ("0" if person.id_number[-1] != "0" else "1")
    before = {name: counter.total for name, counter in departments.counters.items()}
    body = await city_b.entities(mistyped, purpose=case)
    assert body["data"]["_entities"] == [None]
    assert _codes(body) == {"_entities.0": ("BAD_USER_INPUT", None)}
    assert {name: counter.total for name, counter in departments.counters.items()} == before
    empty = await city_b.entities(person.id_number, purpose="")
    assert _codes(empty) == {"_entities.0": ("BAD_USER_INPUT", None)}


async def test_root_lookups_still_take_the_purpose_argument(city_b: Subgraphs) -> None:
    person, case = applicant_of_both(city_b.dataset)
    body = await city_b.post(
        "query($id: IdNumber!, $case: String!) { person(idNumber: $id, purpose: {caseNumber: $case}) "
        "{ maritalStatus } }",
        id=person.id_number,
        case=case,
    )
    assert body == {"data": {"person": {"maritalStatus": person.marriage.status}}}
