"""The unified schema as an Apollo Federation v2 subgraph (``onewindow serve --subgraph``).

A province composes several city gateways into one supergraph with a federation router. Each city's subgraph is the
unified schema cut to what that city's sources provide, so that the router asks each city only for the fields it
holds:

- every entity of the model is keyed by its natural key -- ``Person @key(fields: "idNumber")``, ``LegalEntity
  @key(fields: "creditCode")``, ``Case @key(fields: "caseNumber")``, ``ServiceItem @key(fields: "code")`` -- and
  carries only the fields this configuration's sources provide (and the computed fields whose inputs they do);
- every type is ``@shareable``: a field two cities both provide (two replicas of the same registry) may be answered by
  either, and a field only one city provides is declared by that city alone;
- the root keeps the lookups by key (``person``, ``persons``, ``legalEntity``, ``case``, ``me``); what is one city's
  own -- case listings, the audit, forms, materials, ``viewer``, mutations, raw namespaces -- stays on that city's
  ordinary endpoint, and so does ``provenance``, which one city could answer only for its own fields.

``_entities`` reads an entity exactly as ``person(idNumber:)`` does, through the request's access: the same principal
(the router forwards the caller's ``Authorization``), sharing classes, masking and audit. The purpose reaches the
subgraphs that receive only a representation in the ``X-OneWindow-Purpose`` header, which the router forwards too::

    POST /graphql   X-OneWindow-Purpose: BJ2026...
    { _entities(representations: [{__typename: "Person", idNumber: "11010519491231002X"}]) { ... on Person { name } } }

reads that person for case ``BJ2026...``, checked against *this* person (the case must be theirs and handled by the
caller's department) and audited in this city under their ID number.

>>> from schema.query import build_schema
>>> sdl = str(build_schema(subgraph=Subgraph(frozenset({("Person", "name")}))))
>>> 'type Person @key(fields: "idNumber", resolvable: true) @shareable' in sdl, "maritalStatus" in sdl
(True, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import strawberry
from strawberry.federation.schema_directives import Key, Shareable
from strawberry.federation.types import FieldSet
from strawberry.types.base import get_object_definition

from auth.access import Purpose
from gateway.config import GatewayConfig
from gateway.errors import BadUserInput
from gateway.extensions.errors import LoggedSchema
from gateway.model import Catalog, EntitySpec, FieldSpec
from schema.context import GatewayInfo
from schema.types import SchemaTypes, build_types, selected_fields_of

__all__ = ["FEDERATION_VERSION", "PURPOSE_HEADER", "SUBGRAPH_ROOTS", "Subgraph", "SubgraphSchema"]

PURPOSE_HEADER = "X-OneWindow-Purpose"
"""The case number an entity is read for when a router asks this subgraph for it by representation."""
FEDERATION_VERSION: Final = "2.7"
"""The federation spec the subgraph links: ``@key`` and ``@shareable`` are all it uses (2.0), and 2.7 is composed by
every router of the last two years."""
SUBGRAPH_ROOTS = ("person", "persons", "legal_entity", "case", "me")
"""Root fields kept in a subgraph: lookups by key, which any city may begin and the router completes elsewhere."""
# Fields of every entity type that only make sense within one gateway.
_LOCAL_FIELDS = frozenset({"provenance"})


class SubgraphSchema(LoggedSchema, strawberry.federation.Schema):
    """strawberry's federation schema (``_service``, ``_entities``, ``@link``), logging errors like the gateway's."""


@dataclass(frozen=True)
class Subgraph:
    """What one gateway serves as a subgraph: the ``(entity, field)`` pairs its sources provide.

    >>> Subgraph(frozenset({("Person", "name")})).keeps(FieldSpec(computed="age", reads=("birthDate",)), "Person")
    False
    """

    provided: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, config: GatewayConfig) -> Subgraph:
        """The fields ``config``'s sources provide (``provides: {Person.name: ...}``)."""
        pairs = (target.partition(".") for src in config.sources.values() for target in src.provides)
        return cls(frozenset((entity, name) for entity, _, name in pairs))

    def keeps(self, spec: FieldSpec, entity: str) -> bool:
        """A computed field is kept when this gateway provides everything it reads."""
        return all((entity, read) in self.provided for read in spec.reads)

    def catalog(self, catalog: Catalog) -> Catalog:
        """``catalog`` with each entity cut to the fields this gateway provides or computes from them."""

        def cut(entity: EntitySpec) -> EntitySpec:
            fields = {
                name: spec
                for name, spec in entity.fields.items()
                if (entity.name, name) in self.provided or (spec.computed is not None and self.keeps(spec, entity.name))
            }
            return dataclasses.replace(entity, fields=fields)

        return dataclasses.replace(catalog, entities={name: cut(spec) for name, spec in catalog.entities.items()})

    def types(self, catalog: Catalog) -> SchemaTypes:
        """The schema's types for this subgraph: entities keyed and resolvable by reference, everything shareable."""
        types = build_types(self.catalog(catalog))
        for name, cls in types.entities.items():
            _federate_entity(cls, catalog.entities[name])
        for cls in types.objects.values():
            _add_directives(cls, Shareable())
        return types

    @property
    def root_directives(self) -> Sequence[object]:
        """On the root query: each lookup may be started in any city."""
        return (Shareable(),)

    def schema(self, *, query: type[Any], extensions: Sequence[Any], config: Any) -> strawberry.Schema:
        return SubgraphSchema(query=query, extensions=extensions, config=config, federation_version=FEDERATION_VERSION)


def _add_directives(cls: type[Any], *directives: object) -> None:
    # The types are made at run time, once per schema: their definitions are completed here, before the schema
    # reads them, rather than threading federation through the model's type builder.
    definition = get_object_definition(cls, strict=True)
    definition.directives = [*(definition.directives or ()), *directives]


def _federate_entity(cls: type[Any], entity: EntitySpec) -> None:
    definition = get_object_definition(cls, strict=True)
    definition.fields = [f for f in definition.fields if f.python_name not in _LOCAL_FIELDS]
    _add_directives(cls, Key(fields=FieldSet(entity.key)), Shareable())
    cls.resolve_reference = staticmethod(_reference_resolver(cls, entity))


def representation_purpose(info: GatewayInfo, applicant: str) -> Purpose | None:
    """The purpose sent in :data:`PURPOSE_HEADER`, for ``applicant``; ``None`` when the header is absent."""
    request = info.context.request
    value = request.headers.get(PURPOSE_HEADER) if request is not None else None
    if value is None:
        return None
    case_number = value.strip()
    if not case_number:
        raise BadUserInput(f"the {PURPOSE_HEADER} header must not be empty")
    return Purpose(case_number, applicant)


def _reference_resolver(cls: type[Any], entity: EntitySpec) -> Any:
    """``_entities`` for one entity type: the key validated as a root lookup would, then the entity read under the
    forwarded purpose (a case is its own purpose, as in ``case(caseNumber:)``)."""

    def resolve_reference(info: GatewayInfo, **representation: Any) -> Any:
        given = representation.get(entity.key)
        if not isinstance(given, str):
            raise BadUserInput(f"a {entity.name} representation needs its key {entity.key} as a string")
        key = entity.parse_key(given)
        purpose = None if entity.name == "Case" else representation_purpose(info, key)
        # The router sent the key: echoing it back discloses nothing (as for a root lookup).
        return cls(key=key, requested=selected_fields_of(info), purpose=purpose, given=True)

    return resolve_reference
