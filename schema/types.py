"""Object types of the unified schema: persons, legal entities, cases, licences, and where each value came from.

Every provided field is resolved through the source layer (``info.context.sources``), never by calling a
department directly. An entity type carries only its key; its fields are looked up when asked for, so a query
selecting ``name`` and ``maritalStatus`` calls just the household and marriage registries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from auth.access import Purpose
from gateway.errors import Forbidden, SourceError
from gateway.mapping import EntityKey
from schema.context import GatewayInfo
from schema.enums import CaseStatus, EntityStatus, EventType, Gender, LicenceStatus, MaritalStatus, WarningState
from schema.scalars import CreditCode, IdNumber

__all__ = [
    "Case",
    "CaseEvent",
    "Degree",
    "FieldProvenance",
    "LegalEntity",
    "Licence",
    "Person",
    "ServiceItem",
    "SocialInsurance",
    "entity_for",
    "requested_fields",
    "selected_fields_of",
]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")

# A case whose remaining time is at most this share of its whole handling window (and at least a day) is WARNING.
WARNING_SHARE = 0.2
WARNING_MINIMUM = dt.timedelta(days=1)
_CLOSED = {CaseStatus.APPROVED, CaseStatus.REJECTED, CaseStatus.COMPLETED}


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def requested_fields(selections: list[Selection]) -> frozenset[str]:
    """The field names selected on an object, through fragments and inline fragments."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        elif isinstance(selection, FragmentSpread | InlineFragment):
            names |= requested_fields(selection.selections)
    return frozenset(names)


def selected_fields_of(info: GatewayInfo) -> frozenset[str]:
    """The fields selected under the field being resolved."""
    fields = info.selected_fields
    return requested_fields(fields[0].selections) if fields else frozenset()


def _build(cls: type[Any], values: dict[str, Any] | None) -> Any:
    if values is None:
        return None
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{_snake(k): v for k, v in values.items() if _snake(k) in known})


def entity_for(ref: EntityKey, requested: frozenset[str] = frozenset(), purpose: Purpose | None = None) -> Any:
    """The schema object for an entity reference, read under ``purpose``."""
    cls = _ENTITY_TYPES[ref.entity]
    return cls(key=ref.key, requested=requested, purpose=purpose)


Convert = Callable[[Any, Any, GatewayInfo], Any]


def provided(name: str, *, convert: Convert | None = None, description: str = "") -> Any:
    """A field answered by whichever configured source provides ``<Entity>.<name>``, as the caller's policy allows:
    refused fields are null with a FORBIDDEN error, masked ones masked, and every personal value is audited."""

    async def resolver(root: Any, info: GatewayInfo) -> Any:
        released = await info.context.access.read(
            root.ENTITY, root.key, name, purpose=root.purpose, path=info.path.as_list()
        )
        return convert(released.value, root, info) if convert is not None else released.value

    return strawberry.field(resolver=resolver, description=description or None)


def _objects(cls: type[Any]) -> Convert:
    def convert(value: Any, root: Any, info: GatewayInfo) -> Any:
        if isinstance(value, list):
            return [_build(cls, v) for v in value]
        return _build(cls, value)

    return convert


def _nested_purpose(ref: EntityKey, root: Any) -> Purpose | None:
    """The purpose a referenced entity is read under: a case is its own purpose for its applicant; anything else
    reached from an applicant is read under the applicant's purpose."""
    if root.ENTITY == "Case":
        return Purpose(root.key, ref.key)
    purpose: Purpose | None = root.purpose
    return purpose


def _refs(value: Any, root: Any, info: GatewayInfo) -> Any:
    requested = selected_fields_of(info)
    if isinstance(value, list):
        return [entity_for(v, requested, _nested_purpose(v, root)) for v in value]
    return None if value is None else entity_for(value, requested, _nested_purpose(value, root))


async def _provenance(root: Any, info: GatewayInfo) -> list[FieldProvenance]:
    access = info.context.access
    names = [n for n in sorted(root.requested) if info.context.sources.sources.providers(root.ENTITY, n)]
    results = await asyncio.gather(
        *(access.read(root.ENTITY, root.key, n, purpose=root.purpose) for n in names), return_exceptions=True
    )
    found = []
    for released in results:
        if isinstance(released, Forbidden | SourceError):
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


@strawberry.type(description="Where one field's value came from.")
class FieldProvenance:
    field: str = strawberry.field(description="The unified field name, e.g. maritalStatus.")
    source: str = strawberry.field(description="The configured source that answered.")
    department: str = strawberry.field(description="The department system behind the source.")
    fetched_at: dt.datetime = strawberry.field(description="When the department answered.")
    stale: bool = strawberry.field(description="True when a cached value stood in for a failed or slow department.")
    age: float = strawberry.field(description="Seconds since the department answered, when served from cache.")
    masked: bool = strawberry.field(description="True when the value was masked for this caller.")


@strawberry.type(description="Social insurance as recorded by Human Resources and Social Security.")
class SocialInsurance:
    insured: bool | None = None
    contribution_months: int | None = None
    city: str | None = None
    since: dt.date | None = None


@strawberry.type(description="A degree or diploma from the education registry.")
class Degree:
    degree: str | None = None
    school: str | None = None
    major: str | None = None
    graduated_on: dt.date | None = None
    certificate_number: str | None = None


@strawberry.type(description="An electronic licence (电子证照).")
class Licence:
    type: str | None = None
    number: str | None = None
    holder: str | None = None
    holder_id: str | None = None
    issuer: str | None = None
    issued_on: dt.date | None = None
    valid_until: dt.date | None = None
    status: LicenceStatus | None = None


@strawberry.type(description="One step in a case's timeline.")
class CaseEvent:
    type: EventType | None = None
    at: dt.datetime | None = None
    handler: str | None = None
    note: str | None = None


@strawberry.type(description="A natural person, keyed by citizen ID number.")
class Person:
    ENTITY: ClassVar[str] = "Person"
    key: strawberry.Private[str]
    requested: strawberry.Private[frozenset[str]] = frozenset()
    purpose: strawberry.Private[Purpose | None] = None

    @strawberry.field(description="The citizen ID number (GB 11643); masked for callers the policy says.")
    async def id_number(self, info: GatewayInfo) -> IdNumber:
        access = info.context.access
        return IdNumber(
            await access.key("Person", self.key, "idNumber", purpose=self.purpose, path=info.path.as_list())
        )

    name: str | None = provided("name")
    gender: Gender | None = provided("gender")
    birth_date: dt.date | None = provided("birthDate")
    ethnicity: str | None = provided("ethnicity")
    registered_address: str | None = provided("registeredAddress")
    phone: str | None = provided("phone")
    marital_status: MaritalStatus | None = provided("maritalStatus")
    social_insurance: SocialInsurance | None = provided("socialInsurance", convert=_objects(SocialInsurance))
    degrees: list[Degree] | None = provided("degrees", convert=_objects(Degree))
    licences: list[Licence] | None = provided("licences", convert=_objects(Licence))
    cases: list[Case] | None = provided("cases", convert=_refs, description="Cases this person applied for.")
    provenance: list[FieldProvenance] = strawberry.field(
        resolver=_provenance, description="Where each selected field came from."
    )


@strawberry.type(description="A legal entity, keyed by unified social credit code.")
class LegalEntity:
    ENTITY: ClassVar[str] = "LegalEntity"
    key: strawberry.Private[str]
    requested: strawberry.Private[frozenset[str]] = frozenset()
    purpose: strawberry.Private[Purpose | None] = None

    @strawberry.field(description="The unified social credit code (GB 32100).")
    def credit_code(self) -> CreditCode:
        return CreditCode(self.key)

    name: str | None = provided("name")
    entity_type: str | None = provided("entityType")
    legal_representative: Person | None = provided("legalRepresentative", convert=_refs)
    registered_capital: Decimal | None = provided(
        "registeredCapital", description="Registered capital in yuan, exact (a decimal string, never a float)."
    )
    status: EntityStatus | None = provided("status")
    established_on: dt.date | None = provided("establishedOn")
    address: str | None = provided("address")
    business_scope: str | None = provided("businessScope")
    licences: list[Licence] | None = provided("licences", convert=_objects(Licence))
    cases: list[Case] | None = provided("cases", convert=_refs, description="Cases this entity applied for.")
    provenance: list[FieldProvenance] = strawberry.field(
        resolver=_provenance, description="Where each selected field came from."
    )


@strawberry.type(description="A service item (事项): what can be applied for, and in how many days it is promised.")
class ServiceItem:
    ENTITY: ClassVar[str] = "ServiceItem"
    key: strawberry.Private[str]
    requested: strawberry.Private[frozenset[str]] = frozenset()
    purpose: strawberry.Private[Purpose | None] = None

    @strawberry.field(description="The item's code in the service catalogue.")
    def code(self) -> str:
        return self.key

    name: str | None = provided("name")
    department: str | None = provided("department")
    promised_days: int | None = provided("promisedDays")


Applicant = Annotated[
    Person | LegalEntity, strawberry.union("Applicant", description="Who applied: a person or an entity.")
]


async def _warning_state(root: Case, info: GatewayInfo) -> WarningState | None:
    # Derived from the case's own fields: released only to whoever may read its status.
    await info.context.access.decide("Case", root.key, "status", root.purpose)
    sources = info.context.sources
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


@strawberry.type(description="A case (办件): one application for one service item, and its handling.")
class Case:
    ENTITY: ClassVar[str] = "Case"
    key: strawberry.Private[str]
    requested: strawberry.Private[frozenset[str]] = frozenset()
    purpose: strawberry.Private[Purpose | None] = None

    @strawberry.field(description="The case number on the approval platform.")
    def case_number(self) -> str:
        return self.key

    service_item: ServiceItem | None = provided("serviceItem", convert=_refs)
    applicant: Applicant | None = provided("applicant", convert=_refs)
    status: CaseStatus | None = provided("status")
    submitted_at: dt.datetime | None = provided("submittedAt")
    deadline: dt.datetime | None = provided("deadline")
    closed_at: dt.datetime | None = provided("closedAt")
    events: list[CaseEvent] | None = provided("events", convert=_objects(CaseEvent))
    warning_state: WarningState | None = strawberry.field(
        resolver=_warning_state,
        description=(
            "CLOSED once decided or completed; OVERDUE past the deadline; WARNING when at most a fifth of the "
            "handling window (and at least a day) remains; ON_TIME otherwise."
        ),
    )
    provenance: list[FieldProvenance] = strawberry.field(
        resolver=_provenance, description="Where each selected field came from."
    )


_ENTITY_TYPES: dict[str, type[Any]] = {
    "Person": Person,
    "LegalEntity": LegalEntity,
    "ServiceItem": ServiceItem,
    "Case": Case,
}
