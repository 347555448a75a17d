"""What the hand-written SOAP departments share: envelopes on the wire and a document/literal WSDL.

SOAP 1.1 and 1.2 differ in the envelope's namespace and media type, the WSDL binding's namespace and the shape of a
fault; :class:`SoapVersion` holds those differences and :class:`SoapEnvelopes` writes the rest once::

    envelopes = SoapEnvelopes(SOAP12, {"p": "urn:example"})
    envelope = await envelopes.received(request)
    if isinstance(envelope, Response):  # not a SOAP 1.2 envelope: the fault or error that says so
        return envelope
    return envelopes.answer(etree.Element("{urn:example}Answer"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["SOAP11", "SOAP12", "SoapEnvelopes", "SoapVersion", "document_literal_wsdl"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@dataclass(frozen=True)
class SoapVersion:
    """One SOAP version's names: ``prefix`` is the one the envelope declares for ``namespace``, so fault codes read
    ``env:Sender`` (1.2) or ``soap:Client`` (1.1)."""

    number: str
    namespace: str
    prefix: str
    media_type: str
    sender: str  # the fault code for a message the sender got wrong
    wsdl_binding: str  # the namespace of the WSDL binding extension elements

    def tag(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"


SOAP11 = SoapVersion(
    number="1.1",
    namespace="http://schemas.xmlsoap.org/soap/envelope/",
    prefix="soap",
    media_type="text/xml",
    sender="soap:Client",
    wsdl_binding="http://schemas.xmlsoap.org/wsdl/soap/",
)
SOAP12 = SoapVersion(
    number="1.2",
    namespace="http://www.w3.org/2003/05/soap-envelope",
    prefix="env",
    media_type="application/soap+xml",
    sender="env:Sender",
    wsdl_binding="http://schemas.xmlsoap.org/wsdl/soap12/",
)


@dataclass(frozen=True)
class SoapEnvelopes:
    """A service's envelopes in one SOAP ``version``, declaring ``namespaces`` (prefix to URI) besides the
    envelope's own: the prefixes its answers and fault codes (``wsse:FailedAuthentication``) use."""

    version: SoapVersion
    namespaces: Mapping[str, str] = field(default_factory=dict)

    async def received(self, request: Request) -> etree._Element | Response:
        """The request's envelope, parsed without entities or network access; or, for a request that is not one,
        the answer: 415 for another media type, a sender fault for a body that is not XML, and a
        ``VersionMismatch`` fault for another version's envelope."""
        version = self.version
        media_type = request.headers.get("content-type", "").split(";")[0].strip()
        if media_type != version.media_type:
            return Response(f"SOAP {version.number} wants {version.media_type}, not {media_type!r}", 415)
        try:
            envelope = etree.fromstring(await request.body(), _PARSER)
        except etree.XMLSyntaxError as exc:
            return self.fault(version.sender, f"not XML: {exc}")
        if envelope.tag != version.tag("Envelope"):
            return self.fault(
                f"{version.prefix}:VersionMismatch", f"expected a SOAP {version.number} envelope, got {envelope.tag}"
            )
        return envelope

    def envelope(self, body_child: etree._Element) -> bytes:
        envelope = etree.Element(
            self.version.tag("Envelope"), nsmap={self.version.prefix: self.version.namespace, **self.namespaces}
        )
        etree.SubElement(envelope, self.version.tag("Body")).append(body_child)
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))

    def answer(self, body_child: etree._Element, status: int = 200) -> Response:
        return Response(self.envelope(body_child), status, media_type=f"{self.version.media_type}; charset=utf-8")

    def fault(
        self,
        code: str,
        reason: str,
        status: int = 500,
        *,
        subcode: str | None = None,
        detail: etree._Element | None = None,
    ) -> Response:
        """A fault with ``code`` (a prefixed QName) and ``reason``, in the version's shape: ``faultcode`` and
        ``faultstring`` in 1.1, ``Code/Value`` and ``Reason/Text`` in 1.2; a 1.2 fault may add a ``subcode`` (a
        prefixed QName) and either version a ``detail`` element."""
        tag = self.version.tag
        fault = etree.Element(tag("Fault"))
        if self.version is SOAP11:
            etree.SubElement(fault, "faultcode").text = code
            etree.SubElement(fault, "faultstring").text = reason
            if detail is not None:
                etree.SubElement(fault, "detail").append(detail)
        else:
            code_element = etree.SubElement(fault, tag("Code"))
            etree.SubElement(code_element, tag("Value")).text = code
            if subcode is not None:
                etree.SubElement(etree.SubElement(code_element, tag("Subcode")), tag("Value")).text = subcode
            text = etree.SubElement(etree.SubElement(fault, tag("Reason")), tag("Text"))
            text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
            text.text = reason
            if detail is not None:
                etree.SubElement(fault, tag("Detail")).append(detail)
        return self.answer(fault, status)


def document_literal_wsdl(
    version: SoapVersion, *, tns: str, name: str, schema: str, operations: Sequence[str], location: str
) -> str:
    """A WSDL 1.1 document/literal service ``name`` at ``location``: each operation ``Op`` takes the element
    ``tns:Op`` and answers ``tns:OpResponse``, both declared in ``schema`` (the body of an ``xs:schema``)."""
    binding = f"{name}Soap{version.number.replace('.', '')}"
    messages = "".join(
        f'  <wsdl:message name="{op}In"><wsdl:part name="parameters" element="tns:{op}"/></wsdl:message>\n'
        f'  <wsdl:message name="{op}Out"><wsdl:part name="parameters" element="tns:{op}Response"/></wsdl:message>\n'
        for op in operations
    )
    abstract = "".join(
        f'    <wsdl:operation name="{op}">\n'
        f'      <wsdl:input message="tns:{op}In"/><wsdl:output message="tns:{op}Out"/>\n'
        "    </wsdl:operation>\n"
        for op in operations
    )
    bound = "".join(
        f'    <wsdl:operation name="{op}">\n'
        f'      <soap:operation soapAction="{tns}/{op}"/>\n'
        '      <wsdl:input><soap:body use="literal"/></wsdl:input>\n'
        '      <wsdl:output><soap:body use="literal"/></wsdl:output>\n'
        "    </wsdl:operation>\n"
        for op in operations
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="{version.wsdl_binding}"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{tns}" targetNamespace="{tns}">
  <wsdl:types>
    <xs:schema targetNamespace="{tns}" elementFormDefault="qualified">
{schema}    </xs:schema>
  </wsdl:types>
{messages}  <wsdl:portType name="{name}PortType">
{abstract}  </wsdl:portType>
  <wsdl:binding name="{binding}" type="tns:{name}PortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
{bound}  </wsdl:binding>
  <wsdl:service name="{name}">
    <wsdl:port name="{binding}Port" binding="tns:{binding}"><soap:address location="{location}"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""
