"""DemoDepartments as the gateway's tests and the benchmark use it: variables, behaviour, stopping one."""

from __future__ import annotations

import asyncio
import time
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
import yaml
import zeep
import zeep.exceptions

from demo.data import SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, DEPARTMENTS, HRSS, PUBLIC_SECURITY, DemoDepartments
from gateway.config import parse_config
from schema.catalog import CATALOG
from tests.demo.conftest import TODAY


def _demo_config() -> object:
    return yaml.safe_load(files("demo").joinpath("onewindow.yaml").read_text(encoding="utf-8"))


async def test_variables_fill_the_demo_configuration_which_provides_every_field(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path, today=TODAY) as demo:
        variables = demo.variables
    assert set(variables) == {
        "DEMO_PUBLIC_SECURITY_WSDL",
        "DEMO_CIVIL_AFFAIRS_WSDL",
        "DEMO_HRSS_URL",
        "DEMO_MARKET_URL",
        "DEMO_LICENCES_URL",
        "DEMO_EDUCATION_DB_URL",
        "DEMO_APPROVAL_DB_URL",
        "DEMO_AUDIT_URL",
        "DEMO_KEYS_URL",
    }
    assert variables["DEMO_EDUCATION_DB_URL"] == f"sqlite+aiosqlite:///{(tmp_path / 'education.db').resolve()}"
    config = parse_config(_demo_config(), variables)
    assert set(config.sources) == set(DEPARTMENTS)
    provided = {target for source in config.sources.values() for target in source.provides}
    catalog = config.catalog
    # Every field but one is provided: the criminal record a form asks for comes from a system the demo does not
    # connect (its prefill says NOT_CONNECTED).
    fields = {f"{e}.{f}" for e, spec in catalog.items() for f, s in spec.fields.items() if not s.computed}
    assert provided == fields - {"Person.noCriminalRecord"}
    # The demo's model section adds the relations to the built-in model, and that field.
    added = {f"Person.{f}" for f in catalog["Person"].fields} - {f"Person.{f}" for f in CATALOG["Person"].fields}
    assert added == {
        "Person.householdNumber",
        "Person.spouse",
        "Person.householdMembers",
        "Person.representedEntities",
        "Person.noCriminalRecord",
    }
    assert set(catalog) == set(CATALOG)


async def test_pinned_port_is_used(tmp_path: Path, free_port: int) -> None:
    async with DemoDepartments(tmp_path, today=TODAY, ports={HRSS: free_port}) as demo:
        assert demo.variables["DEMO_HRSS_URL"] == f"http://127.0.0.1:{free_port}"


def test_unknown_department_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="education"):
        DemoDepartments(tmp_path, ports={"education": 1})


async def test_latency_delays_calls_but_not_metadata(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path, today=TODAY, latency=0.3) as demo, httpx.AsyncClient() as http:
        base = demo.variables["DEMO_HRSS_URL"]
        started = time.perf_counter()
        await http.get(f"{base}/openapi.json")
        metadata_took = time.perf_counter() - started
        started = time.perf_counter()
        answer = await http.get(f"{base}/insured/{SAMPLE_PERSON_ID}")
        call_took = time.perf_counter() - started
    assert answer.status_code == 200
    assert call_took >= 0.3 > metadata_took


async def test_failure_rate_one_fails_every_call_with_503_or_a_fault(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path, today=TODAY, failure_rate=1.0) as demo, httpx.AsyncClient() as http:
        rest = await http.get(f"{demo.variables['DEMO_HRSS_URL']}/insured/{SAMPLE_PERSON_ID}")
        wsdl = demo.variables["DEMO_PUBLIC_SECURITY_WSDL"]

        def soap_call() -> None:
            zeep.Client(wsdl).service.QueryPerson(IdCardNo=SAMPLE_PERSON_ID)

        with pytest.raises(zeep.exceptions.Fault):
            await asyncio.to_thread(soap_call)
        counter = demo.counters[PUBLIC_SECURITY]
        assert (counter.total, counter.failures, counter.metadata) == (1, 1, 1)
        assert counter.operations["QueryPerson"] == 0
    assert rest.status_code == 503
    assert demo.counters[HRSS].failures == 1


async def test_stop_makes_one_department_refuse_connections(tmp_path: Path) -> None:
    async with DemoDepartments(tmp_path, today=TODAY) as demo, httpx.AsyncClient() as http:
        marriage = demo.variables["DEMO_CIVIL_AFFAIRS_WSDL"]
        hrss = demo.variables["DEMO_HRSS_URL"]
        assert (await http.get(marriage)).status_code == 200
        await demo.stop(CIVIL_AFFAIRS)
        await demo.stop(CIVIL_AFFAIRS)
        with pytest.raises(httpx.ConnectError):
            await http.get(marriage)
        assert (await http.get(f"{hrss}/insured/{SAMPLE_PERSON_ID}")).status_code == 200
