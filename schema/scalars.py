"""Scalars of the unified schema: keys that are validated before any department is called.

An invalid ``IdNumber`` or ``CreditCode`` fails GraphQL validation with ``extensions.code = BAD_USER_INPUT`` and the
reason (length, birth date, check character), so no resolver runs and no department is asked.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from gateway.keys import parse_credit_code, parse_id_number

__all__ = ["SCALARS", "CreditCode", "IdNumber"]


def _parse_id_number(value: Any) -> str:
    return parse_id_number(value if isinstance(value, str) else "")


def _parse_credit_code(value: Any) -> str:
    return parse_credit_code(value if isinstance(value, str) else "")


IdNumber = NewType("IdNumber", str)
CreditCode = NewType("CreditCode", str)

SCALARS: dict[object, ScalarDefinition] = {
    IdNumber: strawberry.scalar(
        name="IdNumber",
        description=(
            "An 18-character citizen ID number (GB 11643): region, birth date, sequence and an ISO 7064 MOD 11-2 "
            "check character (X for 10). Invalid numbers are refused with BAD_USER_INPUT."
        ),
        serialize=str,
        parse_value=_parse_id_number,
    ),
    CreditCode: strawberry.scalar(
        name="CreditCode",
        description=(
            "An 18-character unified social credit code (GB 32100) with its MOD 31 check character. "
            "Invalid codes are refused with BAD_USER_INPUT."
        ),
        serialize=str,
        parse_value=_parse_credit_code,
    ),
}
