"""The unified model, declared once: entities, their keys and fields, objects, enums, unions, code tables.

One declaration is the single source from which the GraphQL types (:mod:`schema.types`), the catalog that checks
a configuration's ``provides`` (:mod:`gateway.validation`), the mapping of department records (:mod:`gateway.mapping`)
and the policy's field list (:mod:`auth.policy`) are built at start-up. The built-in model (``schema/builtin.yaml``:
Person, LegalEntity, Case, ServiceItem, Licence, ...) is declared the same way a deployment declares its additions
in the ``model:`` section of its configuration::

    model:
      code_tables:
        gjj_status: {"0": NORMAL, "1": SEALED, "9": CLOSED}
      enums:
        HousingFundStatus: {description: 住房公积金账户状态, code_table: gjj_status}
      objects:
        HousingFund:
          fields: {balance: {type: Decimal}, status: {type: HousingFundStatus}}
      entities:
        Person:                                  # an existing entity: new fields only
          fields: {housingFund: {type: HousingFund}, spouse: {type: Person}}
        RealEstateCertificate:                   # a new keyed entity
          key: {name: certificateNumber}
          fields: {area: {type: Decimal}}

A field's ``type`` is a scalar (``String Int Float Boolean Date DateTime Decimal IdNumber CreditCode``), an enum,
an object, an entity (a relation: the source gives the other entity's key) or a union, optionally ``[T]`` for a list.

    >>> fields = {"area": {"type": "Decimal"}, "owners": {"type": "[Parcel]"}}
    >>> parcel = {"key": {"name": "parcelNumber"}, "fields": fields}
    >>> catalog = build_catalog([("model", ModelDeclaration.model_validate({"entities": {"Parcel": parcel}}))])
    >>> catalog["Parcel"].fields["owners"].ref, catalog["Parcel"].fields["owners"].many
    ('Parcel', True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Literal

from pydantic import Field, model_validator

from gateway.durations import Strict
from gateway.errors import ConfigError
from gateway.keys import parse_credit_code, parse_id_number

__all__ = [
    "SCALARS",
    "Catalog",
    "EntitySpec",
    "EnumDeclaration",
    "FieldDeclaration",
    "FieldSpec",
    "ModelDeclaration",
    "ObjectSpec",
    "SharingClass",
    "UnionSpec",
    "ValueType",
    "build_catalog",
]

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_TYPE = re.compile(r"^(\[)?\s*([_A-Za-z][_0-9A-Za-z]*)\s*(\])?$")


class SharingClass(StrEnum):
    """Who may receive a field: anyone allowed the entity, only with an agreement and purpose, or nobody else."""

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NOT_SHARED = "not_shared"


class ValueType(StrEnum):
    """The scalar types of the model, by their GraphQL names."""

    STRING = "String"
    INT = "Int"
    FLOAT = "Float"
    BOOL = "Boolean"
    DATE = "Date"
    DATETIME = "DateTime"
    DECIMAL = "Decimal"
    ID_NUMBER = "IdNumber"
    CREDIT_CODE = "CreditCode"


SCALARS = frozenset(ValueType)

# How a key of each key type is checked before any department is asked.
_KEY_PARSERS: dict[str, Callable[[str], str]] = {
    "String": str.strip,
    "IdNumber": parse_id_number,
    "CreditCode": parse_credit_code,
}


# -- the declaration, as written ---------------------------------------------------------------------------------


class FieldDeclaration(Strict):
    """One field: its type (``Decimal``, ``HousingFund``, ``[Licence]``), a description, its default sharing class
    (providers may state their own), and for built-in derived fields the name of the code that computes them."""

    type: str
    description: str = ""
    sharing: SharingClass | None = None
    computed: str | None = None
    # A computed field is released only if every field it reads is.
    reads: list[str] = Field(default_factory=list)


class KeyDeclaration(Strict):
    """An entity's natural key: its field name and type (``IdNumber`` and ``CreditCode`` are checked)."""

    name: str
    type: Literal["String", "IdNumber", "CreditCode"] = "String"
    description: str = ""


class EntityDeclaration(Strict):
    """A keyed entity, or new fields for an existing one (then without ``key``). ``personal``: its disclosure is
    personal data, audited per key (a person's; new entities are personal unless they say)."""

    description: str = ""
    key: KeyDeclaration | None = None
    personal: bool | None = None
    fields: dict[str, FieldDeclaration] = Field(default_factory=dict)


class ObjectDeclaration(Strict):
    """A nested object (no key of its own): a field's value made of sub-fields."""

    description: str = ""
    fields: dict[str, FieldDeclaration] = Field(min_length=1)


class EnumDeclaration(Strict):
    """An enum: its ``values``, or the unified names of a code table (``code_table``)."""

    description: str = ""
    values: list[str] | None = None
    code_table: str | None = None

    @model_validator(mode="after")
    def _one_source_of_values(self) -> EnumDeclaration:
        if (self.values is None) == (self.code_table is None):
            raise ValueError("give either 'values' or 'code_table'")
        return self


class UnionDeclaration(Strict):
    """One of several entities, told apart by a kind code (``PERSON: Person``)."""

    description: str = ""
    members: dict[str, str] = Field(min_length=2)


class ModelDeclaration(Strict):
    """The ``model:`` section of a configuration (and the whole of ``schema/builtin.yaml``)."""

    default_sharing: SharingClass = SharingClass.CONDITIONAL
    code_tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    enums: dict[str, EnumDeclaration] = Field(default_factory=dict)
    objects: dict[str, ObjectDeclaration] = Field(default_factory=dict)
    unions: dict[str, UnionDeclaration] = Field(default_factory=dict)
    entities: dict[str, EntityDeclaration] = Field(default_factory=dict)


# -- the resolved model ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One resolved field: a scalar (``value_type``), an enum, an object with sub-fields, or a reference to an
    entity or union (``ref``); ``many`` for a list. ``type_name`` is the GraphQL type name."""

    type_name: str = "String"
    value_type: ValueType | None = None
    enum: type[Enum] | None = None
    fields: Mapping[str, FieldSpec] | None = None
    ref: str | None = None
    many: bool = False
    description: str = ""
    sharing: SharingClass | None = None
    computed: str | None = None
    reads: tuple[str, ...] = ()
    # For a reference to a union: its kind codes and the entity each names.
    members: Mapping[str, str] | None = None

    @property
    def is_object(self) -> bool:
        return self.fields is not None


@dataclass(frozen=True)
class EntitySpec:
    """An entity of the domain, keyed by one natural key."""

    name: str
    key: str
    parse_key: Callable[[str], str]
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    key_type: str = "String"
    description: str = ""
    key_description: str = ""
    personal: bool = False


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    description: str = ""


@dataclass(frozen=True)
class UnionSpec:
    name: str
    members: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class Catalog(Mapping[str, EntitySpec]):
    """The whole model, resolved: a mapping of entity name to :class:`EntitySpec`, with the objects, enums, unions
    and code tables beside it."""

    entities: Mapping[str, EntitySpec]
    objects: Mapping[str, ObjectSpec] = field(default_factory=dict)
    enums: Mapping[str, type[Enum]] = field(default_factory=dict)
    enum_descriptions: Mapping[str, str] = field(default_factory=dict)
    unions: Mapping[str, UnionSpec] = field(default_factory=dict)
    code_tables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Enums given as code (the built-in ones); the others are made from the declaration.
    declared_enums: frozenset[str] = frozenset()

    def __getitem__(self, name: str) -> EntitySpec:
        return self.entities[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entities)

    def __len__(self) -> int:
        return len(self.entities)

    def field(self, entity: str, name: str) -> FieldSpec | None:
        spec = self.entities.get(entity)
        return None if spec is None else spec.fields.get(name)

    @property
    def personal(self) -> frozenset[str]:
        """Entities whose disclosure is personal data, audited per key."""
        return frozenset(name for name, spec in self.entities.items() if spec.personal)

    def union_kinds(self, name: str) -> Mapping[str, str]:
        """A union's kind codes and the entity each names (``PERSON`` -> ``Person``)."""
        return self.unions[name].members


def build_catalog(
    layers: Sequence[tuple[str, ModelDeclaration]],
    *,
    enums: Mapping[str, type[Enum]] | None = None,
    reserved: frozenset[str] = frozenset(),
) -> Catalog:
    """Resolve declarations laid one over another (the built-in model, then a deployment's ``model:``) into one
    :class:`Catalog`. Each layer is ``(path, declaration)``: errors name ``path.entities.Person.fields.x.type``.
    ``enums`` are enums given as code (their values and descriptions are theirs); ``reserved`` are type names the
    schema uses for itself. Only the first layer may declare computed fields."""
    return _Builder(dict(enums or {}), reserved).build(layers)


class _Builder:
    def __init__(self, enums: dict[str, type[Enum]], reserved: frozenset[str]) -> None:
        self.enums = enums
        self.code_enums = frozenset(enums)
        self.enum_descriptions: dict[str, str] = {}
        self.reserved = reserved | SCALARS
        self.code_tables: dict[str, dict[str, str]] = {}
        self.objects: dict[str, tuple[str, ObjectDeclaration, SharingClass]] = {}
        self.unions: dict[str, tuple[str, UnionDeclaration]] = {}
        # entity -> (path of its key declaration, key, description, personal); fields: entity -> name -> (path, decl)
        self.entities: dict[str, tuple[KeyDeclaration, str, bool]] = {}
        self.entity_fields: dict[str, dict[str, tuple[str, FieldDeclaration, SharingClass]]] = {}

    def build(self, layers: Sequence[tuple[str, ModelDeclaration]]) -> Catalog:
        for index, (path, declaration) in enumerate(layers):
            self._collect(path, declaration, first=index == 0)
        objects = {name: self._object(name) for name in self.objects}
        entities = {name: self._entity(name) for name in self.entities}
        unions = {
            name: UnionSpec(name, dict(decl.members), decl.description) for name, (_, decl) in self.unions.items()
        }
        return Catalog(
            entities=entities,
            objects=objects,
            enums=dict(self.enums),
            enum_descriptions=dict(self.enum_descriptions),
            unions=unions,
            code_tables={k: dict(v) for k, v in self.code_tables.items()},
            declared_enums=frozenset(self.enums) - self.code_enums,
        )

    # -- collecting names, layer by layer ------------------------------------------------------------------------

    def _new_type(self, path: str, name: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(path, f"{name!r} is not a GraphQL name (letters, digits, _; not starting with a digit)")
        if name in self.reserved:
            raise ConfigError(path, f"{name!r} is a type of the schema itself; choose another name")
        taken = name in self.enums or name in self.objects or name in self.unions or name in self.entities
        if taken:
            raise ConfigError(path, f"a type named {name!r} is already declared")

    def _collect(self, path: str, declaration: ModelDeclaration, *, first: bool) -> None:
        for name, table in declaration.code_tables.items():
            if name in self.code_tables:
                raise ConfigError(f"{path}.code_tables.{name}", "a code table of this name is already declared")
            self.code_tables[name] = table
        for name, enum_decl in declaration.enums.items():
            where = f"{path}.enums.{name}"
            self._new_type(where, name)
            self.enums[name] = self._enum(where, name, enum_decl)
            self.enum_descriptions[name] = enum_decl.description
        for name, object_decl in declaration.objects.items():
            self._new_type(f"{path}.objects.{name}", name)
            self.objects[name] = (f"{path}.objects.{name}", object_decl, declaration.default_sharing)
        for name, union_decl in declaration.unions.items():
            self._new_type(f"{path}.unions.{name}", name)
            self.unions[name] = (f"{path}.unions.{name}", union_decl)
        for name, entity_decl in declaration.entities.items():
            where = f"{path}.entities.{name}"
            if name in self.entities:
                if entity_decl.key is not None:
                    raise ConfigError(f"{where}.key", f"{name} exists already, with key {self.entities[name][0].name}")
            else:
                if entity_decl.key is None:
                    raise ConfigError(f"{where}.key", f"required: {name} is a new entity and needs its key")
                self._new_type(where, name)
                personal = True if entity_decl.personal is None else entity_decl.personal
                self.entities[name] = (entity_decl.key, entity_decl.description, personal)
                self.entity_fields[name] = {}
            key_name = self.entities[name][0].name
            fields = self.entity_fields[name]
            for field_name, field_decl in entity_decl.fields.items():
                fwhere = f"{where}.fields.{field_name}"
                if not _NAME.match(field_name):
                    raise ConfigError(fwhere, f"{field_name!r} is not a GraphQL name")
                if field_name in fields or field_name in (key_name, "provenance", "raw"):
                    raise ConfigError(fwhere, f"{name} already has a field {field_name!r}")
                if field_decl.computed is not None and not first:
                    raise ConfigError(f"{fwhere}.computed", "computed fields are built in; provide the field instead")
                fields[field_name] = (fwhere, field_decl, declaration.default_sharing)
        for where, union_decl in self.unions.values():
            for kind, member in union_decl.members.items():
                if member not in self.entities:
                    raise ConfigError(f"{where}.members.{kind}", f"{member!r} is not an entity")

    def _enum(self, path: str, name: str, decl: EnumDeclaration) -> type[Enum]:
        if decl.code_table is not None:
            table = self.code_tables.get(decl.code_table)
            if table is None:
                known = ", ".join(self.code_tables) or "none"
                raise ConfigError(f"{path}.code_table", f"no code table {decl.code_table!r}; declared: {known}")
            values = list(dict.fromkeys(table.values()))
        else:
            assert decl.values is not None
            values = list(dict.fromkeys(decl.values))
        for value in values:
            if not _NAME.match(value):
                raise ConfigError(path, f"{value!r} is not a GraphQL enum value (letters, digits, _)")
        if not values:
            raise ConfigError(path, "an enum needs at least one value")
        return Enum(name, {value: value for value in values})  # type: ignore[return-value]

    # -- resolving types -----------------------------------------------------------------------------------------

    def _field(self, path: str, decl: FieldDeclaration, default_sharing: SharingClass, *, top: bool) -> FieldSpec:
        match = _TYPE.match(decl.type)
        if match is None or bool(match[1]) != bool(match[3]):
            raise ConfigError(f"{path}.type", f"{decl.type!r} is not a type: write Name or [Name]")
        name, many = match[2], bool(match[1])
        common = {
            "many": many,
            "description": decl.description,
            "computed": decl.computed,
            "reads": tuple(decl.reads),
            "type_name": name,
        }
        sharing = decl.sharing or default_sharing
        if name in SCALARS:
            return FieldSpec(value_type=ValueType(name), sharing=sharing, **common)  # type: ignore[arg-type]
        if name in self.enums:
            return FieldSpec(enum=self.enums[name], sharing=sharing, **common)  # type: ignore[arg-type]
        if name in self.objects:
            return FieldSpec(fields=self._object(name).fields, sharing=sharing, **common)  # type: ignore[arg-type]
        if name in self.entities or name in self.unions:
            if not top:
                raise ConfigError(f"{path}.type", f"a relation to {name} is a field of an entity, not of an object")
            members = dict(self.unions[name][1].members) if name in self.unions else None
            return FieldSpec(ref=name, sharing=sharing, members=members, **common)  # type: ignore[arg-type]
        known = sorted({*SCALARS, *self.enums, *self.objects, *self.entities, *self.unions})
        raise ConfigError(f"{path}.type", f"unknown type {name!r}; known: {', '.join(known)}")

    def _object(self, name: str, seen: tuple[str, ...] = ()) -> ObjectSpec:
        path, decl, sharing = self.objects[name]
        if name in seen:
            raise ConfigError(path, f"object {name} contains itself ({' > '.join((*seen, name))})")
        fields: dict[str, FieldSpec] = {}
        for field_name, field_decl in decl.fields.items():
            fpath = f"{path}.fields.{field_name}"
            if not _NAME.match(field_name):
                raise ConfigError(fpath, f"{field_name!r} is not a GraphQL name")
            inner = _TYPE.match(field_decl.type)
            if inner is not None and inner[2] in self.objects:
                self._object(inner[2], (*seen, name))  # cycle check
            fields[field_name] = self._field(fpath, field_decl, sharing, top=False)
        return ObjectSpec(name, fields, decl.description)

    def _entity(self, name: str) -> EntitySpec:
        key, description, personal = self.entities[name]
        fields = {
            field_name: self._field(path, decl, sharing, top=True)
            for field_name, (path, decl, sharing) in self.entity_fields[name].items()
        }
        for path, decl, _ in self.entity_fields[name].values():
            for read in decl.reads:
                if read not in fields:
                    raise ConfigError(f"{path}.reads", f"{name} has no field {read!r}")
        return EntitySpec(
            name=name,
            key=key.name,
            parse_key=_KEY_PARSERS[key.type],
            fields=fields,
            key_type=key.type,
            description=description,
            key_description=key.description,
            personal=personal,
        )
