"""The demo dataset's records, and the legacy code tables the simulated departments answer in.

Records hold unified values (``"MARRIED"``, ``"COMPLETED"``) so tests can compare the gateway's answers with them;
each department renders them in its own codes from the tables below, which ``demo/onewindow.yaml`` maps back.

    >>> MARITAL_CODES["22"]
    'MARRIED'
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from demo.reference import ETHNICITIES, Region

__all__ = [
    "APPLICANT_KIND_CODES",
    "CASE_STATUS_CODES",
    "ENTITY_STATUS_LABELS",
    "EVENT_CODES",
    "GENDER_CODES",
    "LICENCE_STATUS_CODES",
    "MARITAL_CODES",
    "SAMPLE_ENTITY_CODE",
    "SAMPLE_PERSON_ID",
    "Case",
    "CaseEvent",
    "Dataset",
    "Degree",
    "LegalEntity",
    "Licence",
    "Marriage",
    "Person",
    "ServiceItem",
    "SocialInsurance",
    "code_of",
]

SAMPLE_PERSON_ID = "11010519491231002X"
SAMPLE_ENTITY_CODE = "91110000600037341L"

# Raw code -> unified name, per department code table.
GENDER_CODES: Mapping[str, str] = {"1": "MALE", "2": "FEMALE"}
# GB/T 2261.2: 10 unmarried, 20 married (21 first marriage, 22 remarried), 30 widowed, 40 divorced.
MARITAL_CODES: Mapping[str, str] = {"10": "SINGLE", "20": "MARRIED", "22": "MARRIED", "30": "WIDOWED", "40": "DIVORCED"}
LICENCE_STATUS_CODES: Mapping[str, str] = {"A": "VALID", "B": "SUSPENDED", "C": "REVOKED", "D": "EXPIRED"}
ENTITY_STATUS_LABELS: Mapping[str, str] = {
    "存续": "ACTIVE",
    "在业": "ACTIVE",
    "吊销": "REVOKED",
    "注销": "CANCELLED",
    "迁出": "MOVED_OUT",
}
CASE_STATUS_CODES: Mapping[str, str] = {
    "01": "RECEIVED",
    "02": "ACCEPTED",
    "03": "SUPPLEMENT_REQUESTED",
    "04": "APPROVED",
    "05": "REJECTED",
    "09": "COMPLETED",
}
EVENT_CODES: Mapping[str, str] = {
    "SJ": "RECEIVED",
    "SL": "ACCEPTED",
    "BZGZ": "SUPPLEMENT_REQUESTED",
    "BZJS": "SUPPLEMENT_RECEIVED",
    "ZY": "APPROVED",
    "BY": "REJECTED",
    "BJ": "COMPLETED",
}
APPLICANT_KIND_CODES: Mapping[str, str] = {"1": "PERSON", "2": "LEGAL_ENTITY"}


def code_of(table: Mapping[str, str], unified: str) -> str:
    """The first raw code of ``table`` for a unified name: ``code_of(CASE_STATUS_CODES, "COMPLETED") == "09"``."""
    for raw, name in table.items():
        if name == unified:
            return raw
    raise KeyError(unified)


@dataclass(frozen=True)
class Marriage:
    """The marriage registry's record: a GB/T 2261.2 code, where and when a marriage was registered, and for a
    married person the spouse's ID number (the spouse's record names this person in turn)."""

    code: str
    registered_on: dt.date | None
    registry: str | None
    spouse_id: str | None = None

    @property
    def status(self) -> str:
        return MARITAL_CODES[self.code]


@dataclass(frozen=True)
class SocialInsurance:
    insured: bool
    months: int
    city: str
    since: dt.date


@dataclass(frozen=True)
class Degree:
    degree: str
    school: str
    major: str
    graduated_on: dt.date
    certificate_number: str


@dataclass(frozen=True)
class Licence:
    """An electronic licence; ``valid_until`` is None for a licence valid for life (长期)."""

    type: str
    number: str
    holder_name: str
    holder_id: str
    issuer: str
    issued_on: dt.date
    valid_until: dt.date | None
    status: str


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    gender: str
    ethnicity_code: str
    birth_date: dt.date
    region: Region
    address: str
    phone: str
    marriage: Marriage
    social_insurance: SocialInsurance | None
    degrees: tuple[Degree, ...]
    licences: tuple[Licence, ...]
    # 户号: the household registry's number of the household this person is registered in.
    household_number: str = ""

    @property
    def ethnicity(self) -> str:
        return ETHNICITIES[self.ethnicity_code]


@dataclass(frozen=True)
class LegalEntity:
    """A registered entity; ``status_label`` is the registry's own word (存续, 在业, 吊销...)."""

    credit_code: str
    name: str
    entity_type: str
    legal_representative: str
    registered_capital: Decimal
    status_label: str
    established_on: dt.date
    address: str
    business_scope: str
    licences: tuple[Licence, ...]

    @property
    def status(self) -> str:
        return ENTITY_STATUS_LABELS[self.status_label]


@dataclass(frozen=True)
class ServiceItem:
    code: str
    name: str
    department: str
    promised_days: int
    for_entities: bool


@dataclass(frozen=True)
class CaseEvent:
    type: str
    at: dt.datetime
    handler: str
    note: str


@dataclass(frozen=True)
class Case:
    """A case (办件); ``closed_at`` is set once it is COMPLETED."""

    case_number: str
    service_item: str
    applicant_kind: str
    applicant_id: str
    status: str
    submitted_at: dt.datetime
    deadline: dt.datetime
    closed_at: dt.datetime | None
    events: tuple[CaseEvent, ...]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Everything the demo departments hold, with lookups by key."""

    seed: int
    today: dt.date
    persons: tuple[Person, ...]
    entities: tuple[LegalEntity, ...]
    service_items: tuple[ServiceItem, ...]
    cases: tuple[Case, ...]

    @cached_property
    def persons_by_id(self) -> Mapping[str, Person]:
        return {p.id_number: p for p in self.persons}

    @cached_property
    def entities_by_code(self) -> Mapping[str, LegalEntity]:
        return {e.credit_code: e for e in self.entities}

    @cached_property
    def service_items_by_code(self) -> Mapping[str, ServiceItem]:
        return {s.code: s for s in self.service_items}

    @cached_property
    def cases_by_number(self) -> Mapping[str, Case]:
        return {c.case_number: c for c in self.cases}

    @cached_property
    def cases_by_applicant(self) -> Mapping[str, tuple[Case, ...]]:
        grouped: defaultdict[str, list[Case]] = defaultdict(list)
        for case in self.cases:
            grouped[case.applicant_id].append(case)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def households(self) -> Mapping[str, tuple[str, ...]]:
        """Each household number's members, by ID number, in the order of :attr:`persons`."""
        grouped: defaultdict[str, list[str]] = defaultdict(list)
        for person in self.persons:
            grouped[person.household_number].append(person.id_number)
        return {k: tuple(v) for k, v in grouped.items()}

    def household_members(self, id_number: str) -> tuple[str, ...]:
        """The other members of a person's household (empty for a person living alone or unknown)."""
        person = self.persons_by_id.get(id_number)
        if person is None:
            return ()
        return tuple(m for m in self.households[person.household_number] if m != id_number)

    @cached_property
    def entities_by_representative(self) -> Mapping[str, tuple[LegalEntity, ...]]:
        """The entities each person is legal representative of."""
        grouped: defaultdict[str, list[LegalEntity]] = defaultdict(list)
        for entity in self.entities:
            grouped[entity.legal_representative].append(entity)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def licences_by_holder(self) -> Mapping[str, tuple[Licence, ...]]:
        held: dict[str, tuple[Licence, ...]] = {p.id_number: p.licences for p in self.persons if p.licences}
        held.update((e.credit_code, e.licences) for e in self.entities if e.licences)
        return held

    @property
    def sample_person(self) -> Person:
        return self.persons_by_id[SAMPLE_PERSON_ID]

    @property
    def sample_entity(self) -> LegalEntity:
        return self.entities_by_code[SAMPLE_ENTITY_CODE]

    @property
    def sample_purpose(self) -> Case:
        """The sample person's open case at the Civil Affairs Bureau: what the demo clerk states as purpose."""
        return next(
            c
            for c in self.cases_by_applicant[SAMPLE_PERSON_ID]
            if self.service_items_by_code[c.service_item].department == "民政局" and c.closed_at is None
        )
