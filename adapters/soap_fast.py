"""SOAP calls without zeep on the hot path: envelopes from templates and answers read by readers, both compiled at
:meth:`adapters.soap.SoapAdapter.open` from what zeep parsed of the WSDL.

zeep builds an lxml tree for every request and walks its XSD objects for every answer, about 1.5 ms of CPU per
call. A document/literal operation whose request template only places keys is the same envelope every time but for
the keys, so it is rendered by zeep once, with sentinel keys, and cut into byte segments::

    call = compile_call(client, binding, "QueryPerson", {"IdCardNo": "{key}"}, batch=False)
    call.envelope(["11010519491231002X"])   # b"<?xml ...><soap-env:Envelope ...>11010519491231002X</ns0:IdCardNo>..."
    call.read(response)                      # {"IdCardNo": "11010519491231002X", "XM": "张三", ...}

``read`` answers what ``zeep.helpers.serialize_object`` of zeep's own answer would (zeep's unwrapping of a
single child included): each leaf goes through its zeep type's ``pythonvalue``, so ``xs:decimal`` is a
:class:`~decimal.Decimal`, ``xs:date`` a :class:`~datetime.date`, an empty or nil element ``None``, an absent
repeated element ``[]``, and it raises what zeep raises (``XMLParseError`` for an unexpected element,
``TransportError`` for a body that is not XML, zeep's own :class:`~zeep.exceptions.Fault` for a SOAP fault, read
by the binding). An answer that is unusual at run time (an ``xsi:type``, a multipart/MTOM message, a DTD, a
processing instruction among elements, a root that is not the envelope) is handed, already received, to zeep.

What cannot be compiled raises :class:`NotCompiled` with the reason, and the adapter keeps zeep for that call:
rpc style, several message parts, SOAP headers in the answer, attributes, ``xsd:choice``/``all``/``any``/groups,
list or union types, simple content, SOAP-encoded arrays, WS-Addressing, WS-Security (its token changes per call),
an envelope that varies per call, or a request template that does not render the keys exactly as zeep does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import zeep.helpers
from lxml import etree
from zeep.exceptions import TransportError, XMLParseError
from zeep.wsdl.bindings.soap import SoapBinding
from zeep.wsdl.messages.soap import DocumentMessage
from zeep.wsdl.utils import etree_to_string
from zeep.xsd import ComplexType, Element
from zeep.xsd import Sequence as XsdSequence
from zeep.xsd.types import builtins
from zeep.xsd.types.simple import AnySimpleType

__all__ = ["CompiledCall", "NotCompiled", "compile_call"]

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
# Sentinel keys: ASCII letters and digits only, so no XSD string type changes them and no escaping touches them.
_SENTINELS = ("OwKeyQ7f3a", "OwKeyZ91c4", "OwKeyM05e8")
_SENTINEL = re.compile("|".join(_SENTINELS).encode())
# Keys rendered by zeep and by the template at open(); any difference keeps zeep for the call.
_PROBES = ("0", "11010519491231002X", "a<&>\"' b\t\n\r中文", "", "]]>")
# What lxml refuses to put in a text node.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class NotCompiled(Exception):
    """This call cannot be compiled faithfully; the message says why."""


class _Unusual(Exception):
    """Raised while reading an answer that zeep should read itself."""


def _escape(key: str) -> bytes:
    """``key`` as lxml writes it in a text node of a UTF-8 document."""
    if _NOT_XML.search(key):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    text = key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return text.encode("utf-8")


# -- answers -----------------------------------------------------------------------------------------------------


class _Field:
    """One child element of a sequence, matched the way zeep matches it (by local name; a differing namespace
    ends the element's run, strict mode)."""

    __slots__ = ("clark", "local", "many", "max", "name", "namespace", "optional", "read")

    def __init__(self, name: str, element: Element, read: Callable[[Any], Any]) -> None:
        self.name = name
        self.clark = element.qname.text
        self.namespace = element.qname.namespace or ""
        self.local = element.qname.localname
        self.many = element.accepts_multiple
        self.max = None if element.max_occurs == "unbounded" else int(element.max_occurs)
        self.optional = element.is_optional
        self.read = read


class _Record:
    """A complex type of one sequence of elements, read as zeep reads it into a record (a dict)."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: tuple[_Field, ...] = ()

    def __call__(self, element: Any, allow_none: bool = True) -> dict[str, Any] | None:
        if not self.fields:
            return None  # an empty complex type
        if _XSI_TYPE in element.attrib:
            raise _Unusual("xsi:type")
        children = list(element)
        if allow_none and not children and not len(element.attrib):
            return None
        values: dict[str, Any] = {}
        count = len(children)
        index = 0
        if children:
            for field in self.fields:
                found: list[Any] = []
                while index < count and (field.max is None or len(found) < field.max):
                    child = children[index]
                    tag = child.tag
                    if tag != field.clark:
                        if not isinstance(tag, str):
                            raise _Unusual("a processing instruction or entity among the elements")
                        namespace, _, local = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
                        if namespace and field.namespace and namespace != field.namespace:
                            break
                        if local != field.local:
                            if not found and not field.optional:
                                raise XMLParseError(f"Unexpected element {tag!r}, expected {field.clark!r}")  # type: ignore[no-untyped-call]
                            break
                    index += 1
                    found.append(field.read(child))
                values[field.name] = found if field.many else (found[0] if found else None)
                if index >= count:
                    break
            if index < count:
                raise XMLParseError(f"Unexpected element {children[index].tag!r}")  # type: ignore[no-untyped-call]
        for field in self.fields:  # what zeep's value class fills in for elements not read
            if field.name not in values:
                values[field.name] = [] if field.many else None
        return values


def _leaf(xsd_type: Any) -> Callable[[Any], Any]:
    convert = xsd_type.pythonvalue
    if type(xsd_type).pythonvalue is builtins.String.pythonvalue:
        convert = None

    def read(element: Any) -> Any:
        if _XSI_TYPE in element.attrib:
            raise _Unusual("xsi:type")
        text = element.text
        if text is None:
            return None
        if convert is None:
            return text
        try:
            return convert(text)
        except (TypeError, ValueError):  # zeep logs it and answers None; decimal's InvalidOperation goes through
            return None

    return read


def _reader(xsd_type: Any, seen: dict[int, _Record]) -> Callable[..., Any]:
    if isinstance(xsd_type, ComplexType):
        return _record(xsd_type, seen)
    if not isinstance(xsd_type, AnySimpleType) or type(xsd_type).pythonvalue is AnySimpleType.pythonvalue:
        raise NotCompiled(f"the answer has an element of type {type(xsd_type).__name__}")
    if type(xsd_type).parse_xmlelement is not AnySimpleType.parse_xmlelement:
        raise NotCompiled(f"the answer has a {type(xsd_type).__name__} (a list or union type)")
    return _leaf(xsd_type)


def _particle(particle: Any) -> str:
    """``an xsd:choice``, ``an xsd:any``, ``an xsd:group``, ``an xsd:all``."""
    return f"an xsd:{type(particle).__name__.lower()}"


def _record(xsd_type: ComplexType, seen: dict[int, _Record]) -> _Record:
    if id(xsd_type) in seen:  # a type that contains itself
        return seen[id(xsd_type)]
    record = seen[id(xsd_type)] = _Record()
    if xsd_type.attributes:
        raise NotCompiled("the answer has attributes")
    if getattr(xsd_type, "_array_type", None) is not None:
        raise NotCompiled("the answer has a SOAP-encoded array")
    nested = xsd_type.elements_nested
    if not nested:
        return record
    if len(nested) != 1 or type(nested[0][1]) is not XsdSequence:
        raise NotCompiled(f"the answer has {_particle(nested[0][1]) if len(nested) == 1 else 'several particles'}")
    sequence = nested[0][1]
    if sequence.max_occurs != 1 or sequence.min_occurs != 1:
        raise NotCompiled("the answer has a repeated or optional sequence")
    fields = []
    for name, element in sequence.elements_nested:
        if type(element) is not Element:
            raise NotCompiled(f"the answer has {_particle(element)} in a sequence")
        fields.append(_Field(name, element, _reader(element.type, seen)))
    record.fields = tuple(fields)
    return record


# -- calls -------------------------------------------------------------------------------------------------------


class CompiledCall:
    """One query's call of one operation: its envelope segments, HTTP headers, address and answer reader."""

    def __init__(
        self,
        *,
        operation: str,
        address: str,
        headers: dict[str, str],
        segments: tuple[bytes, ...],
        batch: bool,
        zeep_operation: Any,
        binding: Any,
        client: Any,
        transport: Any,
        part: _Record,
        unwrap: str | None,
    ) -> None:
        self.operation = operation
        self.address = address
        self.headers = headers
        self._segments = segments
        self._batch = batch
        self._operation = zeep_operation
        self._binding = binding
        self._client = client
        self._transport = transport
        self._part = part
        self._unwrap = unwrap
        namespace = binding.nsmap["soap-env"]
        self._envelope_tag = f"{{{namespace}}}Envelope"
        self._body_tag = f"{{{namespace}}}Body"
        self._fault_tag = f"{{{namespace}}}Fault"
        # as zeep.loader.parse_xml, strict: no comments, no entities resolved, nothing from the network
        self._parser = etree.XMLParser(remove_comments=True, resolve_entities=False, no_network=True)

    def envelope(self, keys: Sequence[str]) -> bytes:
        """The request envelope for ``keys`` (a batch call's keys, else one key)."""
        segments = self._segments
        if self._batch:
            first, between, last = segments
            return first + between.join(_escape(key) for key in keys) + last
        return _escape(keys[0]).join(segments)

    async def send(self, http: httpx.AsyncClient, keys: Sequence[str]) -> httpx.Response:
        return await http.post(self.address, content=self.envelope(keys), headers=self.headers)

    def read(self, response: httpx.Response) -> Any:
        """The answer as plain dicts, as zeep's path answers it; raises what zeep raises."""
        status = response.status_code
        content = response.content
        if not content:
            if status in (201, 202):
                return None
            if status != 200:
                message = f"Server returned HTTP status {status} (no content available)"
                raise TransportError(message, status_code=status)  # type: ignore[no-untyped-call]
        # zeep's get_media_type parses the header with the email package; only multipart/related matters here
        media_type = response.headers.get("Content-Type", "text/xml").partition(";")[0].strip().lower()
        if media_type == "multipart/related" or b"<!DOCTYPE" in content:
            return self._by_zeep(response)
        try:
            doc = etree.fromstring(content, self._parser)
        except etree.XMLSyntaxError as exc:
            message = f"Server returned response ({status}) with invalid XML: {exc}."
            raise TransportError(message, status_code=status, content=content) from exc  # type: ignore[no-untyped-call]
        body = doc.find(self._body_tag)
        if status != 200 or (body is not None and body.find(self._fault_tag) is not None):
            self._binding.process_error(doc, self._operation)  # zeep's own Fault, read by the binding
        if doc.tag != self._envelope_tag or body is None or not len(body) or not isinstance(body[0].tag, str):
            return self._deserialized_by_zeep(doc)
        part = body[0]
        if _XSI_TYPE in part.attrib:
            return self._deserialized_by_zeep(doc)
        try:
            value = self._part(part, allow_none=False)
        except _Unusual:
            return self._deserialized_by_zeep(doc)
        return self._unwrapped(value)

    def _unwrapped(self, value: dict[str, Any] | None) -> Any:
        # zeep: a message part of exactly one element answers that element's value, and if that is a record of
        # exactly one element (and no attributes), that element's value
        if value is None or len(value) != 1:
            return value if value else None
        (only,) = value.values()
        if self._unwrap is not None and isinstance(only, dict):
            return only[self._unwrap]
        return only

    def _deserialized_by_zeep(self, doc: Any) -> Any:
        return zeep.helpers.serialize_object(self._operation.process_reply(doc), dict)  # type: ignore[no-untyped-call]

    def _by_zeep(self, response: httpx.Response) -> Any:
        reply = self._binding.process_reply(self._client, self._operation, self._transport.new_response(response))
        return zeep.helpers.serialize_object(reply, dict)  # type: ignore[no-untyped-call]


def compile_call(
    client: Any,
    binding: Any,
    options: dict[str, Any],
    operation: str,
    render: Callable[[list[str]], Any],
    *,
    batch: bool,
) -> CompiledCall:
    """Compile one call of ``operation``; ``render(keys)`` fills the request template (``{key}`` with
    ``keys[0]``, or ``{keys}`` with ``keys`` for a batch) into the keyword arguments zeep takes.
    Raises :class:`NotCompiled` with the reason where only zeep's path is faithful."""
    if not isinstance(binding, SoapBinding):
        raise NotCompiled(f"{type(binding).__name__} is not a SOAP binding")
    if client.wsse is not None:
        raise NotCompiled("WS-Security adds a token of its own to every envelope")
    if client.plugins:
        raise NotCompiled("zeep plugins are configured")
    op = binding.get(operation)  # type: ignore[no-untyped-call]
    if op.style != "document" or not all(isinstance(m, DocumentMessage) for m in (op.input, op.output)):
        raise NotCompiled(f"{op.style} style")
    if op.abstract.wsa_action:
        raise NotCompiled("WS-Addressing adds a message id to every envelope")
    output = op.output
    if not isinstance(output.body, Element) or output._is_body_wrapped:
        raise NotCompiled("the answer has several message parts")
    if output.header is not None and output.header.type._element:
        raise NotCompiled("the answer has SOAP headers")
    if not isinstance(output.body.type, ComplexType):
        raise NotCompiled("the answer is a simple value")
    part = _record(output.body.type, {})
    unwrap = None
    if len(part.fields) == 1:
        only = output.body.type.elements[0][1].type
        if isinstance(only, ComplexType) and len(only.elements) == 1 and not only.attributes:
            unwrap = only.elements[0][0]

    def zeep_envelope(keys: list[str]) -> tuple[bytes, dict[str, str]]:
        envelope, headers = binding._create(operation, (), render(keys), client=client, options=options)  # type: ignore[no-untyped-call]
        return etree_to_string(envelope), dict(headers)  # type: ignore[no-untyped-call]

    try:
        sample, headers = zeep_envelope(list(_SENTINELS[:2] if batch else _SENTINELS[:1]))
    except Exception as exc:  # zeep cannot render sentinel keys (a typed key element): it renders every call
        raise NotCompiled(f"the request does not render as a template ({type(exc).__name__})") from None
    if zeep_envelope(list(_SENTINELS[:2] if batch else _SENTINELS[:1]))[0] != sample:
        raise NotCompiled("the envelope varies from call to call")
    segments = tuple(_SENTINEL.split(sample))
    if batch and len(segments) != 3:
        raise NotCompiled("the request places the keys other than once")
    call = CompiledCall(
        operation=operation,
        address=options["address"],
        headers=headers,
        segments=segments,
        batch=batch,
        zeep_operation=op,
        binding=binding,
        client=client,
        transport=client.transport,
        part=part,
        unwrap=unwrap,
    )
    probes = [[probe] for probe in _PROBES] + ([list(_PROBES[:2]), list(_PROBES[:3])] if batch else [])
    for keys in probes:
        if call.envelope(keys) != zeep_envelope(keys)[0]:
            raise NotCompiled("the request template does not render keys exactly as zeep does")
    return call
