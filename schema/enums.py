"""Enumerations of the unified schema. Department code tables map onto these names."""

from __future__ import annotations

from enum import Enum

import strawberry

__all__ = [
    "ApplicantKind",
    "CaseStatus",
    "EntityStatus",
    "EventType",
    "Gender",
    "LicenceStatus",
    "MaritalStatus",
    "WarningState",
]


@strawberry.enum(description="Sex as recorded by the household registry.")
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"


@strawberry.enum(description="Marital status as recorded by the marriage registry.")
class MaritalStatus(Enum):
    SINGLE = "SINGLE"
    MARRIED = "MARRIED"
    DIVORCED = "DIVORCED"
    WIDOWED = "WIDOWED"


@strawberry.enum(description="Where a case stands in its handling.")
class CaseStatus(Enum):
    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    COMPLETED = "COMPLETED"


@strawberry.enum(description="One step in a case's timeline.")
class EventType(Enum):
    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    SUPPLEMENT_RECEIVED = "SUPPLEMENT_RECEIVED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    COMPLETED = "COMPLETED"


@strawberry.enum(description="A case against its deadline: derived from status, deadline and now.")
class WarningState(Enum):
    ON_TIME = "ON_TIME"
    WARNING = "WARNING"
    OVERDUE = "OVERDUE"
    CLOSED = "CLOSED"


@strawberry.enum(description="Status of an electronic licence.")
class LicenceStatus(Enum):
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"


@strawberry.enum(description="Registration status of a legal entity.")
class EntityStatus(Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"
    MOVED_OUT = "MOVED_OUT"


@strawberry.enum(description="Whether an applicant is a natural person or a legal entity.")
class ApplicantKind(Enum):
    PERSON = "PERSON"
    LEGAL_ENTITY = "LEGAL_ENTITY"
