"""Compiled SOAP calls (:mod:`adapters.soap_fast`) answer exactly what zeep's path answers.

Every query is called through two adapters on the same service, one compiled and one with ``fast_path: false``
(every call through zeep), and the outcomes compared: the records (types included: ``Decimal``, dates, ``None``
for nil), or the error (its class, message and department code). The services are real: spyne (SOAP 1.1 and 1.2),
the hand-written SOAP 1.2 register, the demo departments' SOAP services, and, for answers no service sends on
purpose (``xsi:type``, unqualified or misordered elements, a nil record), a department answering scripted
envelopes through ``httpx.MockTransport``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.soap import SoapAdapter
from demo.data import build_dataset
from demo.soap_departments import HOUSEHOLD_PATH, MARRIAGE_PATH, civil_affairs_app, public_security_app
from gateway.config import SourceConfig
from gateway.errors import GatewayError
from gateway.serving import serve_asgi
from tests.adapters.secured_servers import WsseDepartment
from tests.adapters.soap_peers import (
    BAD_DECIMAL_ID,
    FAULT_ID,
    HTML_ERROR_ID,
    MALFORMED_ID,
    NO_RECORD_ID,
    NOT_FOUND_CODE,
    PEOPLE,
    SPYNE_SKIP_REASON,
    TNS,
    UNKNOWN_ID,
    XHTML_ERROR_ID,
    soap12_person_app,
    spyne_available,
    spyne_person_service,
)
from tests.adapters.soap_service import SOAP11, SOAP12, SoapVersion, document_literal_wsdl
from tests.adapters.test_soap import ALLOWANCE_QUERIES, SOAP12_QUERIES, SPYNE_QUERIES

KNOWN = list(PEOPLE)
ODD_KEYS = ["a<&>\"'b", "张三 ", ""]  # escaped, unicode with a space, empty


def _config(wsdl: str, queries: dict[str, Any], **options: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"kind": "soap", "department": "Civil Affairs Bureau", "timeout": 5, "wsdl": wsdl, **options,
         "queries": queries, "provides": {}}
    )  # fmt: skip


@contextlib.asynccontextmanager
async def both_paths(
    wsdl: str, queries: dict[str, Any], http_client: httpx.AsyncClient | None = None, **options: Any
) -> AsyncIterator[tuple[SoapAdapter, SoapAdapter]]:
    """A compiled adapter (every call compiled, or the test fails) and one that sends every call through zeep."""
    fast = SoapAdapter("civil_affairs", _config(wsdl, queries, **options), http_client=http_client)
    slow = SoapAdapter("civil_affairs", _config(wsdl, queries, fast_path=False, **options), http_client=http_client)
    async with fast, slow:
        assert fast.zeep_calls == {}
        assert set(slow.zeep_calls) >= set(queries)
        yield fast, slow


def _outcome(result: Any) -> Any:
    if isinstance(result, GatewayError):
        return (type(result).__name__, str(result), getattr(result, "department_code", None))
    return result


async def _fetch(adapter: SoapAdapter, query: str, keys: list[str]) -> Any:
    try:
        return await adapter.fetch(query, keys)
    except GatewayError as exc:
        return exc


async def assert_same(fast: SoapAdapter, slow: SoapAdapter, query: str, keys: list[str]) -> Any:
    compiled, by_zeep = await _fetch(fast, query, keys), await _fetch(slow, query, keys)
    assert _outcome(compiled) == _outcome(by_zeep)
    assert _types(compiled) == _types(by_zeep)  # Decimal("1") == 1, but they are not the same answer
    return compiled


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


# -- spyne, SOAP 1.1 and 1.2 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["soap11", "soap12"])
def spyne_wsdl(request: pytest.FixtureRequest) -> Iterator[str]:
    if not spyne_available():
        pytest.skip(SPYNE_SKIP_REASON)
    with spyne_person_service(request.param) as url:
        yield url


@pytest.mark.parametrize(
    ("query", "keys"),
    [("person", [k]) for k in [*KNOWN, UNKNOWN_ID, NO_RECORD_ID, *ODD_KEYS]]
    + [("person", KNOWN), ("person", [*KNOWN, UNKNOWN_ID]), ("person", ODD_KEYS), ("broken", [KNOWN[0]])],
)
async def test_spyne_answers_alike(spyne_wsdl: str, query: str, keys: list[str]) -> None:
    async with both_paths(spyne_wsdl, SPYNE_QUERIES) as (fast, slow):
        await assert_same(fast, slow, query, keys)


async def test_spyne_not_found_fault_alike(spyne_wsdl: str) -> None:
    queries = {"person": {**SPYNE_QUERIES["person"], "not_found_faults": ["NotFound"]}}
    async with both_paths(spyne_wsdl, queries) as (fast, slow):
        assert await assert_same(fast, slow, "person", [NO_RECORD_ID]) == {}


async def test_spyne_record_keeps_nil_decimal_date_and_unicode(spyne_wsdl: str) -> None:
    async with both_paths(spyne_wsdl, SPYNE_QUERIES) as (fast, slow):
        found = await assert_same(fast, slow, "person", KNOWN)
    zhang, li = found[KNOWN[0]][0], found[KNOWN[1]][0]
    assert (zhang["XM"], zhang["Note"], zhang["CSRQ"]) == ("张三", None, dt.date(1949, 12, 31))
    assert type(zhang["Capital"]) is Decimal
    assert li["Note"] == "迁出"


# -- the hand-written SOAP 1.2 register ------------------------------------------------------------------------


@pytest.fixture
async def soap12_wsdl() -> AsyncIterator[str]:
    async with serve_asgi(soap12_person_app()) as url:
        yield f"{url}/register?wsdl"


SOAP12_ALL = {**SOAP12_QUERIES, **ALLOWANCE_QUERIES}
MISBEHAVING = [FAULT_ID, HTML_ERROR_ID, XHTML_ERROR_ID, MALFORMED_ID, BAD_DECIMAL_ID, NO_RECORD_ID]


@pytest.mark.parametrize(
    ("query", "keys"),
    [("person", [k]) for k in [*KNOWN, UNKNOWN_ID, *MISBEHAVING, *ODD_KEYS]]
    + [("person", KNOWN), ("person", [KNOWN[0], FAULT_ID]), ("person", ODD_KEYS)]
    + [("people", [k]) for k in [KNOWN[1], UNKNOWN_ID, FAULT_ID]]
    + [("allowance", [KNOWN[0]]), ("allowance", [UNKNOWN_ID])],
)
async def test_soap12_register_answers_alike(soap12_wsdl: str, query: str, keys: list[str]) -> None:
    async with both_paths(soap12_wsdl, SOAP12_ALL) as (fast, slow):
        await assert_same(fast, slow, query, keys)


@pytest.mark.parametrize("faults", [[NOT_FOUND_CODE], ["NoRecord"], ["Sender.NoRecord"]])
async def test_soap12_not_found_faults_alike(soap12_wsdl: str, faults: list[str]) -> None:
    async with both_paths(soap12_wsdl, SOAP12_QUERIES, not_found_faults=faults) as (fast, slow):
        assert await assert_same(fast, slow, "person", [NO_RECORD_ID]) == {}
        assert await assert_same(fast, slow, "person", [NO_RECORD_ID, KNOWN[0]]) == {}


async def test_soap12_result_path_errors_alike(soap12_wsdl: str) -> None:
    queries = {
        "missing": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, "result": "Persons.Person"},
        "value": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, "result": "Person.XM"},
        "count": {"operation": "GetPeople", "request": {"IdCardNo": ["{key}", "x{key}y"]}, "result": "Count"},
    }
    async with both_paths(soap12_wsdl, queries) as (fast, slow):
        for query in queries:
            await assert_same(fast, slow, query, [KNOWN[0]])


# -- the demo departments --------------------------------------------------------------------------------------

DEMO_DATASET = build_dataset()
HOUSEHOLD_QUERIES: dict[str, Any] = {
    "person": {
        "operation": "QueryPerson",
        "request": {"IdCardNo": "{key}"},
        "result": "Person",
        "batch": {
            "operation": "QueryPersonBatch",
            "request": {"IdCardNos": {"IdCardNo": "{keys}"}},
            "result": "Persons.Person",
            "key": "IdCardNo",
        },
    },
    "household": {
        "operation": "QueryHouseholdMembers",
        "request": {"IdCardNo": "{key}"},
        "result": "Members.Member",
        "many": True,
    },
}
MARRIAGE_QUERIES = {"marriage": {"operation": "QueryMarriage", "request": {"IdCardNo": "{key}"}}}


async def test_demo_public_security_answers_alike() -> None:
    keys = list(DEMO_DATASET.persons_by_id)[:40]
    async with (
        serve_asgi(public_security_app(DEMO_DATASET)) as url,
        both_paths(f"{url}{HOUSEHOLD_PATH}?wsdl", HOUSEHOLD_QUERIES) as (fast, slow),
    ):
        for key in [*keys, UNKNOWN_ID]:
            await assert_same(fast, slow, "person", [key])
            await assert_same(fast, slow, "household", [key])
        found = await assert_same(fast, slow, "person", [*keys, UNKNOWN_ID])
    assert len(found) == len(keys)
    assert {record["IdCardNo"] for [record] in found.values()} == set(keys)


async def test_demo_civil_affairs_answers_alike() -> None:
    keys = list(DEMO_DATASET.persons_by_id)[:40]
    async with (
        serve_asgi(civil_affairs_app(DEMO_DATASET)) as url,
        both_paths(f"{url}{MARRIAGE_PATH}?wsdl", MARRIAGE_QUERIES) as (fast, slow),
    ):
        answers = [await assert_same(fast, slow, "marriage", [key]) for key in [*keys, UNKNOWN_ID]]
    records = [answer[key][0]["MarriageRecord"] for key, answer in zip(keys, answers, strict=False)]
    assert {type(r["RegisterDate"]) for r in records} == {dt.date, type(None)}


# -- scripted answers: what no service above sends -------------------------------------------------------------

_SCHEMA = """\
      <xs:complexType name="Person">
        <xs:sequence>
          <xs:element name="IdCardNo" type="xs:string"/>
          <xs:element name="Capital" type="xs:decimal" minOccurs="0"/>
          <xs:element name="Born" type="xs:date" minOccurs="0" nillable="true"/>
          <xs:element name="Alias" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="GetPerson">
        <xs:complexType><xs:sequence><xs:element name="IdCardNo" type="xs:string"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetPersonResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="Status" type="xs:string"/>
          <xs:element name="Person" type="tns:Person" minOccurs="0" nillable="true"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetOne">
        <xs:complexType><xs:sequence><xs:element name="IdCardNo" type="xs:string"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetOneResponse">
        <xs:complexType><xs:sequence><xs:element name="Person" type="tns:Person" minOccurs="0"/></xs:sequence>
        </xs:complexType>
      </xs:element>
"""
_P = f'xmlns:p="{TNS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_PERSON = "<p:IdCardNo>1</p:IdCardNo><p:Capital>1.50</p:Capital><p:Born>2001-02-03</p:Born>"
ANSWERS = {
    "plain": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person>{_PERSON}</p:Person></p:GetPersonResponse>",
    "aliases": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person>{_PERSON}<p:Alias>甲</p:Alias>"
    "<p:Alias>乙</p:Alias></p:Person></p:GetPersonResponse>",
    "unqualified": "<GetPersonResponse><Status>OK</Status><Person><IdCardNo>1</IdCardNo></Person></GetPersonResponse>",
    "nil-record": f'<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person xsi:nil="true"/></p:GetPersonResponse>',
    "nil-date": f'<p:GetPersonResponse {_P}><p:Status/><p:Person><p:IdCardNo>1</p:IdCardNo><p:Born xsi:nil="true"/>'
    "</p:Person></p:GetPersonResponse>",
    "empty-record": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person/></p:GetPersonResponse>",
    "empty-answer": f"<p:GetPersonResponse {_P}/>",
    "comment": f"<p:GetPersonResponse {_P}><!-- x --><p:Status>OK</p:Status></p:GetPersonResponse>",
    "processing-instruction": f"<p:GetPersonResponse {_P}><?pi x?><p:Status>OK</p:Status></p:GetPersonResponse>",
    "xsi-type": f'<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person xsi:type="p:Person">{_PERSON}'
    "</p:Person></p:GetPersonResponse>",
    "bad-date": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person><p:IdCardNo>1</p:IdCardNo>"
    "<p:Born>31/12/1949</p:Born></p:Person></p:GetPersonResponse>",
    "bad-decimal": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person><p:IdCardNo>1</p:IdCardNo>"
    "<p:Capital>1,5</p:Capital></p:Person></p:GetPersonResponse>",
    "unexpected": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Extra/></p:GetPersonResponse>",
    "missing-required": f"<p:GetPersonResponse {_P}><p:Person>{_PERSON}</p:Person></p:GetPersonResponse>",
    "misordered": f"<p:GetPersonResponse {_P}><p:Status>OK</p:Status><p:Person><p:Born>2001-02-03</p:Born>"
    "<p:IdCardNo>1</p:IdCardNo></p:Person></p:GetPersonResponse>",
    "other-namespace": f'<p:GetPersonResponse {_P} xmlns:q="urn:other"><p:Status>OK</p:Status><q:Person>'
    f"{_PERSON}</q:Person></p:GetPersonResponse>",
    "wrong-root": f"<p:SomethingElse {_P}><p:Status>OK</p:Status></p:SomethingElse>",
}
RAW = {
    "empty-body": (200, "{env}"),
    "not-an-envelope": (200, "<html><body/></html>"),
    "not-xml": (200, "oops <"),
    "no-content-500": (500, ""),
    "no-content-202": (202, ""),
    "fault-with-detail": (500, "{env}"),
    "fault-with-200": (200, "{env}"),
    "dtd": (200, '<!DOCTYPE x [<!ENTITY e "v">]>{env}'),
}


def _envelope(version: SoapVersion, body: str) -> str:
    return f'<?xml version="1.0"?><e:Envelope xmlns:e="{version.namespace}"><e:Body>{body}</e:Body></e:Envelope>'


def _fault(version: SoapVersion) -> str:
    detail = f'<p:Error xmlns:p="{TNS}"><p:ErrorCode>NO_RECORD</p:ErrorCode></p:Error>'
    if version is SOAP11:
        return (
            "<e:Fault><faultcode>e:Client.NotFound</faultcode><faultstring>无记录 x</faultstring>"
            f"<detail>{detail}</detail></e:Fault>"
        )
    return (
        "<e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>p:NoRecord</e:Value></e:Subcode></e:Code>"
        f'<e:Reason><e:Text xml:lang="zh">无记录 x</e:Text></e:Reason><e:Detail>{detail}</e:Detail></e:Fault>'
    ).replace("<e:Fault>", f'<e:Fault xmlns:p="{TNS}">', 1)


def _scripted(version: SoapVersion, case: str) -> tuple[int, str]:
    if case in ANSWERS:
        return 200, _envelope(version, ANSWERS[case])
    status, text = RAW[case]
    body = _fault(version) if case.startswith("fault") else ""
    return status, text.replace("{env}", _envelope(version, body))


@pytest.fixture(params=[SOAP11, SOAP12], ids=["soap11", "soap12"])
def scripted(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[SoapVersion, str]:
    version: SoapVersion = request.param
    wsdl = document_literal_wsdl(
        version, tns=TNS, name="Scripted", schema=_SCHEMA, operations=("GetPerson", "GetOne"),
        location="http://scripted.test/soap",
    )  # fmt: skip
    path = tmp_path / "scripted.wsdl"
    path.write_text(wsdl, encoding="utf-8")
    return version, str(path)


def _department(version: SoapVersion, case: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        status, text = _scripted(version, case)
        return httpx.Response(status, content=text.encode(), headers={"Content-Type": version.media_type})

    return answer


SCRIPTED_QUERIES = {
    "person": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}},
    "record": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, "result": "Person"},
    "one": {"operation": "GetOne", "request": {"IdCardNo": "{key}"}},
}


@pytest.mark.parametrize("case", [*ANSWERS, *RAW])
async def test_scripted_answers_alike(scripted: tuple[SoapVersion, str], case: str) -> None:
    version, wsdl = scripted
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(_department(version, case))) as http,
        both_paths(wsdl, SCRIPTED_QUERIES, http_client=http, not_found_faults=["NOT_THIS"]) as (f, s),
    ):
        for query in SCRIPTED_QUERIES:
            await assert_same(f, s, query, ["1"])


async def test_scripted_fault_codes_alike(scripted: tuple[SoapVersion, str]) -> None:
    version, wsdl = scripted
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(_department(version, "fault-with-detail"))) as http,
        both_paths(wsdl, SCRIPTED_QUERIES, http_client=http, not_found_faults=["NO_RECORD"]) as (f, s),
    ):
        assert await assert_same(f, s, "person", ["1"]) == {}


# -- what stays on zeep, and says so ---------------------------------------------------------------------------


async def test_ws_security_stays_on_zeep_and_says_why() -> None:
    department = WsseDepartment()
    credentials = {"type": "wsse_username_token", "username": department.username, "password": department.password}
    queries = {"person": {"operation": "QueryPerson", "request": {"IdCardNo": "{key}"}}}
    async with (
        serve_asgi(department.app()) as url,
        SoapAdapter("civil_affairs", _config(f"{url}/person?wsdl", queries, credentials=credentials)) as a,
    ):
        assert a.zeep_calls == {"person": "WS-Security adds a token of its own to every envelope"}
        assert await a.fetch("person", ["11010519491231002X"]) == {
            "11010519491231002X": [{"IdCardNo": "11010519491231002X", "XM": "张三"}]
        }


async def test_fast_path_off_keeps_every_call_on_zeep(soap12_wsdl: str) -> None:
    async with SoapAdapter("civil_affairs", _config(soap12_wsdl, SOAP12_QUERIES, fast_path=False)) as adapter:
        assert adapter.zeep_calls == dict.fromkeys(["person", "person.batch", "people"], "fast_path is off")


async def test_choice_in_the_answer_stays_on_zeep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    schema = _SCHEMA.replace(
        '<xs:element name="Status" type="xs:string"/>',
        '<xs:choice><xs:element name="Status" type="xs:string"/><xs:element name="Code" type="xs:int"/></xs:choice>',
    )
    wsdl = document_literal_wsdl(
        SOAP12, tns=TNS, name="Scripted", schema=schema, operations=("GetPerson", "GetOne"),
        location="http://scripted.test/soap",
    )  # fmt: skip
    (tmp_path / "choice.wsdl").write_text(wsdl, encoding="utf-8")
    with caplog.at_level("DEBUG", logger="adapters.soap"):
        async with SoapAdapter("civil_affairs", _config(str(tmp_path / "choice.wsdl"), SCRIPTED_QUERIES)) as adapter:
            assert set(adapter.zeep_calls) == {"person", "record"}
            assert "xsd:choice" in adapter.zeep_calls["person"]
    assert any("person (GetPerson) goes through zeep" in r.getMessage() for r in caplog.records)
