"""The root of the unified schema, and the one place the schema is assembled.

>>> schema = build_schema()
>>> "person(idNumber: IdNumber!): Person" in str(schema)
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.nodes import Selection

from auth.access import Purpose
from auth.policy import Reason
from auth.principal import PrincipalKind
from gateway.errors import BadUserInput, Forbidden
from gateway.extensions.documents import DocumentCache
from gateway.extensions.errors import LoggedSchema
from gateway.keys import Applicant, parse_applicant
from gateway.mapping import EntityKey
from gateway.model import Catalog
from gateway.raw import RawField
from gateway.sources import encode_cursor
from schema.audit import AccessLogEntry, AuditLogRecord, audit_log, my_access_log
from schema.catalog import CATALOG
from schema.context import GatewayInfo
from schema.enums import CaseStatus
from schema.federation import SUBGRAPH_ROOTS, Subgraph
from schema.forms import FormInfo, FormPrefillResult, list_forms, prefill_form
from schema.materials import material_type, read_materials
from schema.purposes import PurposeInput, purpose_of, register_intake
from schema.scalars import SCALARS, CreditCode, IdNumber
from schema.types import (
    RawInfo,
    SchemaTypes,
    build_types,
    install_plain_resolvers,
    read_ahead,
    requested_fields,
    selected_fields_of,
    selections_of,
)
from schema.workflow import CaseDeadline, WorkflowMutation, WorkflowSubscription, case_deadlines

__all__ = [
    "CACHEABLE_ROOTS",
    "MAX_KEYS_PER_QUERY",
    "MAX_PAGE_SIZE",
    "Mutation",
    "PageInfo",
    "PurposeInput",
    "Viewer",
    "build_schema",
]

MAX_PAGE_SIZE = 100
# Root fields whose answers depend only on the caller, the arguments and department records: a query asking only
# these may be answered whole from the response cache (cache.responses). Listings, the audit and the viewer are not.
CACHEABLE_ROOTS = frozenset({"person", "persons", "legalEntity", "me", "case", "__typename"})
MAX_KEYS_PER_QUERY = 100
# Front ends send a few dozen distinct documents; parsing and validating each once saves ~3 ms per request.
DOCUMENT_CACHE_SIZE = 512


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def _purpose(purpose: PurposeInput | None, applicant: str) -> Purpose | None:
    return purpose_of(purpose, applicant)


def _input(purpose: Mapping[str, Any] | None) -> PurposeInput | None:
    """The ``purpose`` argument as graphql-core coerced it (by GraphQL names), as strawberry would convert it."""
    if purpose is None:
        return None
    return PurposeInput(case_number=purpose.get("caseNumber"), intake=purpose.get("intake"))


@strawberry.type(description="The caller as the gateway authenticated them.")
class Viewer:
    subject: str
    kind: str
    via: str = strawberry.field(description="What proved the identity: oidc:<issuer>, cas, api_key, development.")
    department: str | None
    window: str | None
    roles: list[str]


def _viewer(info: GatewayInfo) -> Viewer:
    p = info.context.principal
    return Viewer(
        subject=p.subject, kind=p.kind, via=p.via, department=p.department, window=p.window, roles=sorted(p.roles)
    )


def _query_type(
    types: SchemaTypes, *, roots: Sequence[str] | None = None, directives: Sequence[object] = ()
) -> type[Any]:
    """The root query over the generated types: lookups by key, the case listing, the viewer and the audit (only
    ``roots`` of them when given)."""
    Person, LegalEntity, Case = types.entities["Person"], types.entities["LegalEntity"], types.entities["Case"]
    CaseEdge = _make_type("CaseEdge", {"cursor": (str, None), "node": (Case, None)}, description=None)
    CaseConnection = _make_type(
        "CaseConnection",
        {"edges": (_list_of(CaseEdge), None), "page_info": (PageInfo, None)},
        description="A page of cases, Relay style: pass pageInfo.endCursor as `after` for the next.",
    )

    # The lookups by key, on graphql-core's own resolve info: strawberry's resolvers below call them, and
    # install_plain_resolvers hands them to graphql-core directly (``types.plain`` below), sparing every lookup
    # strawberry's wrapper (its Info, its argument conversion), which does nothing for them.
    def me_of(info: RawInfo) -> Any:
        principal = info.context.principal
        if principal.kind is not PrincipalKind.CITIZEN or principal.id_number is None:
            raise Forbidden(Reason.NOT_OWN_DATA, "me is the signed-in citizen's own record; staff ask person()")
        found = Person(key=principal.id_number, requested=selected_fields_of(info))
        return _read_ahead(info, selections_of(info), found, [found])

    def person_of(info: RawInfo, key: str, purpose: PurposeInput | None) -> Any:
        found = Person(key=key, requested=selected_fields_of(info), purpose=_purpose(purpose, key), given=True)
        return _read_ahead(info, selections_of(info), found, [found])

    def persons_of(info: RawInfo, keys: list[str], purpose: PurposeInput | None) -> Any:
        if len(keys) > MAX_KEYS_PER_QUERY:
            raise BadUserInput(f"at most {MAX_KEYS_PER_QUERY} ID numbers per query, got {len(keys)}")
        requested = selected_fields_of(info)
        found = [Person(key=k, requested=requested, purpose=_purpose(purpose, k), given=True) for k in keys]
        return _read_ahead(info, selections_of(info), found, found)

    def legal_entity_of(info: RawInfo, key: str, purpose: PurposeInput | None) -> Any:
        found = LegalEntity(key=key, requested=selected_fields_of(info), purpose=_purpose(purpose, key), given=True)
        return _read_ahead(info, selections_of(info), found, [found])

    def me(info: GatewayInfo) -> Any:
        return me_of(info._raw_info)

    def person(info: GatewayInfo, id_number: IdNumber, purpose: PurposeInput | None = None) -> Any:
        return person_of(info._raw_info, str(id_number), purpose)

    def persons(info: GatewayInfo, id_numbers: list[IdNumber], purpose: PurposeInput | None = None) -> Any:
        return persons_of(info._raw_info, [str(k) for k in id_numbers], purpose)

    def legal_entity(info: GatewayInfo, credit_code: CreditCode, purpose: PurposeInput | None = None) -> Any:
        return legal_entity_of(info._raw_info, str(credit_code), purpose)

    types.plain.update(
        {
            ("Query", "me"): lambda _, info: me_of(info),
            ("Query", "person"): lambda _, info, idNumber, purpose=None: person_of(info, idNumber, _input(purpose)),
            ("Query", "persons"): lambda _, info, idNumbers, purpose=None: persons_of(info, idNumbers, _input(purpose)),
            ("Query", "legalEntity"): lambda _, info, creditCode, purpose=None: legal_entity_of(
                info, creditCode, _input(purpose)
            ),
        }
    )

    async def case(info: GatewayInfo, case_number: str, purpose: PurposeInput | None = None) -> Any:
        key = case_number.strip()
        if not key:
            raise BadUserInput("a case number is required")
        access = info.context.access
        verdict = access.policy.entity(access.principal, "Case")
        if not verdict.allowed:
            assert verdict.reason is not None
            raise Forbidden(verdict.reason, verdict.detail)
        if not await info.context.sources.exists("Case", key, "status"):
            return None
        read_as = None
        if purpose is not None:
            applicant = await info.context.sources.value("Case", key, "applicant")
            read_as = _purpose(purpose, applicant.key if isinstance(applicant, EntityKey) else "")
        # Whoever may not read the case's status may not learn anything of it: refused, and audited.
        await access.decide("Case", key, "status", read_as)
        selections = selections_of(info)
        found = Case(key=key, requested=selected_fields_of(info), purpose=read_as, given=True)
        answer = _read_ahead(info, selections, found, [found])
        return await answer if inspect.isawaitable(answer) else answer

    async def cases(
        info: GatewayInfo,
        applicant: str | None = None,
        status: CaseStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
        purpose: PurposeInput | None = None,
    ) -> Any:
        first = 20 if first is None else first
        if not 0 < first <= MAX_PAGE_SIZE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE_SIZE}")
        named = parse_applicant(applicant) if applicant is not None else None
        if purpose is not None and named is None:
            raise BadUserInput("a purpose is given for an applicant: name the applicant")
        access = info.context.access
        verdict = access.policy.entity(access.principal, "Case")
        if not verdict.allowed:
            assert verdict.reason is not None
            raise Forbidden(verdict.reason, verdict.detail)
        if access.principal.kind is PrincipalKind.CITIZEN:
            own = access.principal.id_number
            if named is not None and named.key != own:
                detail = "a citizen may list only their own cases"
                raise access.refuse(named.entity, named.key, "cases", None, Reason.NOT_OWN_DATA, detail)
            named = Applicant("Person", own) if own is not None else None
        applicant = named.key if named is not None else None
        read_as = _purpose(purpose, applicant) if applicant is not None else None
        page = await info.context.sources.search(
            "Case", {"applicant": applicant, "status": status}, first=first, after=after
        )

        # A listing shows only the cases the caller may read (their department's, or the applicant's under a valid
        # purpose); the others are not shown at all, not even their numbers.
        readable: list[tuple[bool, Purpose | None]] = [(False, None)] * len(page.keys)
        if read_as is not None:
            verdicts = await access.check_all("Case", "status", [(key, read_as) for key in page.keys])
            readable = [(True, read_as) if verdict.allowed else (False, None) for verdict in verdicts]
        rest = [i for i, (allowed, _) in enumerate(readable) if not allowed]
        verdicts = await access.check_all("Case", "status", [(page.keys[i], None) for i in rest])
        for i, verdict in zip(rest, verdicts, strict=True):
            readable[i] = (verdict.allowed, None)
        node_selections: list[Any] = []
        for edge in selections_of(info):
            if getattr(edge, "name", None) == "edges":
                for node in getattr(edge, "selections", ()):
                    if getattr(node, "name", None) == "node":
                        node_selections = node.selections
        requested = requested_fields(node_selections)
        edges = [
            CaseEdge(cursor=encode_cursor(page.offset + i), node=Case(key=key, requested=requested, purpose=under))
            for i, (key, (allowed, under)) in enumerate(zip(page.keys, readable, strict=True))
            if allowed
        ]
        ahead = read_ahead(info, [edge.node for edge in edges], node_selections)
        if ahead is not None:
            await ahead
        if named is not None:
            access.listed(named.entity, named.key, read_as, len(edges))
        return CaseConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.offset > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    Material = material_type(types)

    async def materials(
        info: GatewayInfo, service_item: str, applicant: str, purpose: PurposeInput | None = None
    ) -> Any:
        return await read_materials(info, Material, service_item, applicant, purpose)

    async def prefill(
        info: GatewayInfo,
        form: str,
        applicant: str,
        purpose: PurposeInput | None = None,
        conflicts: bool | None = None,
    ) -> FormPrefillResult:
        return await prefill_form(info, form, applicant, purpose, conflicts)

    def root(resolver: Any, description: str) -> Any:
        return strawberry.field(resolver=resolver, description=description)

    return _make_type(
        "Query",
        {
            "my_access_log": (
                list[AccessLogEntry],
                root(
                    my_access_log,
                    "Who read the signed-in citizen's data, newest first; page on with before = the last seq seen.",
                ),
            ),
            "audit_log": (
                list[AuditLogRecord],
                root(audit_log, "Disclosure records for supervisors (officers with the supervisor role)."),
            ),
            "viewer": (Viewer, root(_viewer, "Who the gateway takes the caller to be.")),
            "me": (Person, root(me, "The signed-in citizen's own person record (citizens only).")),
            "person": (Optional[Person], root(person, "A natural person by citizen ID number, read for a purpose.")),  # noqa: UP045
            "persons": (
                _list_of(Person),
                root(persons, f"Several persons at once (at most {MAX_KEYS_PER_QUERY}), in the order asked."),
            ),
            "legal_entity": (
                Optional[LegalEntity],  # noqa: UP045
                root(legal_entity, "A legal entity by unified social credit code, read for a purpose."),
            ),
            "case": (
                Optional[Case],  # noqa: UP045
                root(case, "A case by its case number; null when the approval platform does not know it."),
            ),
            "prefill": (
                FormPrefillResult,
                root(
                    prefill,
                    "A configured form (forms:) prefilled for an applicant (ID number or credit code, as the form "
                    "says): each field's value, status and provenance, read under the purpose like any field. "
                    "conflicts: ask every department providing a field and flag disagreements (default: the form's).",
                ),
            ),
            "forms": (
                list[FormInfo],
                root(list_forms, "The configured forms (forms:), each with the service item it is for."),
            ),
            "cases": (
                CaseConnection,
                root(cases, "Cases, newest listing order of the approval platform, filtered and paged."),
            ),
            "case_deadlines": (
                list[CaseDeadline],
                root(
                    case_deadlines,
                    "Open cases of a department in the given warning states (WARNING and OVERDUE by default), counted "
                    "in working days with the clock stopped while a case waits for materials (supervisors).",
                ),
            ),
            "materials": (
                _list_of(Material),
                root(
                    materials,
                    "A service item's materials, and which government already holds for the applicant (read for a "
                    "purpose): those HELD need not be submitted.",
                ),
            ),
        },
        description="One endpoint over every department system: ask by the applicant's key.",
        only=roots,
        directives=directives,
    )


def _read_ahead(info: GatewayInfo | RawInfo, selections: list[Selection], answer: Any, entities: list[Any]) -> Any:
    """``answer``, once the fields ``selections`` asks of ``entities`` (of one type) are read ahead when that saves
    work (:func:`schema.types.read_ahead`): then a coroutine, else ``answer`` itself."""
    ahead = read_ahead(info, entities, selections)
    if ahead is None:
        return answer

    async def settled() -> Any:
        await ahead
        return answer

    return settled()


def _list_of(item: Any) -> Any:
    """``list[item]`` for a type made at run time."""
    return list[item]


def _make_type(
    name: str,
    fields: dict[str, tuple[Any, Any]],
    *,
    description: str | None,
    only: Sequence[str] | None = None,
    directives: Sequence[object] = (),
) -> type[Any]:
    """A strawberry type made at run time from ``{attribute: (annotation, strawberry.field or None)}`` (only the
    attributes ``only`` when given)."""
    if only is not None:
        fields = {attr: fields[attr] for attr in only}
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": name}
    namespace["__annotations__"] = {attr: annotation for attr, (annotation, _) in fields.items()}
    namespace.update({attr: value for attr, (_, value) in fields.items() if value is not None})
    return strawberry.type(type(name, (), namespace), name=name, description=description, directives=directives)


@strawberry.type(description="Changes an officer or integrator may make.")
class Mutation:
    @strawberry.mutation(
        description=(
            "Drop a source's cached answers, for one key or all of them (officers and integrators holding an "
            "invalidation role). With Redis, every gateway process sees it. Returns how many entries were dropped."
        )
    )
    async def invalidate(self, info: GatewayInfo, source: str, key: str | None = None) -> int:
        principal = info.context.principal
        roles = info.context.access.policy.config.invalidate_roles
        if principal.kind not in (PrincipalKind.OFFICER, PrincipalKind.INTEGRATOR) or not principal.has_role(*roles):
            raise Forbidden(Reason.ROLE_REQUIRED, f"invalidate needs an officer or integrator with one of: {roles}")
        return await info.context.sources.sources.invalidate(source, key.strip() if key else None)

    register_intake = strawberry.mutation(
        resolver=register_intake,
        description=(
            "Register an intake purpose: the applicant is applying for the service item at the caller's window, "
            "before the case exists. It lasts auth.policy.purposes.intake_ttl and releases only what the item's "
            "forms and materials need; give its token as purpose: {intake: ...}. Audited under the applicant."
        ),
    )


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    catalog: Catalog | None = None,
    raw: Sequence[RawField] = (),
    subgraph: Subgraph | None = None,
) -> strawberry.Schema:
    """The unified schema for ``catalog`` (the built-in model by default) and the raw namespaces ``raw``, with the
    gateway's extensions (classes or factories: one instance per request); with ``subgraph``, that gateway's
    federation subgraph (:mod:`schema.federation`), which has no raw namespaces."""
    caches = [lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE)]
    if subgraph is not None:
        types = subgraph.types(catalog if catalog is not None else CATALOG)
        query = _query_type(types, roots=SUBGRAPH_ROOTS, directives=subgraph.root_directives)
        config = StrawberryConfig(scalar_map=SCALARS)
        return subgraph.schema(query=query, extensions=[*extensions, *caches], config=config)
    types = build_types(catalog if catalog is not None else CATALOG, raw)
    schema = LoggedSchema(
        query=_query_type(types),
        mutation=merge_types("Mutation", (Mutation, WorkflowMutation)),
        subscription=WorkflowSubscription,
        extensions=[*extensions, *caches],
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    install_plain_resolvers(schema, types)
    return schema
