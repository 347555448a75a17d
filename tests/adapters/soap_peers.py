"""Real SOAP departments for the SOAP adapter's tests.

* :func:`spyne_person_service`: a person register built with spyne, a third-party SOAP stack
  (document/literal, SOAP 1.1 or 1.2), served by wsgiref in a child process. spyne 2.14 imports only on
  Python < 3.12.
* :func:`soap12_person_app`: a hand-written SOAP 1.2 document/literal service (Starlette + lxml) with scripted
  misbehaviour: a fault, a slow answer, HTML error pages and a malformed body, each for its own key. Its
  envelopes and WSDL come from :mod:`tests.adapters.soap_service`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import importlib.util
import logging
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.keys import id_number_check_char
from tests.adapters.soap_service import SOAP12, SoapEnvelopes, document_literal_wsdl


def _id_number(first17: str) -> str:
    return first17 + id_number_check_char(first17)


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    sex: str
    born: dt.date
    capital: Decimal
    note: str | None


PEOPLE = {
    p.id_number: p
    for p in (
        Person("11010519491231002X", "张三", "2", dt.date(1949, 12, 31), Decimal("12345678901234.56"), None),
        Person(_id_number("31010119800101001"), "李四", "1", dt.date(1980, 1, 1), Decimal("0.10"), "迁出"),
        Person(_id_number("44030619951020002"), "王五", "2", dt.date(1995, 10, 20), Decimal("-7"), None),
    )
}
UNKNOWN_ID = _id_number("51010719700707007")

# Keys the SOAP 1.2 peer misbehaves for.
FAULT_ID = _id_number("99999919990909001")
SLOW_ID = _id_number("99999919990909002")
HTML_ERROR_ID = _id_number("99999919990909003")
MALFORMED_ID = _id_number("99999919990909004")
XHTML_ERROR_ID = _id_number("99999919990909005")
BAD_DECIMAL_ID = _id_number("99999919990909006")
NO_RECORD_ID = _id_number("99999919990909007")  # a fault meaning "no such person" (both peers)
NOT_FOUND_CODE = "NO_RECORD"  # the code in the SOAP 1.2 peer's no-record fault detail
NOT_FOUND_SUBCODE = "NoRecord"  # and its subcode
SLOW_SECONDS = 1.0

# -- spyne, a third-party SOAP stack -------------------------------------------------------------------------


SPYNE_SKIP_REASON = "spyne 2.14 (the third-party SOAP stack) imports only on Python < 3.12"


def spyne_available() -> bool:
    return sys.version_info < (3, 12) and importlib.util.find_spec("spyne") is not None


def _spyne_wsgi_app(protocol: str) -> Any:
    with warnings.catch_warnings():
        # spyne 2.14 trips Python 3.11's import machinery (through its vendored six) and imports ``cgi``.
        warnings.filterwarnings("ignore", message=r"_SixMetaPathImporter\.", category=ImportWarning)
        warnings.filterwarnings("ignore", message=r"'cgi' is deprecated", category=DeprecationWarning)
        from spyne import Application, Array, ComplexModel, Date, Fault, ServiceBase, Unicode, rpc
        from spyne import Decimal as SpyneDecimal
        from spyne.protocol.soap import Soap11, Soap12
        from spyne.server.wsgi import WsgiApplication

    tns = "urn:onewindow:test:person"

    class SpynePerson(ComplexModel):  # type: ignore[misc]
        __namespace__ = tns
        __type_name__ = "Person"
        IdCardNo = Unicode
        XM = Unicode
        XB = Unicode
        CSRQ = Date
        Capital = SpyneDecimal
        Note = Unicode(nillable=True)

    def as_spyne(person: Person | None) -> SpynePerson | None:
        if person is None:
            return None
        return SpynePerson(
            IdCardNo=person.id_number,
            XM=person.name,
            XB=person.sex,
            CSRQ=person.born,
            Capital=person.capital,
            Note=person.note,
        )

    class PersonService(ServiceBase):  # type: ignore[misc]
        @rpc(Unicode, _returns=SpynePerson)  # type: ignore[untyped-decorator]
        def QueryPerson(ctx: Any, IdCardNo: str) -> SpynePerson | None:
            if IdCardNo == NO_RECORD_ID:
                raise Fault("Client.NotFound", f"no person {IdCardNo}")
            return as_spyne(PEOPLE.get(IdCardNo))

        @rpc(Array(Unicode), _returns=Array(SpynePerson))  # type: ignore[untyped-decorator]
        def QueryPersonBatch(ctx: Any, IdCardNos: list[str] | None) -> list[SpynePerson | None]:
            return [as_spyne(PEOPLE[key]) for key in IdCardNos or [] if key in PEOPLE]

        @rpc(Unicode, _returns=SpynePerson)  # type: ignore[untyped-decorator]
        def QueryPersonBroken(ctx: Any, IdCardNo: str) -> SpynePerson:
            raise Fault("Server.Database", "household register database is down")

    soap = {"soap11": Soap11, "soap12": Soap12}[protocol]
    app = Application([PersonService], tns=tns, in_protocol=soap(validator="lxml"), out_protocol=soap())
    return WsgiApplication(app)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_spyne(protocol: str) -> None:
    """Serve the spyne register until stdin closes; print its WSDL URL first."""
    logging.getLogger("spyne").setLevel(logging.CRITICAL)  # a raised Fault is logged with its traceback
    server = make_server("127.0.0.1", 0, _spyne_wsgi_app(protocol), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_port}/?wsdl", flush=True)
    sys.stdin.read()
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def spyne_person_service(protocol: str = "soap11") -> Iterator[str]:
    """Run the spyne person register in a child process; yield its WSDL URL.

    A child process, not a thread: importing spyne leaves its six importer in ``sys.meta_path``, which turns
    every later failed import in the test process into an ``ImportWarning``.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.adapters.soap_peers", protocol],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        url = child.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"the spyne {protocol} service did not start (exit code {child.wait()})")
        yield url
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


# -- a hand-written SOAP 1.2 service -------------------------------------------------------------------------

TNS = "urn:onewindow:test:soap12"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_SCHEMA = """\
      <xs:complexType name="Person">
        <xs:sequence>
          <xs:element name="IdCardNo" type="xs:string"/>
          <xs:element name="XM" type="xs:string"/>
          <xs:element name="XB" type="xs:string"/>
          <xs:element name="CSRQ" type="xs:date"/>
          <xs:element name="Capital" type="xs:decimal"/>
          <xs:element name="Note" type="xs:string" nillable="true"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="GetPerson">
        <xs:complexType><xs:sequence>
          <xs:element name="IdCardNo" type="xs:string"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetPersonResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="Status" type="xs:string"/>
          <xs:element name="Person" type="tns:Person" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetPeople">
        <xs:complexType><xs:sequence>
          <xs:element name="IdCardNo" type="xs:string" maxOccurs="unbounded"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:simpleType name="Grade">
        <xs:restriction base="xs:token"><xs:enumeration value="A"/><xs:enumeration value="B"/></xs:restriction>
      </xs:simpleType>
      <xs:element name="GetAllowance">
        <xs:complexType><xs:sequence>
          <xs:element name="IdCardNo" type="xs:string"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetAllowanceResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="Allowance" minOccurs="0">
            <xs:complexType><xs:sequence>
              <xs:element name="IdCardNo" type="xs:string"/>
              <xs:element name="Grade" type="tns:Grade"/>
              <xs:element name="Months" type="xs:short"/>
              <xs:element name="Total" type="xs:long"/>
              <xs:element name="Count" type="xs:integer"/>
              <xs:element name="Amount" type="xs:decimal"/>
              <xs:element name="Rate" type="xs:float"/>
              <xs:element name="Ratio" type="xs:double"/>
              <xs:element name="Active" type="xs:boolean"/>
              <xs:element name="Paid" type="xs:dateTime"/>
              <xs:element name="Remark" type="xs:normalizedString"/>
              <xs:element name="Payment" maxOccurs="unbounded">
                <xs:complexType><xs:sequence>
                  <xs:element name="Month" type="xs:date"/>
                  <xs:element name="Sum" type="xs:decimal"/>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="GetPeopleResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="Count" type="xs:int"/>
          <xs:element name="Person" type="tns:Person" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence></xs:complexType>
      </xs:element>
"""
_ENVELOPES = SoapEnvelopes(SOAP12, {"p": TNS, "xsi": XSI})


def _q(name: str) -> str:
    return f"{{{TNS}}}{name}"


def _person_element(parent: etree._Element, person: Person) -> None:
    element = etree.SubElement(parent, _q("Person"))
    for name, value in (
        ("IdCardNo", person.id_number),
        ("XM", person.name),
        ("XB", person.sex),
        ("CSRQ", person.born.isoformat()),
        ("Capital", str(person.capital)),
    ):
        etree.SubElement(element, _q(name)).text = value
    note = etree.SubElement(element, _q("Note"))
    if person.note is None:
        note.set(f"{{{XSI}}}nil", "true")
    else:
        note.text = person.note


async def _misbehave(keys: list[str]) -> Response | None:
    if FAULT_ID in keys:
        return _ENVELOPES.fault("env:Receiver", f"register locked for {FAULT_ID}")
    if NO_RECORD_ID in keys:
        detail = etree.Element(_q("QueryError"))
        etree.SubElement(detail, _q("ErrorCode")).text = NOT_FOUND_CODE
        etree.SubElement(detail, _q("IdCardNo")).text = NO_RECORD_ID
        return _ENVELOPES.fault("env:Sender", "no such person", subcode=f"p:{NOT_FOUND_SUBCODE}", detail=detail)
    if HTML_ERROR_ID in keys:  # not well-formed XML
        return Response("<html><body>Internal Server Error<br></body></html>", 500, media_type="text/html")
    if XHTML_ERROR_ID in keys:  # well-formed XML, but no SOAP envelope
        return Response("<html><body><h1>Internal Server Error</h1></body></html>", 500, media_type="text/html")
    if MALFORMED_ID in keys:
        return Response(b"<env:Envelope xmlns:env='oops'><unclosed>", 200, media_type=SOAP12.media_type)
    if BAD_DECIMAL_ID in keys:
        answer = etree.Element(_q("GetPersonResponse"))
        etree.SubElement(answer, _q("Status")).text = "FOUND"
        _person_element(answer, Person(BAD_DECIMAL_ID, "赵六", "1", dt.date(1999, 9, 9), Decimal(0), None))
        answer.find(f"{_q('Person')}/{_q('Capital')}").text = "12,345.67"  # a locale's decimal, not xs:decimal
        return _ENVELOPES.answer(answer)
    if SLOW_ID in keys:
        await asyncio.sleep(SLOW_SECONDS)
    return None


def _allowance(key: str) -> etree._Element:
    """Every type the describe tests read, with a value: an allowance for anyone the register holds."""
    answer = etree.Element(_q("GetAllowanceResponse"))
    if key not in PEOPLE:
        return answer
    allowance = etree.SubElement(answer, _q("Allowance"))
    for name, text in (
        ("IdCardNo", key), ("Grade", "A"), ("Months", "12"), ("Total", "9000000000"), ("Count", "3"),
        ("Amount", "1234.50"), ("Rate", "0.5"), ("Ratio", "0.25"), ("Active", "true"),
        ("Paid", "2024-01-31T08:30:00"), ("Remark", "ok"),
    ):  # fmt: skip
        etree.SubElement(allowance, _q(name)).text = text
    for month in ("2024-01-01", "2024-02-01"):
        payment = etree.SubElement(allowance, _q("Payment"))
        etree.SubElement(payment, _q("Month")).text = month
        etree.SubElement(payment, _q("Sum")).text = "617.25"
    return answer


async def _wsdl(request: Request) -> Response:
    location = str(request.url_for("soap"))
    wsdl = document_literal_wsdl(
        SOAP12,
        tns=TNS,
        name="Register",
        schema=_SCHEMA,
        operations=("GetPerson", "GetPeople", "GetAllowance"),
        location=location,
    )
    return Response(wsdl, media_type="text/xml")


async def _soap(request: Request) -> Response:
    envelope = await _ENVELOPES.received(request)
    if isinstance(envelope, Response):
        return envelope
    call = envelope.find(f"{SOAP12.tag('Body')}/*")
    if call is None:
        return _ENVELOPES.fault("env:Sender", "empty Body")
    keys = [element.text or "" for element in call.iter(_q("IdCardNo"))]
    if (misbehaviour := await _misbehave(keys)) is not None:
        return misbehaviour
    if call.tag == _q("GetPerson"):
        answer = etree.Element(_q("GetPersonResponse"))
        person = PEOPLE.get(keys[0]) if keys else None
        etree.SubElement(answer, _q("Status")).text = "FOUND" if person else "NOT_FOUND"
        if person is not None:
            _person_element(answer, person)
    elif call.tag == _q("GetPeople"):
        answer = etree.Element(_q("GetPeopleResponse"))
        found = [PEOPLE[key] for key in keys if key in PEOPLE]
        etree.SubElement(answer, _q("Count")).text = str(len(found))
        for person in found:
            _person_element(answer, person)
    elif call.tag == _q("GetAllowance"):
        answer = _allowance(keys[0] if keys else "")
    else:
        return _ENVELOPES.fault("env:Sender", f"no operation {call.tag}")
    return _ENVELOPES.answer(answer)


def soap12_person_app() -> Starlette:
    """The SOAP 1.2 register: WSDL at ``/register?wsdl`` (any query), endpoint at ``/soap``."""
    return Starlette(routes=[Route("/register", _wsdl), Route("/soap", _soap, methods=["POST"], name="soap")])


def basic_auth_required(app: Any, users: dict[str, str], *, forbidden: frozenset[str] = frozenset()) -> Any:
    """``app`` behind HTTP Basic on every path (the WSDL and the endpoint alike), as a pure ASGI wrapper: 401 with
    a challenge for missing or wrong credentials, 403 for a known user in ``forbidden``."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, encoded = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or users.get(user) != password or not user:
            challenge = {"WWW-Authenticate": 'Basic realm="register"'}
            await Response("authentication required", 401, headers=challenge)(scope, receive, send)
        elif user in forbidden:
            await Response("not allowed", 403)(scope, receive, send)
        else:
            await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    _serve_spyne(sys.argv[1])
