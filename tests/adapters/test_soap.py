"""The SOAP adapter against real SOAP services: spyne (a third-party stack, SOAP 1.1 and 1.2) and a
hand-written SOAP 1.2 service with scripted misbehaviour (see :mod:`tests.adapters.soap_peers`).

An HTTP error status whose body is not a SOAP fault (an HTML error page) is a ``SourceFault``: the department
answered, with an error. A 200 whose body is not XML is ``BadSourceData``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import FieldShape
from adapters.conformance import AdapterConformance
from adapters.soap import SoapAdapter
from gateway.config import SourceConfig
from gateway.errors import (
    BadSourceData,
    ConfigError,
    SourceCredentialsRefused,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from gateway.serving import serve_asgi
from tests.adapters.soap_peers import (
    BAD_DECIMAL_ID,
    FAULT_ID,
    HTML_ERROR_ID,
    MALFORMED_ID,
    NO_RECORD_ID,
    NOT_FOUND_CODE,
    NOT_FOUND_SUBCODE,
    PEOPLE,
    SLOW_ID,
    SLOW_SECONDS,
    SPYNE_SKIP_REASON,
    UNKNOWN_ID,
    XHTML_ERROR_ID,
    basic_auth_required,
    soap12_person_app,
    spyne_available,
    spyne_person_service,
)

KNOWN = list(PEOPLE)
ZHANG = KNOWN[0]

SPYNE_QUERIES: dict[str, Any] = {
    "person": {
        "operation": "QueryPerson",
        "request": {"IdCardNo": "{key}"},
        "batch": {
            "operation": "QueryPersonBatch",
            "request": {"IdCardNos": {"string": "{keys}"}},
            "key": "IdCardNo",
        },
    },
    "broken": {"operation": "QueryPersonBroken", "request": {"IdCardNo": "{key}"}},
}

SOAP12_QUERIES: dict[str, Any] = {
    "person": {
        "operation": "GetPerson",
        "request": {"IdCardNo": "{key}"},
        "result": "Person",
        "batch": {
            "operation": "GetPeople",
            "request": {"IdCardNo": "{keys}"},
            "result": "Person",
            "key": "IdCardNo",
        },
    },
    "people": {
        "operation": "GetPeople",
        "request": {"IdCardNo": ["{key}"]},
        "result": "Person",
        "many": True,
    },
}


def soap_adapter(
    wsdl: str, queries: dict[str, Any], *, name: str = "civil_affairs", timeout: float = 5.0, **options: Any
) -> SoapAdapter:
    config = SourceConfig.model_validate(
        {
            "kind": "soap",
            "department": "Civil Affairs Bureau",
            "timeout": timeout,
            "wsdl": wsdl,
            **options,
            "queries": queries,
            "provides": {"Person.name": {"query": "person", "value": "XM"}},
        }
    )
    return SoapAdapter(name, config)


def saved_wsdl(url: str, tmp_path: Path) -> str:
    """The WSDL at ``url`` saved to a file, so an adapter can load it while the endpoint is down."""
    path = tmp_path / "service.wsdl"
    path.write_bytes(httpx.get(url).content)
    return str(path)


@contextlib.asynccontextmanager
async def _silent_endpoint() -> AsyncIterator[str]:
    """A loopback HTTP endpoint that reads requests and never answers, until the block exits."""

    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


# -- spyne: SOAP 1.1 and SOAP 1.2 ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["soap11", "soap12"])
def spyne_wsdl(request: pytest.FixtureRequest) -> Iterator[str]:
    if not spyne_available():
        pytest.skip(SPYNE_SKIP_REASON)
    with spyne_person_service(request.param) as url:
        yield url


@pytest.fixture
async def spyne_adapter(spyne_wsdl: str) -> AsyncIterator[SoapAdapter]:
    async with soap_adapter(spyne_wsdl, SPYNE_QUERIES) as adapter:
        assert isinstance(adapter, SoapAdapter)
        yield adapter


class _PersonServiceConformance(AdapterConformance):
    """The fixtures both person services (spyne's and the SOAP 1.2 one) share."""

    @pytest.fixture
    def query(self) -> str:
        return "person"

    @pytest.fixture
    def known_keys(self) -> list[str]:
        return KNOWN

    @pytest.fixture
    def unknown_key(self) -> str:
        return UNKNOWN_ID

    @pytest.fixture
    def key_path(self) -> str:
        return "IdCardNo"


class TestSoapConformance(_PersonServiceConformance):
    @pytest.fixture
    def adapter(self, spyne_adapter: SoapAdapter) -> SoapAdapter:
        return spyne_adapter

    @pytest.fixture
    async def unreachable_adapter(self, spyne_wsdl: str, tmp_path: Path, free_port: int) -> AsyncIterator[SoapAdapter]:
        wsdl = saved_wsdl(spyne_wsdl, tmp_path)
        adapter = soap_adapter(wsdl, SPYNE_QUERIES, address=f"http://127.0.0.1:{free_port}/")
        yield adapter
        await adapter.aclose()

    @pytest.fixture
    async def slow_adapter(self, spyne_wsdl: str, tmp_path: Path) -> AsyncIterator[SoapAdapter]:
        """The service's own WSDL, its address a loopback endpoint that takes the request and never answers."""
        async with _silent_endpoint() as address:
            wsdl = saved_wsdl(spyne_wsdl, tmp_path)
            async with soap_adapter(wsdl, SPYNE_QUERIES, address=address, timeout=0.3) as adapter:
                assert isinstance(adapter, SoapAdapter)
                yield adapter


async def test_spyne_record_keeps_xsd_types(spyne_adapter: SoapAdapter) -> None:
    [record] = (await spyne_adapter.fetch("person", [ZHANG]))[ZHANG]
    assert record == {
        "IdCardNo": ZHANG,
        "XM": "张三",
        "XB": "2",
        "CSRQ": dt.date(1949, 12, 31),
        "Capital": Decimal("12345678901234.56"),
        "Note": None,
    }
    assert type(record["Capital"]) is Decimal


async def test_spyne_fault_is_source_fault_with_fault_string(spyne_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceFault, match="household register database is down") as info:
        await spyne_adapter.fetch("broken", [ZHANG])
    assert info.value.source == "civil_affairs"
    assert info.value.extensions["code"] == "SOURCE_FAULT"


async def test_spyne_probe_reports_the_operations(spyne_wsdl: str) -> None:
    adapter = soap_adapter(spyne_wsdl, SPYNE_QUERIES)
    try:
        assert await adapter.probe() == "WSDL ok, 3 operations"
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("queries", "path"),
    [
        (
            {"person": {"operation": "QueryPersn", "request": {"IdCardNo": "{key}"}}},
            "queries.person.operation",
        ),
        (
            {
                "person": {
                    **SPYNE_QUERIES["person"],
                    "batch": {**SPYNE_QUERIES["person"]["batch"], "operation": "Nope"},
                }
            },
            "queries.person.batch.operation",
        ),
    ],
)
async def test_missing_operation_is_a_config_error_at_open(spyne_wsdl: str, queries: Any, path: str) -> None:
    adapter = soap_adapter(spyne_wsdl, queries)
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert info.value.path == f"sources.civil_affairs.{path}"
    assert "QueryPerson, QueryPersonBatch, QueryPersonBroken" in info.value.reason
    await adapter.aclose()


async def test_request_template_that_does_not_fit_the_operation_is_a_config_error(spyne_wsdl: str) -> None:
    adapter = soap_adapter(spyne_wsdl, {"person": {"operation": "QueryPerson", "request": {"IdCard": "{key}"}}})
    with pytest.raises(ConfigError, match="IdCard") as info:
        await adapter.open()
    assert info.value.path == "sources.civil_affairs.queries.person.request"


@pytest.mark.parametrize(("option", "value"), [("service", "NoSuchService"), ("port", "NoSuchPort")])
async def test_unknown_service_or_port_is_a_config_error(spyne_wsdl: str, option: str, value: str) -> None:
    options: dict[str, Any] = {option: value}
    adapter = soap_adapter(spyne_wsdl, SPYNE_QUERIES, **options)
    with pytest.raises(ConfigError, match=value) as info:
        await adapter.open()
    assert info.value.path == f"sources.civil_affairs.{option}"


async def test_shared_client_is_used_but_not_closed(spyne_wsdl: str) -> None:
    config = soap_adapter(spyne_wsdl, SPYNE_QUERIES).config
    async with httpx.AsyncClient(headers={"X-Agency": "onewindow"}) as shared:
        adapter = SoapAdapter("civil_affairs", config, http_client=shared)
        await adapter.open()
        assert ZHANG in await adapter.fetch("person", [ZHANG])
        await adapter.aclose()
        await adapter.aclose()
        assert not shared.is_closed
        assert shared.headers["X-Agency"] == "onewindow"


# -- configuration and reachability, no server needed --------------------------------------------------------


async def test_unreachable_wsdl_is_source_unavailable_at_open(free_port: int) -> None:
    adapter = soap_adapter(f"http://127.0.0.1:{free_port}/?wsdl", SOAP12_QUERIES)
    with pytest.raises(SourceUnavailable) as info:
        await adapter.open()
    assert info.value.source == "civil_affairs"
    await adapter.aclose()


async def test_missing_wsdl_file_is_a_config_error(tmp_path: Path) -> None:
    adapter = soap_adapter(str(tmp_path / "absent.wsdl"), SOAP12_QUERIES)
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert info.value.path == "sources.civil_affairs.wsdl"


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"operation": "GetPerson", "request": {"IdCardNo": "11010519491231002X"}}, "person.request"),
        ({"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, "bacth": {}}, "person.bacth"),
        (
            {
                "operation": "GetPerson",
                "request": {"IdCardNo": "{key}"},
                "batch": {"operation": "GetPeople", "request": {"IdCardNo": "{key}"}, "key": "IdCardNo"},
            },
            "person.batch.request",
        ),
    ],
)
def test_query_keys_are_checked_when_the_adapter_is_built(query: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        soap_adapter("unused.wsdl", {"person": query})
    assert info.value.path == f"sources.civil_affairs.queries.{path}"


# -- a hand-written SOAP 1.2 service, with misbehaviour ------------------------------------------------------


@pytest.fixture
async def soap12_wsdl() -> AsyncIterator[str]:
    async with serve_asgi(soap12_person_app()) as url:
        yield f"{url}/register?wsdl"


@pytest.fixture
async def soap12_adapter(soap12_wsdl: str) -> AsyncIterator[SoapAdapter]:
    async with soap_adapter(soap12_wsdl, SOAP12_QUERIES, timeout=SLOW_SECONDS / 4) as adapter:
        assert isinstance(adapter, SoapAdapter)
        yield adapter


class TestSoap12Conformance(_PersonServiceConformance):
    @pytest.fixture
    def adapter(self, soap12_adapter: SoapAdapter) -> SoapAdapter:
        return soap12_adapter

    @pytest.fixture
    def slow_adapter(self, soap12_adapter: SoapAdapter) -> SoapAdapter:
        return soap12_adapter  # its timeout is a quarter of the service's delay for SLOW_ID

    @pytest.fixture
    def slow_key(self) -> str:
        return SLOW_ID

    @pytest.fixture
    async def unreachable_adapter(self, soap12_wsdl: str, tmp_path: Path, free_port: int) -> AsyncIterator[SoapAdapter]:
        async with httpx.AsyncClient() as client:
            (tmp_path / "register.wsdl").write_bytes((await client.get(soap12_wsdl)).content)
        adapter = soap_adapter(
            str(tmp_path / "register.wsdl"), SOAP12_QUERIES, address=f"http://127.0.0.1:{free_port}/"
        )
        yield adapter
        await adapter.aclose()


async def test_soap12_record_at_result_path_keeps_xsd_types(soap12_adapter: SoapAdapter) -> None:
    result = await soap12_adapter.fetch("person", KNOWN)
    assert [r["IdCardNo"] for rs in result.values() for r in rs] == KNOWN
    [zhang] = result[ZHANG]
    assert zhang["Capital"] == Decimal("12345678901234.56")
    assert type(zhang["Capital"]) is Decimal
    assert zhang["CSRQ"] == dt.date(1949, 12, 31)
    assert zhang["Note"] is None
    assert result[KNOWN[1]][0]["Note"] == "迁出"


async def test_many_query_lists_records_and_an_empty_list_is_absent(soap12_adapter: SoapAdapter) -> None:
    assert await soap12_adapter.fetch("people", [UNKNOWN_ID]) == {}
    assert [r["XM"] for r in (await soap12_adapter.fetch("people", [ZHANG]))[ZHANG]] == ["张三"]


async def test_soap12_fault_is_source_fault_with_reason_and_code_never_the_key(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceFault, match=re.escape("register locked for {key}")) as info:
        await soap12_adapter.fetch("person", [FAULT_ID])
    assert "Receiver" in info.value.reason
    assert FAULT_ID not in str(info.value)


@pytest.mark.parametrize("key", [HTML_ERROR_ID, XHTML_ERROR_ID], ids=["html", "xhtml"])
async def test_html_error_page_is_source_fault(soap12_adapter: SoapAdapter, key: str) -> None:
    with pytest.raises(SourceFault, match=r"HTTP .*without a SOAP fault"):
        await soap12_adapter.fetch("person", [key])


async def test_malformed_xml_is_bad_source_data(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(BadSourceData) as info:
        await soap12_adapter.fetch("person", [MALFORMED_ID])
    assert info.value.source == "civil_affairs"


async def test_value_that_is_not_its_xsd_type_is_bad_source_data(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(BadSourceData, match="not an xs:decimal"):
        await soap12_adapter.fetch("person", [BAD_DECIMAL_ID])


async def test_slow_answer_is_source_timeout(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceTimeout, match="no answer within"):
        await soap12_adapter.fetch("person", [SLOW_ID])


async def test_fetch_before_open_is_a_programming_error(soap12_wsdl: str) -> None:
    adapter = soap_adapter(soap12_wsdl, SOAP12_QUERIES)
    with pytest.raises(RuntimeError, match="not open"):
        await adapter.fetch("person", [ZHANG])


# -- faults that mean "no record" ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["Client.NotFound", "NotFound", "soap11env:Client.NotFound", "Sender.NotFound"])
async def test_spyne_not_found_fault_makes_the_key_absent(
    spyne_wsdl: str, code: str, request: pytest.FixtureRequest
) -> None:
    # spyne writes Client.NotFound as soap11env:Client.NotFound (1.1), or as Sender with subcode NotFound (1.2)
    if code.startswith("soap11env:") and request.node.callspec.params["spyne_wsdl"] == "soap12":
        pytest.skip("a SOAP 1.1 prefix")
    queries = {"person": {**SPYNE_QUERIES["person"], "not_found_faults": [code]}}
    async with soap_adapter(spyne_wsdl, queries) as adapter:
        assert await adapter.fetch("person", [NO_RECORD_ID]) == {}
        assert ZHANG in await adapter.fetch("person", [ZHANG])


async def test_spyne_fault_not_listed_is_a_fault_with_its_code(spyne_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceFault) as info:
        await spyne_adapter.fetch("person", [NO_RECORD_ID])
    assert info.value.department_code in ("soap11env:Client.NotFound", "soap12env:Sender")


@pytest.mark.parametrize(
    "faults",
    [["NO_RECORD"], ["NoRecord"], ["Sender"], ["env:Sender"], [f"{{urn:onewindow:test:soap12}}{NOT_FOUND_SUBCODE}"]],
    ids=["detail-code", "subcode", "code", "prefixed-code", "namespaced-subcode"],
)
async def test_soap12_not_found_fault_by_code_subcode_or_detail_code(soap12_wsdl: str, faults: list[str]) -> None:
    async with soap_adapter(soap12_wsdl, SOAP12_QUERIES, not_found_faults=faults) as adapter:
        assert await adapter.fetch("person", [NO_RECORD_ID]) == {}
        assert await adapter.fetch("person", [NO_RECORD_ID, ZHANG]) == {}  # the batch call faulted as a whole
        with pytest.raises(SourceFault):  # another fault is still an error
            await adapter.fetch("person", [FAULT_ID])


async def test_query_not_found_faults_override_the_sources(soap12_wsdl: str) -> None:
    queries = {**SOAP12_QUERIES, "person": {**SOAP12_QUERIES["person"], "not_found_faults": []}}
    async with soap_adapter(soap12_wsdl, queries, not_found_faults=[NOT_FOUND_CODE]) as adapter:
        assert await adapter.fetch("people", [NO_RECORD_ID]) == {}
        with pytest.raises(SourceFault) as info:
            await adapter.fetch("person", [NO_RECORD_ID])
    assert info.value.department_code == "env:Sender"
    assert info.value.extensions["departmentCode"] == "env:Sender"


async def test_fault_carries_its_code_as_department_code(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceFault) as info:
        await soap12_adapter.fetch("person", [FAULT_ID])
    assert info.value.department_code == "env:Receiver"


async def test_spyne_fault_carries_its_code(spyne_adapter: SoapAdapter) -> None:
    with pytest.raises(SourceFault) as info:
        await spyne_adapter.fetch("broken", [ZHANG])
    assert info.value.department_code is not None
    assert info.value.department_code.rpartition(":")[2] in ("Server.Database", "Receiver")


# -- errors name paths, keys and types, never a department's value -------------------------------------------

_ZHANG_VALUES = (ZHANG, "张三", "12345678901234.56", "1949-12-31")


def assert_value_free(error: Exception, values: tuple[str, ...] = _ZHANG_VALUES) -> None:
    text = str(error)
    assert not [value for value in values if value in text], text


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"result": "Persons.Person"}, "result path Persons.Person not found: no Persons; the answer has keys: "),
        ({"result": "Person.XM.First"}, "result path Person.XM.First not found: First is read from a str"),
        ({"result": "Person.XM"}, "expected a record (an element with children), got a str"),
    ],
    ids=["missing", "through-a-value", "a-value"],
)
async def test_result_path_errors_carry_no_record_value(soap12_wsdl: str, query: dict[str, Any], said: str) -> None:
    queries = {"person": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, **query}}
    async with soap_adapter(soap12_wsdl, queries) as adapter:
        with pytest.raises(BadSourceData) as info:
            await adapter.fetch("person", [ZHANG])
    assert said in info.value.reason
    assert_value_free(info.value)


async def test_missing_result_path_lists_the_keys_there_are(soap12_wsdl: str) -> None:
    queries = {"person": {"operation": "GetPerson", "request": {"IdCardNo": "{key}"}, "result": "Persons.Person"}}
    async with soap_adapter(soap12_wsdl, queries) as adapter:
        with pytest.raises(BadSourceData) as info:
            await adapter.fetch("person", [ZHANG])
    assert info.value.reason.endswith("the answer has keys: Status, Person")


async def test_batch_key_path_error_carries_no_record_value(soap12_wsdl: str) -> None:
    person = {**SOAP12_QUERIES["person"], "batch": {**SOAP12_QUERIES["person"]["batch"], "key": "Id.No"}}
    async with soap_adapter(soap12_wsdl, {"person": person}) as adapter:
        with pytest.raises(BadSourceData, match=r"batch key path Id\.No not found") as info:
            await adapter.fetch("person", KNOWN)
    assert "IdCardNo, XM" in info.value.reason
    assert_value_free(info.value)


async def test_unreadable_value_error_carries_no_record_value(soap12_adapter: SoapAdapter) -> None:
    with pytest.raises(BadSourceData) as info:
        await soap12_adapter.fetch("person", [BAD_DECIMAL_ID])
    assert_value_free(info.value, (BAD_DECIMAL_ID, "赵六", "12,345.67"))


# -- credentials the department refuses ----------------------------------------------------------------------

REGISTER_USERS = {"onewindow": "basic-pw-1", "guest": "guest-pw-2"}


@pytest.fixture
async def guarded_wsdl() -> AsyncIterator[str]:
    app = basic_auth_required(soap12_person_app(), REGISTER_USERS, forbidden=frozenset({"guest"}))
    async with serve_asgi(app) as url:
        yield f"{url}/register?wsdl"


def _basic(username: str, password: str) -> dict[str, str]:
    return {"type": "basic", "username": username, "password": password}


async def test_basic_credentials_cover_the_wsdl_and_the_calls(guarded_wsdl: str) -> None:
    async with soap_adapter(guarded_wsdl, SOAP12_QUERIES, credentials=_basic("onewindow", "basic-pw-1")) as adapter:
        assert ZHANG in await adapter.fetch("person", [ZHANG])


@pytest.mark.parametrize(
    ("credentials", "status"),
    [(None, 401), (_basic("onewindow", "wrong-pw-3"), 401), (_basic("guest", "guest-pw-2"), 403)],
    ids=["none", "wrong-password", "forbidden"],
)
async def test_wsdl_refusing_the_credentials_is_credentials_refused(
    guarded_wsdl: str, credentials: dict[str, str] | None, status: int
) -> None:
    options = {"credentials": credentials} if credentials else {}
    adapter = soap_adapter(guarded_wsdl, SOAP12_QUERIES, **options)
    with pytest.raises(SourceCredentialsRefused) as info:
        await adapter.open()
    await adapter.aclose()
    assert info.value.extensions["code"] == "SOURCE_CREDENTIALS_REFUSED"
    assert f"HTTP {status}" in info.value.reason
    assert "sources.civil_affairs.credentials" in info.value.reason
    assert "wrong-pw-3" not in str(info.value)


@pytest.mark.parametrize(
    ("credentials", "status"),
    [(_basic("onewindow", "wrong-pw-3"), 401), (_basic("guest", "guest-pw-2"), 403)],
    ids=["wrong-password", "forbidden"],
)
async def test_endpoint_refusing_the_credentials_is_credentials_refused(
    guarded_wsdl: str, tmp_path: Path, credentials: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(auth=("onewindow", "basic-pw-1")) as client:
        (tmp_path / "register.wsdl").write_bytes((await client.get(guarded_wsdl)).content)
    async with soap_adapter(str(tmp_path / "register.wsdl"), SOAP12_QUERIES, credentials=credentials) as adapter:
        with pytest.raises(SourceCredentialsRefused) as info:
            await adapter.fetch("person", [ZHANG])
        with pytest.raises(SourceCredentialsRefused):
            await adapter.fetch("person", KNOWN)  # the batch call too
    assert f"GetPerson: HTTP {status}" in info.value.reason
    assert "sources.civil_affairs.credentials" in info.value.reason
    assert "wrong-pw-3" not in str(info.value)


# -- describe: record shapes from the WSDL's types -------------------------------------------------------------

PERSON_SHAPE = {
    "IdCardNo": FieldShape("String"),
    "XM": FieldShape("String"),
    "XB": FieldShape("String"),
    "CSRQ": FieldShape("Date"),
    "Capital": FieldShape("Decimal"),
    "Note": FieldShape("String"),
}


async def test_spyne_describe_reads_the_record_through_the_unwrapped_answer(spyne_adapter: SoapAdapter) -> None:
    assert await spyne_adapter.describe("person") == PERSON_SHAPE


@pytest.mark.parametrize("query", ["person", "people"])
async def test_soap12_describe_follows_the_result_path(soap12_adapter: SoapAdapter, query: str) -> None:
    assert await soap12_adapter.describe(query) == PERSON_SHAPE


async def test_soap12_describe_without_result_path_is_the_whole_answer(soap12_wsdl: str) -> None:
    queries = {"people": {"operation": "GetPeople", "request": {"IdCardNo": ["{key}"]}}}
    async with soap_adapter(soap12_wsdl, queries) as adapter:
        shape = await adapter.describe("people")
    assert shape == {"Count": FieldShape("Int"), "Person": FieldShape("Object", many=True, fields=PERSON_SHAPE)}


ALLOWANCE_QUERIES = {"allowance": {"operation": "GetAllowance", "request": {"IdCardNo": "{key}"}}}


async def test_soap12_describe_maps_each_xsd_type_and_fetch_agrees(soap12_wsdl: str) -> None:
    async with soap_adapter(soap12_wsdl, ALLOWANCE_QUERIES) as adapter:
        shape = await adapter.describe("allowance")
        [record] = (await adapter.fetch("allowance", [ZHANG]))[ZHANG]
    assert shape == {
        "IdCardNo": FieldShape("String"),
        "Grade": FieldShape("String"),  # a restriction of xs:token
        "Months": FieldShape("Int"),
        "Total": FieldShape("Int"),
        "Count": FieldShape("Int"),
        "Amount": FieldShape("Decimal"),
        "Rate": FieldShape("Float"),
        "Ratio": FieldShape("Float"),
        "Active": FieldShape("Boolean"),
        "Paid": FieldShape("DateTime"),
        "Remark": FieldShape("String"),
        "Payment": FieldShape("Object", many=True, fields={"Month": FieldShape("Date"), "Sum": FieldShape("Decimal")}),
    }
    python = {"String": str, "Int": int, "Decimal": Decimal, "Float": float, "Boolean": bool, "DateTime": dt.datetime}
    for name, field in shape.items():
        if field.type in python:
            assert type(record[name]) is python[field.type], name
    assert [type(p["Sum"]) for p in record["Payment"]] == [Decimal, Decimal]


async def test_describe_of_a_result_path_the_wsdl_lacks_is_a_config_error(soap12_wsdl: str) -> None:
    queries = {"person": {**SOAP12_QUERIES["person"], "result": "Person.Address"}}
    async with soap_adapter(soap12_wsdl, queries) as adapter:
        with pytest.raises(ConfigError) as info:
            await adapter.describe("person")
    assert info.value.path == "sources.civil_affairs.queries.person.result"
    assert "Person has no element 'Address' in the WSDL; it has: IdCardNo, XM, XB, CSRQ, Capital, Note" in str(
        info.value
    )


async def test_describe_of_a_simple_value_is_none(soap12_wsdl: str) -> None:
    queries = {"count": {"operation": "GetPeople", "request": {"IdCardNo": ["{key}"]}, "result": "Count"}}
    async with soap_adapter(soap12_wsdl, queries) as adapter:
        assert await adapter.describe("count") is None
