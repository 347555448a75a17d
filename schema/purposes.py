"""Purposes in the schema: the ``purpose`` argument every applicant read takes, and ``registerIntake``, which
gives a window a purpose before the case exists (:mod:`auth.purposes`).

    mutation { registerIntake(serviceItem: "11010501300003", applicant: "11010519491231002X") {
      number token expiresAt } }

    { prefill(form: "social_assistance", applicant: "11010519491231002X", purpose: {intake: "<token>"}) { ... } }
"""

from __future__ import annotations

import datetime as dt

import strawberry

from auth.access import Purpose
from auth.purposes import IntakePurposes
from gateway.errors import BadUserInput
from gateway.keys import parse_applicant
from schema.context import GatewayInfo

__all__ = ["IntakePurpose", "PurposeInput", "purpose_of", "register_intake"]


@strawberry.input(
    description="Why the caller reads an applicant: the case being handled (办件编号), or an intake registered at "
    "the window before the case exists (registerIntake). Give one."
)
class PurposeInput:
    case_number: str | None = strawberry.field(
        default=None,
        description="A case of this applicant, handled by the caller's department (or taken in by their window); "
        "conditional fields need it.",
    )
    intake: str | None = strawberry.field(
        default=None, description="The token of an intake purpose this caller registered (registerIntake)."
    )


def purpose_of(purpose: PurposeInput | None, applicant: str) -> Purpose | None:
    """The purpose ``purpose`` states for reading ``applicant`` (``None``: none stated)."""
    if purpose is None:
        return None
    case_number = (purpose.case_number or "").strip()
    intake = (purpose.intake or "").strip()
    if case_number and intake:
        raise BadUserInput("a purpose is a case number or an intake, not both")
    if intake:
        return Purpose(IntakePurposes.number_of(intake), applicant, intake)
    if not case_number:
        raise BadUserInput("purpose.caseNumber must not be empty")
    return Purpose(case_number, applicant)


@strawberry.type(description="An intake purpose: a service item and an applicant, registered at the window.")
class IntakePurpose:
    number: str = strawberry.field(description="The intake's number, as the audit records it.")
    token: str = strawberry.field(description="What to give as purpose: {intake: <token>}; only its registrar may.")
    service_item: str
    department: str = strawberry.field(description="The department the service item belongs to.")
    applicant_kind: str = strawberry.field(description="Person or LegalEntity.")
    expires_at: dt.datetime = strawberry.field(description="After this the intake is no longer a purpose.")


async def register_intake(info: GatewayInfo, service_item: str, applicant: str) -> IntakePurpose:
    """The ``registerIntake`` mutation: a purpose for ``applicant`` applying for ``service_item``, before the case
    exists; audited under the applicant (a refusal too)."""
    item = service_item.strip()
    if not item:
        raise BadUserInput("a service item code is required")
    entity, key = parse_applicant(applicant)
    intake = await info.context.access.register_intake(entity, key, item)
    return IntakePurpose(
        number=intake.number,
        token=intake.token,
        service_item=intake.item,
        department=intake.department,
        applicant_kind=intake.entity,
        expires_at=intake.expires_at,
    )
