"""Raw namespaces: a source's records as the department shapes them, typed from its own description.

With ``raw: {entity: Person}`` a source's queries are reachable on day one, before anyone maps them to unified
fields, as ``person { raw { housingFund { account { GRZH ZHYE } } } }``. Each query is one field of the catalog,
named ``raw.<source>.<query>``, so the policy (the source's ``raw.sharing``, owner and agreements), the audit
(the field name is what a record says was released), the cache and the fault behaviour are the built-in ones.
Its type comes from :meth:`adapters.base.Adapter.describe`: the WSDL's types, the OpenAPI document's schema, the
table's columns.

    >>> from adapters.base import FieldShape
    >>> field = raw_field("Person", "housing_fund", "account", {"ZHYE": FieldShape("Decimal"), "2X": FieldShape("Int")})
    >>> field.name, field.spec.type_name, sorted(field.spec.fields)
    ('raw.housing_fund.account', 'RawHousingFundAccount', ['ZHYE', '_2X'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.base import FieldShape, RecordShape
from gateway.config import FieldMap
from gateway.model import FieldSpec, ValueType

__all__ = ["RawField", "camel", "graphql_name", "pascal", "raw_field", "raw_field_name"]

_INVALID = re.compile(r"[^_0-9A-Za-z]")


def raw_field_name(source: str, query: str) -> str:
    """The catalog (and audit) name of a source's query read raw."""
    return f"raw.{source}.{query}"


def graphql_name(name: str) -> str:
    """A department's name made a GraphQL name: other characters become ``_``, a leading digit gets one."""
    cleaned = _INVALID.sub("_", name) or "_"
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    if cleaned.startswith("__"):
        cleaned = "f" + cleaned  # names starting with __ are GraphQL's own
    return cleaned


def pascal(name: str) -> str:
    """``housing_fund`` -> ``HousingFund``; ``GRZH`` stays ``GRZH``."""
    parts = [p for p in _INVALID.sub("_", name).split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "X"


def camel(name: str) -> str:
    """``housing_fund`` -> ``housingFund``."""
    cased = pascal(name)
    return cased[:1].lower() + cased[1:]


@dataclass(frozen=True)
class RawField:
    """One query of one source, read raw under an entity."""

    entity: str
    source: str
    query: str
    spec: FieldSpec
    fmap: FieldMap

    @property
    def name(self) -> str:
        return raw_field_name(self.source, self.query)


def raw_field(entity: str, source: str, query: str, shape: RecordShape, *, many: bool = False) -> RawField:
    """The catalog field for a query's records of the given shape, and the map that reads them as they are."""
    type_name = f"Raw{pascal(source)}{pascal(query)}"
    fields, maps = _object(type_name, shape)
    spec = FieldSpec(type_name=type_name, fields=fields, many=many)
    return RawField(entity, source, query, spec, FieldMap(fields=maps))


def _object(type_name: str, shape: RecordShape) -> tuple[dict[str, FieldSpec], dict[str, FieldMap]]:
    fields: dict[str, FieldSpec] = {}
    maps: dict[str, FieldMap] = {}
    for department_name, field_shape in shape.items():
        name = graphql_name(department_name)
        while name in fields:
            name += "_"
        fields[name], maps[name] = _field(f"{type_name}{pascal(name)}", department_name, field_shape)
    return fields, maps


def _field(type_name: str, department_name: str, shape: FieldShape) -> tuple[FieldSpec, FieldMap]:
    if shape.type == "Object" or shape.fields is not None:
        fields, maps = _object(type_name, shape.fields or {})
        return (
            FieldSpec(type_name=type_name, fields=fields, many=shape.many, description=shape.description),
            FieldMap(value=department_name, fields=maps),
        )
    value_type = ValueType(shape.type) if shape.type in _SCALARS else ValueType.STRING
    return (
        FieldSpec(type_name=value_type.value, value_type=value_type, many=shape.many, description=shape.description),
        FieldMap(value=department_name),
    )


_SCALARS: Mapping[str, ValueType] = {v.value: v for v in ValueType}
