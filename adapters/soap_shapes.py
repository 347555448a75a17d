"""Record shapes from a WSDL's types, as zeep parsed them: what :meth:`adapters.soap.SoapAdapter.describe` answers.

An operation's output element is read the way zeep hands the answer back (an output element with exactly one child
and no attributes is unwrapped to that child), then followed along the query's dotted ``result`` path; the element
found there is one record. XSD types map to :data:`adapters.base.SHAPE_SCALARS`::

    xs:string, xs:normalizedString, xs:token (and any other simple type)   String
    xs:int, xs:integer, xs:long, xs:short (every integer type)             Int
    xs:decimal                                                             Decimal
    xs:float, xs:double                                                    Float
    xs:boolean                                                             Boolean
    xs:date                                                                Date
    xs:dateTime                                                            DateTime
    a complex type                                                         Object, with its fields

An element with ``maxOccurs`` above one is ``many``. A type that contains itself is an ``Object`` without fields
where it recurs.
"""

from __future__ import annotations

from typing import Any

from zeep.xsd import ComplexType, Element
from zeep.xsd.types import builtins

from adapters.base import FieldShape, RecordShape
from gateway.errors import ConfigError

__all__ = ["describe_output", "scalar_name"]

# Most derived first: xs:integer is an xs:decimal in zeep's classes.
_SCALARS: tuple[tuple[type, str], ...] = (
    (builtins.Boolean, "Boolean"),
    (builtins.DateTime, "DateTime"),
    (builtins.Date, "Date"),
    (builtins.Integer, "Int"),
    (builtins.Decimal, "Decimal"),
    (builtins.Float, "Float"),
    (builtins.Double, "Float"),
)


def scalar_name(xsd_type: Any) -> str:
    """The shape scalar for a zeep simple type (a restriction keeps its base's class); ``String`` otherwise.

    >>> scalar_name(builtins.Short()), scalar_name(builtins.Token()), scalar_name(builtins.Double())
    ('Int', 'String', 'Float')
    """
    for cls, name in _SCALARS:
        if isinstance(xsd_type, cls):
            return name
    return "String"


def describe_output(binding: Any, operation: str, result: str | None, *, where: str) -> RecordShape | None:
    """The shape of one record of ``operation``'s answer at the dotted ``result`` path.

    ``where`` is the query's configuration path (``sources.civil_affairs.queries.person``): a ``result`` path the
    WSDL's types do not have is a :class:`~gateway.errors.ConfigError` at ``<where>.result``, naming the elements
    there are.
    """
    output = binding.get(operation).output
    element = getattr(output, "body", None)
    if not isinstance(element, Element):
        return None  # no output, or an rpc-style message of several parts
    children = _children(element.type)
    if len(children) == 1 and not getattr(element.type, "attributes", None):
        element = next(iter(children.values()))  # zeep answers the only child, not the element around it
    walked: list[str] = []
    for part in result.split(".") if result else ():
        children = _children(element.type)
        if part not in children:
            at = ".".join(walked) or "the answer"
            known = ", ".join(children) or "none (a simple value)"
            raise ConfigError(f"{where}.result", f"{at} has no element {part!r} in the WSDL; it has: {known}")
        walked.append(part)
        element = children[part]
    if not isinstance(element.type, ComplexType):
        return None
    return _fields(element.type, frozenset())


def _children(xsd_type: Any) -> dict[str, Any]:
    """A complex type's named child elements and attributes (zeep serializes both into a record)."""
    if not isinstance(xsd_type, ComplexType):
        return {}
    found: dict[str, Any] = {name: el for name, el in xsd_type.elements if isinstance(el, Element)}
    for name, attribute in xsd_type.attributes:
        if name and name not in found:
            found[name] = attribute
    return found


def _fields(xsd_type: ComplexType, seen: frozenset[int]) -> dict[str, FieldShape]:
    seen = seen | {id(xsd_type)}
    return {name: _field(child, seen) for name, child in _children(xsd_type).items()}


def _field(node: Any, seen: frozenset[int]) -> FieldShape:
    max_occurs = getattr(node, "max_occurs", 1)
    many = max_occurs == "unbounded" or (isinstance(max_occurs, int) and max_occurs > 1)
    xsd_type = node.type
    if isinstance(xsd_type, ComplexType) and _children(xsd_type):
        if id(xsd_type) in seen:
            return FieldShape("Object", many=many, fields={}, description="recursive type")
        return FieldShape("Object", many=many, fields=_fields(xsd_type, seen))
    return FieldShape(scalar_name(xsd_type), many=many)
