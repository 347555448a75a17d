"""Each demo department answers real requests: SOAP envelopes through zeep, REST calls through httpx.

The departments run once for the module, on the module's event loop; zeep is synchronous, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import zeep
import zeep.helpers
from lxml import etree

from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, HRSS, LICENCES, MARKET_REGULATION, PUBLIC_SECURITY, DemoDepartments
from demo.soap_departments import SOAP11_NS, SOAP12_NS
from tests.demo.conftest import TODAY

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNKNOWN_PERSON = "110105194912310000"  # well-formed, not in the dataset (the sample is ...002X)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path_factory.mktemp("demo"), today=TODAY) as departments:
        yield departments


async def _soap(wsdl: str, operation: str, **kwargs: Any) -> Any:
    def call() -> Any:
        client = zeep.Client(wsdl)
        return zeep.helpers.serialize_object(client.service[operation](**kwargs), dict)

    return await asyncio.to_thread(call)


async def test_household_registry_answers_zeep_with_the_sample_person(demo: DemoDepartments) -> None:
    answer = await _soap(demo.variables["DEMO_PUBLIC_SECURITY_WSDL"], "QueryPerson", IdCardNo=SAMPLE_PERSON_ID)
    assert answer["Person"] == {
        "IdCardNo": SAMPLE_PERSON_ID,
        "XM": "王秀英",
        "XB": "2",
        "MZ": "01",
        "MZMC": "汉族",
        "CSRQ": "19491231",
        "HJDZ": "北京市朝阳区建国路88号3号楼2单元501室",
        "LXDH": "13800138000",
        "HH": demo.dataset.sample_person.household_number,
    }


async def test_household_registry_lists_the_other_members_of_a_household(demo: DemoDepartments) -> None:
    wsdl = demo.variables["DEMO_PUBLIC_SECURITY_WSDL"]
    dataset = demo.dataset
    grandson = dataset.persons_by_id[dataset.household_members(SAMPLE_PERSON_ID)[0]]
    answer = await _soap(wsdl, "QueryHouseholdMembers", IdCardNo=SAMPLE_PERSON_ID)
    assert answer["HH"] == dataset.sample_person.household_number == grandson.household_number
    assert answer["Members"] == {"Member": [{"IdCardNo": grandson.id_number, "XM": "王建国"}]}
    alone = next(p for p in dataset.persons if not dataset.household_members(p.id_number))
    lonely = await _soap(wsdl, "QueryHouseholdMembers", IdCardNo=alone.id_number)
    assert (lonely["ResultCode"], lonely["HH"], lonely["Members"]) == ("00", alone.household_number, None)  # empty
    unknown = await _soap(wsdl, "QueryHouseholdMembers", IdCardNo=UNKNOWN_PERSON)
    assert (unknown["ResultCode"], unknown["Members"]) == ("01", None)


async def test_household_registry_leaves_out_unknown_people(demo: DemoDepartments) -> None:
    wsdl = demo.variables["DEMO_PUBLIC_SECURITY_WSDL"]
    single = await _soap(wsdl, "QueryPerson", IdCardNo=UNKNOWN_PERSON)
    assert single["Person"] is None
    other = demo.dataset.persons[5].id_number
    batch = await _soap(wsdl, "QueryPersonBatch", IdCardNos={"IdCardNo": [SAMPLE_PERSON_ID, UNKNOWN_PERSON, other]})
    assert [p["IdCardNo"] for p in batch["Persons"]["Person"]] == [SAMPLE_PERSON_ID, other]


async def test_marriage_registry_answers_soap_12_with_nil_for_the_unmarried(demo: DemoDepartments) -> None:
    wsdl = demo.variables["DEMO_CIVIL_AFFAIRS_WSDL"]
    answer = await _soap(wsdl, "QueryMarriage", IdCardNo=SAMPLE_PERSON_ID)
    assert answer["MarriageRecord"] == {
        "IdCardNo": SAMPLE_PERSON_ID,
        "MarriageStatus": "30",
        "RegisterDate": dt.date(1972, 5, 1),
        "Registry": "北京市朝阳区民政局婚姻登记处",
        "SpouseIdCardNo": None,
    }
    single = next(p for p in demo.dataset.persons if p.marriage.code == "10")
    record = (await _soap(wsdl, "QueryMarriage", IdCardNo=single.id_number))["MarriageRecord"]
    assert record["MarriageStatus"] == "10"
    assert record["RegisterDate"] is None
    assert record["Registry"] is None
    assert record["SpouseIdCardNo"] is None


async def test_marriage_registry_names_the_spouse_of_a_married_person_and_the_spouse_names_them(
    demo: DemoDepartments,
) -> None:
    wsdl = demo.variables["DEMO_CIVIL_AFFAIRS_WSDL"]
    married = next(p for p in demo.dataset.persons if p.marriage.status == "MARRIED")
    record = (await _soap(wsdl, "QueryMarriage", IdCardNo=married.id_number))["MarriageRecord"]
    assert record["SpouseIdCardNo"] == married.marriage.spouse_id
    spouse = (await _soap(wsdl, "QueryMarriage", IdCardNo=record["SpouseIdCardNo"]))["MarriageRecord"]
    assert spouse["SpouseIdCardNo"] == married.id_number
    assert spouse["RegisterDate"] == record["RegisterDate"]


async def test_wsdl_address_is_the_url_it_was_fetched_from(demo: DemoDepartments) -> None:
    async with httpx.AsyncClient() as http:
        for variable in ("DEMO_PUBLIC_SECURITY_WSDL", "DEMO_CIVIL_AFFAIRS_WSDL"):
            wsdl = demo.variables[variable]
            text = (await http.get(wsdl)).text
            assert f'location="{wsdl.removesuffix("?wsdl")}"' in text


def _envelope(ns: str, payload: str) -> bytes:
    return f'<e:Envelope xmlns:e="{ns}"><e:Body>{payload}</e:Body></e:Envelope>'.encode()


async def test_soap_endpoints_answer_bad_requests_with_faults(demo: DemoDepartments) -> None:
    household = demo.variables["DEMO_PUBLIC_SECURITY_WSDL"].removesuffix("?wsdl")
    marriage = demo.variables["DEMO_CIVIL_AFFAIRS_WSDL"].removesuffix("?wsdl")
    async with httpx.AsyncClient() as http:
        malformed = await http.post(household, content=b"<not-closed>", headers={"content-type": "text/xml"})
        unknown_op = await http.post(household, content=_envelope(SOAP11_NS, '<Drop xmlns="urn:x"/>'))
        wrong_version = await http.post(marriage, content=_envelope(SOAP11_NS, "<QueryMarriage/>"))
    assert malformed.status_code == 500
    fault = etree.fromstring(malformed.content).find(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:Client"
    assert unknown_op.status_code == 500
    assert b"unknown operation" in unknown_op.content
    assert wrong_version.headers["content-type"].startswith("application/soap+xml")
    code = etree.fromstring(wrong_version.content).findtext(f".//{{{SOAP12_NS}}}Value")
    assert code == "soap:VersionMismatch"


async def test_hrss_serves_records_batches_and_its_openapi_document(demo: DemoDepartments) -> None:
    base = demo.variables["DEMO_HRSS_URL"]
    async with httpx.AsyncClient(base_url=base) as http:
        one = await http.get(f"/insured/{SAMPLE_PERSON_ID}")
        missing = await http.get(f"/insured/{UNKNOWN_PERSON}")
        batch = await http.post("/insured:batch", json={"ids": [SAMPLE_PERSON_ID, UNKNOWN_PERSON]})
        bad = await http.post("/insured:batch", json={"ids": "not a list"})
        document = (await http.get("/openapi.json")).json()
    assert one.json() == {
        "idNumber": SAMPLE_PERSON_ID,
        "insured": "1",
        "months": 348,
        "city": "北京市",
        "since": "1992-01-01",
    }
    assert missing.status_code == 404
    assert batch.json() == {"items": [one.json()]}
    assert bad.status_code == 400
    assert document["openapi"].startswith("3.")
    assert {"/insured/{idNumber}", "/insured:batch"} <= set(document["paths"])
    assert document["servers"] == [{"url": base}]


async def test_market_regulation_writes_capital_with_two_decimals(demo: DemoDepartments) -> None:
    async with httpx.AsyncClient(base_url=demo.variables["DEMO_MARKET_URL"]) as http:
        one = await http.get(f"/enterprises/{SAMPLE_ENTITY_CODE}")
        missing = await http.get("/enterprises/91110000600037342J")
        other = demo.dataset.entities[9].credit_code
        batch = await http.post("/enterprises:batch", json={"creditCodes": [other, SAMPLE_ENTITY_CODE]})
    assert '"registeredCapital": 5000000.00' in one.text
    record = one.json()
    assert record["legalRepresentative"] == {"idNumber": SAMPLE_PERSON_ID, "name": "王秀英"}
    assert record["status"] == "存续"
    assert record["establishedOn"] == "2003-06-18"
    assert missing.status_code == 404
    assert [r["creditCode"] for r in batch.json()["items"]] == [other, SAMPLE_ENTITY_CODE]


async def test_market_regulation_lists_the_enterprises_of_a_legal_representative(demo: DemoDepartments) -> None:
    dataset = demo.dataset
    representative = next(p for p, entities in dataset.entities_by_representative.items() if len(entities) > 1)
    async with httpx.AsyncClient(base_url=demo.variables["DEMO_MARKET_URL"]) as http:
        sample = await http.get("/enterprises", params={"legalRepresentative": SAMPLE_PERSON_ID})
        several = await http.get("/enterprises", params={"legalRepresentative": representative})
        nobody = await http.get("/enterprises", params={"legalRepresentative": UNKNOWN_PERSON})
        missing = await http.get("/enterprises")
        document = (await http.get("/openapi.json")).json()
    assert SAMPLE_ENTITY_CODE in [r["creditCode"] for r in sample.json()["items"]]
    items = several.json()["items"]
    assert len(items) > 1
    assert {r["legalRepresentative"]["idNumber"] for r in items} == {representative}
    expected = dataset.entities_by_representative[representative]
    assert [r["creditCode"] for r in items] == [e.credit_code for e in expected]
    assert nobody.json() == {"items": []}
    assert missing.status_code == 400
    assert {"/enterprises", "/enterprises/{creditCode}", "/enterprises:batch"} == set(document["paths"])
    parameters = document["paths"]["/enterprises"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [("legalRepresentative", "query")]


async def test_licence_library_lists_by_holder_and_in_batches(demo: DemoDepartments) -> None:
    async with httpx.AsyncClient(base_url=demo.variables["DEMO_LICENCES_URL"]) as http:
        person = (await http.get("/licences", params={"holderId": SAMPLE_PERSON_ID})).json()["items"]
        nobody = (await http.get("/licences", params={"holderId": UNKNOWN_PERSON})).json()["items"]
        no_holder = await http.get("/licences")
        batch = await http.post("/licences:batch", json={"holderIds": [SAMPLE_PERSON_ID, SAMPLE_ENTITY_CODE]})
    assert person
    assert {lic["holderId"] for lic in person} == {SAMPLE_PERSON_ID}
    assert person[0]["type"] == "居民身份证"
    assert person[0]["statusCode"] == "A"
    assert nobody == []
    assert no_holder.status_code == 400
    holders = [lic["holderId"] for lic in batch.json()["items"]]
    assert set(holders) == {SAMPLE_PERSON_ID, SAMPLE_ENTITY_CODE}
    assert len(holders) == len(person) + len(demo.dataset.sample_entity.licences)


async def test_counters_count_calls_per_operation_and_serve_them_as_json(demo: DemoDepartments) -> None:
    counter = demo.counters[MARKET_REGULATION]
    before = counter.total, counter.operations["getEnterprise"]
    async with httpx.AsyncClient(base_url=demo.variables["DEMO_MARKET_URL"]) as http:
        for _ in range(3):
            await http.get(f"/enterprises/{SAMPLE_ENTITY_CODE}")
        stats = (await http.get("/__stats")).json()
    assert (counter.total, counter.operations["getEnterprise"]) == (before[0] + 3, before[1] + 3)
    assert stats == json.loads(json.dumps(counter.snapshot()))
    assert set(demo.counters) == {PUBLIC_SECURITY, CIVIL_AFFAIRS, HRSS, MARKET_REGULATION, LICENCES}


async def test_sqlite_departments_hold_the_dataset(demo: DemoDepartments) -> None:
    import sqlite3

    def counts(path: Path, *tables: str) -> list[int]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables]

    data = demo.dataset
    assert counts(demo.databases["education"], "T_XL_XX") == [sum(len(p.degrees) for p in data.persons)]
    assert counts(demo.databases["approval"], "T_SX", "T_BJ", "T_BJ_GC") == [
        len(data.service_items),
        len(data.cases),
        sum(len(c.events) for c in data.cases),
    ]
    with contextlib.closing(sqlite3.connect(demo.databases["education"])) as conn:
        rows = conn.execute("SELECT XLMC, YXMC FROM T_XL_XX WHERE SFZH = ?", (SAMPLE_PERSON_ID,)).fetchall()
    assert rows == [("本科", "北京师范大学")]
