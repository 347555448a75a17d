"""The catalog of unified fields: what each entity has, and of what type, so that configuration can be checked.

A source's ``provides`` section names fields of this catalog (``Person.maritalStatus``). At start-up every name,
code table and sub-field is checked against it; while answering, the mapping converts a department's raw value
into the type declared here.

    >>> CATALOG["Person"].fields["maritalStatus"].enum.__name__
    'MaritalStatus'
    >>> CATALOG["Person"].fields["degrees"].many
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from gateway.keys import parse_credit_code, parse_id_number
from schema.enums import (
    ApplicantKind,
    CaseStatus,
    EntityStatus,
    EventType,
    Gender,
    LicenceStatus,
    MaritalStatus,
)

__all__ = ["APPLICANT", "CATALOG", "EntitySpec", "FieldSpec", "ValueType"]


class ValueType(StrEnum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    DECIMAL = "decimal"


# A reference to either a person or a legal entity, told apart by an ApplicantKind.
APPLICANT = "Applicant"


@dataclass(frozen=True)
class FieldSpec:
    """One unified field: a scalar (``type``), an enum, an object with sub-fields, or a reference to an entity."""

    value_type: ValueType | None = None
    enum: type[Enum] | None = None
    fields: Mapping[str, FieldSpec] | None = None
    ref: str | None = None
    many: bool = False
    description: str = ""

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


def _s(description: str = "") -> FieldSpec:
    return FieldSpec(value_type=ValueType.STRING, description=description)


_LICENCE_FIELDS: Mapping[str, FieldSpec] = {
    "type": _s("Licence type, e.g. 营业执照 or 驾驶证."),
    "number": _s("Licence number as issued."),
    "holder": _s("Holder's name."),
    "holderId": _s("Holder's ID number or credit code."),
    "issuer": _s("Issuing department."),
    "issuedOn": FieldSpec(value_type=ValueType.DATE),
    "validUntil": FieldSpec(value_type=ValueType.DATE),
    "status": FieldSpec(enum=LicenceStatus),
}

_PERSON = EntitySpec(
    name="Person",
    key="idNumber",
    parse_key=parse_id_number,
    fields={
        "name": _s("Name as registered in the household registry."),
        "gender": FieldSpec(enum=Gender),
        "birthDate": FieldSpec(value_type=ValueType.DATE),
        "ethnicity": _s(),
        "registeredAddress": _s("Address of household registration."),
        "phone": _s(),
        "maritalStatus": FieldSpec(enum=MaritalStatus),
        "socialInsurance": FieldSpec(
            fields={
                "insured": FieldSpec(value_type=ValueType.BOOL),
                "contributionMonths": FieldSpec(value_type=ValueType.INT),
                "city": _s("City where contributions are paid."),
                "since": FieldSpec(value_type=ValueType.DATE),
            }
        ),
        "degrees": FieldSpec(
            many=True,
            fields={
                "degree": _s(),
                "school": _s(),
                "major": _s(),
                "graduatedOn": FieldSpec(value_type=ValueType.DATE),
                "certificateNumber": _s(),
            },
        ),
        "licences": FieldSpec(many=True, fields=_LICENCE_FIELDS),
        "cases": FieldSpec(many=True, ref="Case"),
    },
)

_LEGAL_ENTITY = EntitySpec(
    name="LegalEntity",
    key="creditCode",
    parse_key=parse_credit_code,
    fields={
        "name": _s(),
        "entityType": _s("Kind of entity, e.g. 有限责任公司."),
        "legalRepresentative": FieldSpec(ref="Person"),
        "registeredCapital": FieldSpec(value_type=ValueType.DECIMAL),
        "status": FieldSpec(enum=EntityStatus),
        "establishedOn": FieldSpec(value_type=ValueType.DATE),
        "address": _s(),
        "businessScope": _s(),
        "licences": FieldSpec(many=True, fields=_LICENCE_FIELDS),
        "cases": FieldSpec(many=True, ref="Case"),
    },
)

_SERVICE_ITEM = EntitySpec(
    name="ServiceItem",
    key="code",
    parse_key=str.strip,
    fields={
        "name": _s(),
        "department": _s(),
        "promisedDays": FieldSpec(value_type=ValueType.INT),
    },
)

_CASE = EntitySpec(
    name="Case",
    key="caseNumber",
    parse_key=str.strip,
    fields={
        "serviceItem": FieldSpec(ref="ServiceItem"),
        "applicant": FieldSpec(ref=APPLICANT),
        "status": FieldSpec(enum=CaseStatus),
        "submittedAt": FieldSpec(value_type=ValueType.DATETIME),
        "deadline": FieldSpec(value_type=ValueType.DATETIME),
        "closedAt": FieldSpec(value_type=ValueType.DATETIME),
        "events": FieldSpec(
            many=True,
            fields={
                "type": FieldSpec(enum=EventType),
                "at": FieldSpec(value_type=ValueType.DATETIME),
                "handler": _s("Who handled this step."),
                "note": _s(),
            },
        ),
    },
)

CATALOG: Mapping[str, EntitySpec] = {e.name: e for e in (_PERSON, _LEGAL_ENTITY, _SERVICE_ITEM, _CASE)}

# The kind of an Applicant reference is an ApplicantKind name.
APPLICANT_KINDS: Mapping[str, str] = {
    ApplicantKind.PERSON.value: "Person",
    ApplicantKind.LEGAL_ENTITY.value: "LegalEntity",
}
