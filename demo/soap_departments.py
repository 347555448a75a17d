"""The SOAP departments: Public Security's household registry (SOAP 1.1) and Civil Affairs' marriage registry
(SOAP 1.2), as plain Starlette apps answering real envelopes against the WSDLs in ``demo/wsdl/``.

    GET  /household?wsdl          the WSDL, its soap:address pointing at the URL it was fetched from
    POST /household               QueryPerson(IdCardNo) -> {ResultCode, Person?};
                                  QueryPersonBatch(IdCardNos{IdCardNo*}) -> {ResultCode, Persons{Person*}};
                                  QueryHouseholdMembers(IdCardNo) -> {ResultCode, HH?, Members{Member*}?}
                                  (the other persons of the household: IdCardNo, XM)
    GET  /marriage?wsdl
    POST /marriage                QueryMarriage(IdCardNo) -> {ResultCode, MarriageRecord?}   (SOAP 1.2;
                                  SpouseIdCardNo while married)

An unknown ID number gives a response without a record (ResultCode ``01``); a malformed envelope or an unknown
operation gives a SOAP Fault of the endpoint's SOAP version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from demo.behaviour import DepartmentBehaviour, RequestCounter, department_app
from demo.model import GENDER_CODES, Dataset, code_of

__all__ = [
    "HOUSEHOLD_NS",
    "HOUSEHOLD_PATH",
    "MARRIAGE_NS",
    "MARRIAGE_PATH",
    "MAX_BATCH",
    "SOAP11_NS",
    "SOAP12_NS",
    "civil_affairs_app",
    "public_security_app",
]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
HOUSEHOLD_NS = "http://demo.onewindow.cn/public-security/household"
MARRIAGE_NS = "http://demo.onewindow.cn/civil-affairs/marriage"
HOUSEHOLD_PATH = "/household"
MARRIAGE_PATH = "/marriage"
MAX_BATCH = 1000

_WSDL_NS = {"soap": "http://schemas.xmlsoap.org/wsdl/soap/", "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


@dataclass(frozen=True)
class _Version:
    envelope_ns: str
    content_type: str
    sender: str  # fault code for the caller's mistakes
    receiver: str  # fault code for the service's own failures


_SOAP11 = _Version(SOAP11_NS, "text/xml; charset=utf-8", "Client", "Server")
_SOAP12 = _Version(SOAP12_NS, "application/soap+xml; charset=utf-8", "Sender", "Receiver")


class _Fault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # "sender", "receiver" or "VersionMismatch"
        self.message = message


_Operation = Callable[[Any], Any]  # request payload element -> response payload element


def _fault_response(version: _Version, fault: _Fault) -> Response:
    env = version.envelope_ns
    code = {"sender": version.sender, "receiver": version.receiver}.get(fault.code, fault.code)
    envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env})
    body_fault = etree.SubElement(etree.SubElement(envelope, f"{{{env}}}Body"), f"{{{env}}}Fault")
    if version is _SOAP11:
        etree.SubElement(body_fault, "faultcode").text = f"soap:{code}"
        etree.SubElement(body_fault, "faultstring").text = fault.message
        status = 500
    else:
        value = etree.SubElement(etree.SubElement(body_fault, f"{{{env}}}Code"), f"{{{env}}}Value")
        value.text = f"soap:{code}"
        text = etree.SubElement(etree.SubElement(body_fault, f"{{{env}}}Reason"), f"{{{env}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "zh-CN")
        text.text = fault.message
        status = 400 if fault.code == "sender" else 500
    return Response(
        etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), status, media_type=version.content_type
    )


class _SoapEndpoint:
    """One SOAP endpoint: serves its WSDL on GET ``?wsdl`` and dispatches POSTed envelopes to operations."""

    def __init__(
        self,
        version: _Version,
        namespace: str,
        wsdl_file: str,
        path: str,
        operations: Mapping[str, _Operation],
        counter: RequestCounter,
    ) -> None:
        self.version = version
        self.namespace = namespace
        self.path = path
        self.operations = operations
        self.counter = counter
        self._wsdl = files("demo").joinpath("wsdl", wsdl_file).read_bytes()

    def routes(self) -> list[Route]:
        return [Route(self.path, self.wsdl, methods=["GET"]), Route(self.path, self.call, methods=["POST"])]

    async def wsdl(self, request: Request) -> Response:
        if "wsdl" not in request.query_params:
            return PlainTextResponse(f"POST SOAP envelopes here; the WSDL is at {self.path}?wsdl", 400)
        tree = etree.fromstring(self._wsdl, _PARSER)
        location = f"{request.url.scheme}://{request.url.netloc}{self.path}"
        for address in tree.iterfind(".//soap:address", _WSDL_NS):
            address.set("location", location)
        for address in tree.iterfind(".//soap12:address", _WSDL_NS):
            address.set("location", location)
        return Response(etree.tostring(tree, xml_declaration=True, encoding="utf-8"), media_type="text/xml")

    async def call(self, request: Request) -> Response:
        try:
            payload = self._payload(await request.body())
            name = etree.QName(payload).localname
            operation = self.operations.get(name) if etree.QName(payload).namespace == self.namespace else None
            if operation is None:
                raise _Fault("sender", f"unknown operation {payload.tag}")
            result = operation(payload)
        except _Fault as fault:
            return _fault_response(self.version, fault)
        self.counter.hit(name)
        env = self.version.envelope_ns
        envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env})
        etree.SubElement(envelope, f"{{{env}}}Body").append(result)
        return Response(
            etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), media_type=self.version.content_type
        )

    def _payload(self, body: bytes) -> Any:
        try:
            root = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise _Fault("sender", f"malformed XML: {exc}") from None
        env = self.version.envelope_ns
        if root.tag != f"{{{env}}}Envelope":
            if etree.QName(root).localname == "Envelope":
                raise _Fault("VersionMismatch", f"this endpoint speaks the SOAP envelope {env}")
            raise _Fault("sender", "the request is not a SOAP envelope")
        body_el = root.find(f"{{{env}}}Body")
        children = [] if body_el is None else list(body_el)
        if len(children) != 1:
            raise _Fault("sender", "the SOAP Body must hold exactly one operation element")
        return children[0]

    def failure(self) -> Response:
        return _fault_response(self.version, _Fault("receiver", "服务暂时不可用 (simulated department failure)"))


def _text(parent: Any, name: str, namespace: str, required: bool = True) -> str:
    el = parent.find(f"{{{namespace}}}{name}")
    if el is None:
        el = parent.find(name)  # tolerate unqualified children
    if el is None or not (el.text or "").strip():
        if required:
            raise _Fault("sender", f"{etree.QName(parent).localname} needs {name}")
        return ""
    return str(el.text).strip().upper()


def _add(parent: Any, namespace: str, name: str, value: str | None) -> None:
    el = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if value is None:
        el.set(_XSI_NIL, "true")
    else:
        el.text = value


def _response(namespace: str, operation: str, found: bool) -> Any:
    response = etree.Element(f"{{{namespace}}}{operation}Response", nsmap={None: namespace})
    _add(response, namespace, "ResultCode", "00" if found else "01")
    _add(response, namespace, "ResultMessage", "查询成功" if found else "未查询到记录")
    return response


def _is_wsdl_fetch(scope: Scope) -> bool:
    return bool(scope["method"] == "GET")


def public_security_app(dataset: Dataset, behaviour: DepartmentBehaviour | None = None) -> Starlette:
    """The household registry (SOAP 1.1) over ``dataset``'s persons."""
    ns = HOUSEHOLD_NS

    def person_element(parent: Any, id_number: str) -> bool:
        person = dataset.persons_by_id.get(id_number)
        if person is None:
            return False
        el = etree.SubElement(parent, f"{{{ns}}}Person")
        for name, value in (
            ("IdCardNo", person.id_number),
            ("XM", person.name),
            ("XB", code_of(GENDER_CODES, person.gender)),
            ("MZ", person.ethnicity_code),
            ("MZMC", person.ethnicity),
            ("CSRQ", f"{person.birth_date:%Y%m%d}"),
            ("HJDZ", person.address),
            ("LXDH", person.phone),
            ("HH", person.household_number),
        ):
            _add(el, ns, name, value)
        return True

    def query_household_members(payload: Any) -> Any:
        id_number = _text(payload, "IdCardNo", ns)
        person = dataset.persons_by_id.get(id_number)
        response = _response(ns, "QueryHouseholdMembers", person is not None)
        if person is not None:
            _add(response, ns, "HH", person.household_number)
            members = etree.SubElement(response, f"{{{ns}}}Members")
            for member_id in dataset.household_members(id_number):
                member = etree.SubElement(members, f"{{{ns}}}Member")
                _add(member, ns, "IdCardNo", member_id)
                _add(member, ns, "XM", dataset.persons_by_id[member_id].name)
        return response

    def query_person(payload: Any) -> Any:
        id_number = _text(payload, "IdCardNo", ns)
        response = _response(ns, "QueryPerson", id_number in dataset.persons_by_id)
        person_element(response, id_number)
        return response

    def query_person_batch(payload: Any) -> Any:
        holder = payload.find(f"{{{ns}}}IdCardNos")
        if holder is None:
            raise _Fault("sender", "QueryPersonBatch needs IdCardNos")
        ids = [str(el.text or "").strip().upper() for el in holder.iterfind(f"{{{ns}}}IdCardNo")]
        if len(ids) > MAX_BATCH:
            raise _Fault("sender", f"at most {MAX_BATCH} IdCardNo per call, got {len(ids)}")
        response = _response(ns, "QueryPersonBatch", True)
        persons = etree.SubElement(response, f"{{{ns}}}Persons")
        for id_number in dict.fromkeys(ids):
            person_element(persons, id_number)
        return response

    counter = RequestCounter()
    endpoint = _SoapEndpoint(
        _SOAP11,
        ns,
        "public_security.wsdl",
        HOUSEHOLD_PATH,
        {
            "QueryPerson": query_person,
            "QueryPersonBatch": query_person_batch,
            "QueryHouseholdMembers": query_household_members,
        },
        counter,
    )
    return department_app(
        endpoint.routes(),
        behaviour=behaviour or DepartmentBehaviour(),
        counter=counter,
        failure=endpoint.failure,
        is_metadata=_is_wsdl_fetch,
    )


def civil_affairs_app(dataset: Dataset, behaviour: DepartmentBehaviour | None = None) -> Starlette:
    """The marriage registry (SOAP 1.2, one key per call) over ``dataset``'s persons."""
    ns = MARRIAGE_NS

    def query_marriage(payload: Any) -> Any:
        id_number = _text(payload, "IdCardNo", ns)
        person = dataset.persons_by_id.get(id_number)
        response = _response(ns, "QueryMarriage", person is not None)
        if person is not None:
            record = etree.SubElement(response, f"{{{ns}}}MarriageRecord")
            marriage = person.marriage
            _add(record, ns, "IdCardNo", person.id_number)
            _add(record, ns, "MarriageStatus", marriage.code)
            _add(record, ns, "RegisterDate", marriage.registered_on.isoformat() if marriage.registered_on else None)
            _add(record, ns, "Registry", marriage.registry)
            _add(record, ns, "SpouseIdCardNo", marriage.spouse_id)
        return response

    counter = RequestCounter()
    endpoint = _SoapEndpoint(
        _SOAP12, ns, "civil_affairs.wsdl", MARRIAGE_PATH, {"QueryMarriage": query_marriage}, counter
    )
    return department_app(
        endpoint.routes(),
        behaviour=behaviour or DepartmentBehaviour(),
        counter=counter,
        failure=endpoint.failure,
        is_metadata=_is_wsdl_fetch,
    )
