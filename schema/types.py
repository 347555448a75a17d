"""Object types of the unified schema, generated from the model: persons, legal entities, cases, licences, the
entities and objects a configuration adds, raw namespaces, and where each value came from.

Nothing here lists a field: :func:`build_types` walks the :class:`~gateway.model.Catalog` (the built-in model of
``schema/builtin.yaml`` with the configuration's ``model:`` laid over it) and makes one strawberry type per entity,
object, enum and union. Every provided field is resolved through the request's access to the sources
(``info.context.access``), never by calling a department directly. An entity type carries only its key; its fields
are looked up when asked for, so a query selecting ``name`` and ``maritalStatus`` calls just the household and
marriage registries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Optional, Union

import strawberry
from cachetools import LRUCache
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLTypeResolver,
    GraphQLUnionType,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from auth.access import Access, Purpose, ResponsePath
from gateway.errors import AuditUnavailable, Forbidden, SourceError
from gateway.mapping import EntityKey
from gateway.model import Catalog, EntitySpec, FieldSpec, ValueType
from gateway.raw import RawField, camel, pascal
from schema.context import GatewayContext, GatewayInfo
from schema.enums import CaseStatus, WarningState
from schema.scalars import CreditCode, IdNumber

__all__ = [
    "FieldProvenance",
    "RawInfo",
    "SchemaTypes",
    "build_types",
    "install_plain_resolvers",
    "prefetch",
    "read_ahead",
    "requested_fields",
    "selected_fields_of",
    "selections_of",
]

# A case whose remaining time is at most this share of its whole handling window (and at least a day) is WARNING.
WARNING_SHARE = 0.2
WARNING_MINIMUM = dt.timedelta(days=1)
_CLOSED = {CaseStatus.APPROVED, CaseStatus.REJECTED, CaseStatus.COMPLETED}

_SCALAR_TYPES: Mapping[ValueType, Any] = {
    ValueType.STRING: str,
    ValueType.INT: int,
    ValueType.FLOAT: float,
    ValueType.BOOL: bool,
    ValueType.DATE: dt.date,
    ValueType.DATETIME: dt.datetime,
    ValueType.DECIMAL: Decimal,
    ValueType.ID_NUMBER: IdNumber,
    ValueType.CREDIT_CODE: CreditCode,
}
RawInfo = GraphQLResolveInfo[GatewayContext]
"""graphql-core's own resolve info, which a plain resolver (:func:`install_plain_resolvers`) receives."""
_KEY_TYPES: Mapping[str, Any] = {"String": str, "IdNumber": IdNumber, "CreditCode": CreditCode}


def requested_fields(selections: list[Selection]) -> frozenset[str]:
    """The field names selected on an object, through fragments and inline fragments."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        elif isinstance(selection, FragmentSpread | InlineFragment):
            names |= requested_fields(selection.selections)
    return frozenset(names)


@dataclass(frozen=True)
class _Shape:
    """What a place in a document selects: the field nodes it was read from (kept, so that their identities, the
    cache's key, stay theirs), the selections, and the names of the fields among them."""

    nodes: tuple[FieldNode, ...]
    selections: list[Selection]
    requested: frozenset[str]


# The shapes of the places in the parsed documents, by their field nodes' identities. A parsed document is the same
# object on every request while gateway.extensions.documents keeps it, so a place is shaped once, not per request
# (a list of a hundred cases asks the same of each applicant).
_shapes: LRUCache[tuple[int, ...], _Shape] = LRUCache(maxsize=4096)


def _shape_of(info: GatewayInfo | RawInfo) -> _Shape:
    raw: RawInfo = info._raw_info if isinstance(info, Info) else info
    nodes = raw.field_nodes
    key = tuple(map(id, nodes))
    shape = _shapes.get(key)
    if shape is None:
        selections = [s for node in nodes for s in _shaped(node.selection_set, raw.fragments)]
        shape = _shapes[key] = _Shape(tuple(nodes), selections, requested_fields(selections))
    return shape


def _shaped(selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> list[Selection]:
    """strawberry's selections of a selection set from the document alone: names, aliases, type conditions, and
    which directives stand where -- never an argument's value, which may be the request's variables."""
    shaped: list[Selection] = []
    for node in selection_set.selections if selection_set is not None else ():
        directives: dict[str, dict[str, Any]] = {directive.name.value: {} for directive in node.directives or ()}
        if isinstance(node, FieldNode):
            alias = node.alias.value if node.alias is not None else None
            inner = _shaped(node.selection_set, fragments)
            shaped.append(SelectedField(node.name.value, directives, {}, inner, alias))
        elif isinstance(node, FragmentSpreadNode):
            fragment = fragments[node.name.value]
            inner = _shaped(fragment.selection_set, fragments)
            shaped.append(FragmentSpread(node.name.value, fragment.type_condition.name.value, directives, inner))
        elif isinstance(node, InlineFragmentNode):
            condition = node.type_condition.name.value if node.type_condition is not None else None
            shaped.append(InlineFragment(condition, _shaped(node.selection_set, fragments), directives))
    return shaped


def selections_of(info: GatewayInfo | RawInfo) -> list[Selection]:
    """What the field being resolved selects on its type (under each of its nodes), as strawberry's selections:
    each field's name, alias and selections, each fragment's type condition, and which directives stand on them,
    without their arguments. The same list for every request of the document: not to be changed."""
    return _shape_of(info).selections


def selected_fields_of(info: GatewayInfo | RawInfo) -> frozenset[str]:
    """The fields selected under the field being resolved."""
    return _shape_of(info).requested


@strawberry.type(description="Where one field's value came from.")
class FieldProvenance:
    field: str = strawberry.field(description="The unified field name, e.g. maritalStatus.")
    source: str = strawberry.field(description="The configured source that answered.")
    department: str = strawberry.field(description="The department system behind the source.")
    fetched_at: dt.datetime = strawberry.field(description="When the department answered.")
    stale: bool = strawberry.field(description="True when a cached value stood in for a failed or slow department.")
    age: float = strawberry.field(description="Seconds since the department answered, when served from cache.")
    masked: bool = strawberry.field(description="True when the value was masked for this caller.")


async def _provenance(root: Any, info: GatewayInfo) -> list[FieldProvenance]:
    access = info.context.access
    names = [n for n in sorted(root.requested) if info.context.sources.sources.providers(root.ENTITY, n)]
    results = await asyncio.gather(
        *(access.read(root.ENTITY, root.key, n, purpose=root.purpose) for n in names), return_exceptions=True
    )
    found = []
    for released in results:
        if isinstance(released, Forbidden | SourceError | AuditUnavailable):
            continue
        if isinstance(released, BaseException):
            raise released
        p = released.provenance
        if p is not None:
            found.append(
                FieldProvenance(
                    field=p.field,
                    source=p.source,
                    department=p.department,
                    fetched_at=p.fetched_at,
                    stale=p.stale,
                    age=p.age,
                    masked=released.masked,
                )
            )
    return found


async def _warning_state(root: Any, info: GatewayInfo) -> WarningState | None:
    sources = info.context.sources
    workflow = info.context.workflow
    if workflow is not None:  # working days of the configured calendar, paused while materials are awaited
        counted = await workflow.deadline(sources, root.key, info.context.now)
        return WarningState.CLOSED if counted is None else WarningState(workflow.warning(counted))
    status: CaseStatus | None = await sources.value("Case", root.key, "status")
    closed_at = await sources.value("Case", root.key, "closedAt")
    if status in _CLOSED or closed_at is not None:
        return WarningState.CLOSED
    deadline: dt.datetime | None = await sources.value("Case", root.key, "deadline")
    if deadline is None:
        return None
    now = info.context.now
    if now > deadline:
        return WarningState.OVERDUE
    submitted: dt.datetime | None = await sources.value("Case", root.key, "submittedAt")
    window = (deadline - submitted) if submitted is not None else WARNING_MINIMUM
    if deadline - now <= max(WARNING_MINIMUM, window * WARNING_SHARE):
        return WarningState.WARNING
    return WarningState.ON_TIME


# Fields the model declares as computed, by the name it gives (``computed: warning_state``).
COMPUTED: Mapping[str, Callable[..., Any]] = {"warning_state": _warning_state}

Convert = Callable[[Any, Any, RawInfo], Any]


def _computed(spec: FieldSpec) -> Callable[..., Any]:
    """A field the gateway computes from others: released only if every field it reads is (each decided, refusals
    recorded, under the entity's purpose)."""
    assert spec.computed is not None
    compute = COMPUTED[spec.computed]
    reads = spec.reads

    async def resolver(root: Any, info: GatewayInfo) -> Any:
        for name in reads:
            await info.context.access.decide(root.ENTITY, root.key, name, root.purpose)
        return await compute(root, info)

    return resolver


def _nested_purpose(ref: EntityKey, entity: str, key: str, purpose: Purpose | None) -> Purpose | None:
    """The purpose a referenced entity is read under, from the entity ``key`` that refers to it: a case is its own
    purpose for its applicant; anything else reached from an entity is read under that entity's purpose."""
    if entity == "Case":
        return Purpose(key, ref.key)
    return purpose


def _provided(name: str, *, graphql_name: str, convert: Convert | None, description: str) -> Any:
    """A field answered by whichever configured source provides ``<Entity>.<name>``, as the caller's policy allows:
    refused fields are null with a FORBIDDEN error, masked ones masked, and every personal value is audited.

    The resolver is synchronous when the read is already settled (see :func:`prefetch`): then graphql-core has no
    awaitable to gather for the field, so no task, and the object's other fields complete at once too. Returns the
    strawberry field and its plain resolver, which :func:`install_plain_resolvers` hands graphql-core directly."""

    def plain(root: Any, info: RawInfo) -> Any:
        path = info.path  # its steps are listed only if the audit cannot record (to withhold the value)
        released = info.context.access.read_now(root.ENTITY, root.key, name, purpose=root.purpose, path=path)
        if released is None:
            return read(root, info, path)
        return convert(released.value, root, info) if convert is not None else released.value

    async def read(root: Any, info: RawInfo, path: ResponsePath) -> Any:
        released = await info.context.access.read(root.ENTITY, root.key, name, purpose=root.purpose, path=path)
        return convert(released.value, root, info) if convert is not None else released.value

    def resolver(root: Any, info: GatewayInfo) -> Any:
        return plain(root, info._raw_info)

    return strawberry.field(resolver=resolver, name=graphql_name, description=description or None), plain


def install_plain_resolvers(schema: strawberry.Schema, types: SchemaTypes) -> None:
    """Let graphql-core call the provided fields' resolvers, and the root lookups by key, itself. Strawberry's
    wrapper around a resolver (its Info object, argument conversion, field extensions) does nothing for these
    fields, which carry no field extensions and take no arguments (the lookups convert their own), yet costs more
    than the field's own work; schema extensions' hooks are not in it (they wrap every resolver as graphql-core
    middleware), so they still see every field."""
    type_map = schema._schema.type_map
    for (type_name, field_name), plain in types.plain.items():
        graphql_type = type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        graphql_type.fields[field_name].resolve = plain
    # A union of entities (a case's applicant) names its member by the entity's class, which the schema made for
    # that member alone; strawberry's own resolver searches the union's types, then the whole schema's, for each.
    named = {cls: cls.__strawberry_definition__.name for cls in types.entities.values()}
    for union_name in types.unions:
        union = type_map[union_name]
        assert isinstance(union, GraphQLUnionType)
        names = {member.name for member in union.types}
        members = {cls: name for cls, name in named.items() if name in names}
        if union.resolve_type is not None:
            union.resolve_type = _member_by_class(members, union.resolve_type)


def _member_by_class(members: dict[type, str], otherwise: GraphQLTypeResolver) -> GraphQLTypeResolver:
    def resolve_type(root: Any, info: RawInfo, union: GraphQLAbstractType) -> Any:
        name = members.get(type(root))
        return name if name is not None else otherwise(root, info, union)

    return resolve_type


Reads = Sequence[tuple[str, Optional[Purpose]]]  # noqa: UP045 - a run-time alias
"""Entities of one type to read, as ``(key, purpose)``."""


def read_ahead(
    info: GatewayInfo | RawInfo, entities: Sequence[Any], selections: Sequence[Selection]
) -> Awaitable[None] | None:
    """:func:`prefetch` for these entities (of one type, as the schema makes them) when it saves work: more than one
    value to read, or references to follow. ``None`` when it would not: one field of one entity resolves alone
    without a task, and reading it ahead would only add a step."""
    if not entities:
        return None
    entity = entities[0].ENTITY
    sources = info.context.sources.sources
    spec = sources.catalog.entities.get(entity)
    if spec is None:
        return None
    chosen: dict[str, list[SelectedField]] = {}
    _plain_fields(selections, entity, sources.catalog, chosen)
    fields = [name for name in chosen if name in spec.fields and spec.fields[name].computed is None]
    if len(entities) * len(fields) < 2 and not any(spec.fields[name].ref is not None for name in fields):
        return None
    return prefetch(info, entity, [(e.key, e.purpose) for e in entities], selections)


async def prefetch(info: GatewayInfo | RawInfo, entity: str, reads: Reads, selections: Sequence[Selection]) -> None:
    """Settle ahead of their resolvers the provided fields ``selections`` ask of these entities, and level by level
    those of the entities they refer to (:meth:`auth.access.Access.prepare`): one batch per department query per
    level and no task per field, so the fields' resolvers answer synchronously. Only plainly selected fields are
    read ahead (not under ``@skip``/``@include``, not in a fragment for another type); the rest resolve as usual."""
    sources = info.context.sources.sources
    spec = sources.catalog.entities.get(entity)
    if spec is None or not reads:
        return
    chosen: dict[str, list[SelectedField]] = {}
    _plain_fields(selections, entity, sources.catalog, chosen)
    fields = [
        name
        for name in chosen
        if name in spec.fields and spec.fields[name].computed is None and sources.providers(entity, name)
    ]
    if not fields:
        return
    access = info.context.access
    reads = list(dict.fromkeys(reads))
    await access.prepare(entity, reads, fields)
    nested: dict[tuple[str, str], list[tuple[str, Purpose | None]]] = {}
    for name in fields:
        if spec.fields[name].ref is None:
            continue
        for key, purpose in reads:
            value = access.settled_value(entity, key, name, purpose)
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, EntityKey):
                    nested.setdefault((name, ref.entity), []).append(
                        (ref.key, _nested_purpose(ref, entity, key, purpose))
                    )
    levels = [
        prefetch(info, target, targets, [sub for s in chosen[name] for sub in s.selections])
        for (name, target), targets in nested.items()
    ]
    if len(levels) == 1:
        await levels[0]
    elif levels:
        await asyncio.gather(*levels)


def _plain_fields(
    selections: Sequence[Selection], entity: str, catalog: Catalog, into: dict[str, list[SelectedField]]
) -> None:
    for selection in selections:
        if selection.directives:
            continue
        if isinstance(selection, SelectedField):
            into.setdefault(selection.name, []).append(selection)
        elif selection.type_condition in (None, entity) or selection.type_condition not in catalog.entities:
            _plain_fields(selection.selections, entity, catalog, into)


@dataclass
class SchemaTypes:
    """The strawberry types made for one catalog: by GraphQL name."""

    catalog: Catalog
    entities: dict[str, type[Any]] = field(default_factory=dict)
    objects: dict[str, type[Any]] = field(default_factory=dict)
    unions: dict[str, Any] = field(default_factory=dict)
    # The provided fields' plain resolvers, by (GraphQL type, field): see install_plain_resolvers.
    plain: dict[tuple[str, str], Callable[..., Any]] = field(default_factory=dict)

    def entity(self, ref: EntityKey, requested: frozenset[str] = frozenset(), purpose: Purpose | None = None) -> Any:
        """The schema object for an entity reference, read under ``purpose``."""
        return self.entities[ref.entity](key=ref.key, requested=requested, purpose=purpose)


def build_types(catalog: Catalog, raw: Sequence[RawField] = ()) -> SchemaTypes:
    """Strawberry types for every entity, object, enum and union of ``catalog``, and the raw namespaces."""
    return _TypeBuilder(catalog, raw).build()


class _TypeBuilder:
    def __init__(self, catalog: Catalog, raw: Sequence[RawField]) -> None:
        self.catalog = catalog
        self.types = SchemaTypes(catalog)
        self.raw: dict[str, dict[str, list[RawField]]] = {}
        for raw_field in raw:
            self.raw.setdefault(raw_field.entity, {}).setdefault(raw_field.source, []).append(raw_field)
        self.enums: dict[str, type[Enum]] = {}

    def build(self) -> SchemaTypes:
        catalog = self.catalog
        for name, enum in catalog.enums.items():
            if name in catalog.declared_enums and not hasattr(enum, "__strawberry_definition__"):
                strawberry.enum(enum, description=catalog.enum_descriptions.get(name) or None)
            self.enums[name] = enum
        # Entities refer to each other (a person's cases, a case's applicant): shells first, fields after.
        for name in catalog.entities:
            self.types.entities[name] = type(name, (), {"__module__": __name__, "__qualname__": name})
        for name, union in catalog.unions.items():
            members = tuple(self.types.entities[m] for m in union.members.values())
            self.types.unions[name] = Annotated[
                Union[members],  # noqa: UP007 - a tuple of classes made at run time
                strawberry.union(name, description=union.description or None),
            ]
        for name in catalog.objects:
            self._object_type(name, catalog.objects[name].fields, catalog.objects[name].description)
        for spec in catalog.entities.values():
            self._entity_type(spec)
        return self.types

    # -- annotations ---------------------------------------------------------------------------------------------

    def _annotation(self, spec: FieldSpec) -> Any:
        inner: Any
        if spec.value_type is not None:
            inner = _SCALAR_TYPES[spec.value_type]
        elif spec.enum is not None:
            inner = spec.enum
        elif spec.fields is not None:
            inner = self._object_type(spec.type_name, spec.fields, spec.description)
        else:
            assert spec.ref is not None
            inner = self.types.unions.get(spec.ref) or self.types.entities[spec.ref]
        return Optional[list[inner]] if spec.many else Optional[inner]  # noqa: UP045 - built at run time

    def _object_type(self, name: str, fields: Mapping[str, FieldSpec], description: str) -> type[Any]:
        existing = self.types.objects.get(name)
        if existing is not None:
            return existing
        declared = self.catalog.objects.get(name)
        if declared is not None:
            description = declared.description
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": name}
        converters: dict[str, Callable[[Any], Any]] = {}
        for index, (field_name, spec) in enumerate(fields.items()):
            attr = f"f{index}_{field_name}"
            annotations[attr] = self._annotation(spec)
            namespace[attr] = strawberry.field(name=field_name, default=None, description=spec.description or None)
            if spec.fields is not None:
                converters[field_name] = self._converter(spec)
        namespace["__annotations__"] = annotations
        attrs = {field_name: f"f{index}_{field_name}" for index, field_name in enumerate(fields)}
        cls = strawberry.type(type(name, (), namespace), name=name, description=description or None)

        def build(values: Any) -> Any:
            if values is None:
                return None
            return cls(
                **{
                    attrs[k]: (converters[k](v) if k in converters else v)
                    for k, v in values.items()
                    if k in attrs and v is not None
                }
            )

        cls.from_values = staticmethod(build)  # type: ignore[attr-defined]
        self.types.objects[name] = cls
        return cls

    def _converter(self, spec: FieldSpec) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:
            cls = self.types.objects[spec.type_name]
            if isinstance(value, list):
                return [cls.from_values(v) for v in value]
            return cls.from_values(value)

        return convert

    # -- entities ------------------------------------------------------------------------------------------------

    def _field_convert(self, spec: FieldSpec) -> Convert | None:
        if spec.fields is not None:
            objects = self._converter(spec)
            return lambda value, root, info: objects(value)
        if spec.ref is not None:
            types = self.types

            def refs(value: Any, root: Any, info: RawInfo) -> Any:
                requested = selected_fields_of(info)
                entity, key, purpose = root.ENTITY, root.key, root.purpose
                if isinstance(value, list):
                    return [types.entity(v, requested, _nested_purpose(v, entity, key, purpose)) for v in value]
                if value is None:
                    return None
                return types.entity(value, requested, _nested_purpose(value, entity, key, purpose))

            return refs
        return None

    def _entity_type(self, entity: EntitySpec) -> None:
        cls = self.types.entities[entity.name]
        annotations: dict[str, Any] = {
            "key": strawberry.Private[str],
            "requested": strawberry.Private[frozenset[str]],
            "purpose": strawberry.Private[Optional[Purpose]],  # type: ignore[misc]  # noqa: UP045
            # The caller typed this entity's key (a root lookup): echoing it back is no disclosure.
            "given": strawberry.Private[bool],
        }
        cls.given = False
        cls.ENTITY = entity.name
        cls.requested = frozenset()
        cls.purpose = None
        for index, (name, spec) in enumerate(entity.fields.items()):
            attr = f"f{index}_{name}"
            annotations[attr] = self._annotation(spec)
            if spec.computed is not None:
                value = strawberry.field(resolver=_computed(spec), name=name, description=spec.description or None)
            else:
                value, plain = _provided(
                    name, graphql_name=name, convert=self._field_convert(spec), description=spec.description
                )
                self.types.plain[(entity.name, name)] = plain
            setattr(cls, attr, value)
        if entity.name in self.raw:
            annotations["raw_namespace"] = Optional[self._raw_namespace(entity.name)]  # noqa: UP045
            cls.raw_namespace = strawberry.field(
                resolver=_namespace(self.types.objects[f"Raw{entity.name}"]),
                name="raw",
                description=f"{entity.name}'s records as each department system holds them (sources with raw).",
            )
        annotations["provenance"] = list[FieldProvenance]
        cls.provenance = strawberry.field(resolver=_provenance, description="Where each selected field came from.")
        annotations["key_field"] = _KEY_TYPES[entity.key_type]
        key_resolver, plain_key = _key_resolver(entity)
        description = entity.key_description or None
        cls.key_field = strawberry.field(resolver=key_resolver, name=entity.key, description=description)
        if plain_key is not None:
            self.types.plain[(entity.name, entity.key)] = plain_key
        cls.__annotations__ = annotations
        strawberry.type(cls, name=entity.name, description=entity.description or None)

    def _raw_namespace(self, entity: str) -> type[Any]:
        """``Raw<Entity>``: one field per source, each with one field per query."""
        sources: list[tuple[str, type[Any]]] = []
        for source, fields in self.raw[entity].items():
            type_name = f"Raw{entity}{pascal(source)}"
            annotations: dict[str, Any] = dict(_NAMESPACE_PRIVATE)
            namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": type_name, "ENTITY": entity}
            namespace.update(requested=frozenset(), purpose=None)
            for index, raw_field in enumerate(fields):
                attr = f"f{index}_{raw_field.query}"
                annotations[attr] = self._annotation(raw_field.spec)
                namespace[attr], plain = _provided(
                    raw_field.name,
                    graphql_name=camel(raw_field.query),
                    convert=self._field_convert(raw_field.spec),
                    description=f"Records of query {raw_field.query}, as {source} holds them.",
                )
                self.types.plain[(type_name, camel(raw_field.query))] = plain
            namespace["__annotations__"] = annotations
            sources.append((source, strawberry.type(type(type_name, (), namespace), name=type_name)))
        name = f"Raw{entity}"
        annotations = dict(_NAMESPACE_PRIVATE)
        namespace = {"__module__": __name__, "__qualname__": name, "ENTITY": entity}
        namespace.update(requested=frozenset(), purpose=None)
        for index, (source, source_type) in enumerate(sources):
            attr = f"f{index}_{source}"
            annotations[attr] = source_type
            namespace[attr] = strawberry.field(resolver=_namespace(source_type), name=camel(source))
        namespace["__annotations__"] = annotations
        cls = strawberry.type(type(name, (), namespace), name=name, description=f"Raw records about a {entity}.")
        self.types.objects[name] = cls
        return cls


_NAMESPACE_PRIVATE: Mapping[str, Any] = {
    "key": strawberry.Private[str],
    "requested": strawberry.Private[frozenset[str]],
    "purpose": strawberry.Private[Optional[Purpose]],  # type: ignore[misc]  # noqa: UP045
}


def _namespace(cls: type[Any]) -> Callable[..., Any]:
    def resolver(root: Any) -> Any:
        return cls(key=root.key, purpose=root.purpose)

    return resolver


def _key_resolver(entity: EntitySpec) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """An entity's key as a field, and its plain resolver if it has one (see :func:`install_plain_resolvers`). A
    personal entity's key is masked and audited like any of its fields, synchronously once settled."""
    key_type = _KEY_TYPES[entity.key_type]
    if not entity.personal:

        def plain(root: Any) -> Any:
            return key_type(root.key)

        return plain, None

    def personal(root: Any, info: GatewayInfo) -> Any:
        return plain_personal(root, info._raw_info)

    def plain_personal(root: Any, info: RawInfo) -> Any:
        access = info.context.access
        path = info.path
        name, key, given = entity.name, root.key, root.given
        settled = access.key_now(name, key, entity.key, purpose=root.purpose, path=path, given=given)
        if settled is not None:
            return key_type(settled)
        return read(root, access, path)

    async def read(root: Any, access: Access, path: ResponsePath) -> Any:
        return key_type(
            await access.key(entity.name, root.key, entity.key, purpose=root.purpose, path=path, given=root.given)
        )

    return personal, plain_personal
