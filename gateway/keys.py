"""The natural keys of the domain: citizen ID numbers and unified social credit codes.

A person is keyed by the 18-character citizen ID number (GB 11643): six digits of region, eight of birth date,
three of sequence (odd for men, even for women) and a check character under ISO 7064 MOD 11-2, ``X`` for 10.
A legal entity is keyed by the 18-character unified social credit code (GB 32100) over the alphabet
``0123456789ABCDEFGHJKLMNPQRTUWXY`` with a weighted MOD 31 check character.

    >>> parse_id_number("11010519491231002x")
    '11010519491231002X'
    >>> id_number_check_char("11010519491231002")
    'X'
    >>> parse_credit_code("91110000600037341L")
    '91110000600037341L'
    >>> parse_applicant(" 91110000600037341l ")
    Applicant(entity='LegalEntity', key='91110000600037341L')
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, NamedTuple

from gateway.errors import BadUserInput

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "EARLIEST_BIRTH",
    "Applicant",
    "birth_date_of",
    "credit_code_check_char",
    "id_number_check_char",
    "is_credit_code",
    "is_id_number",
    "parse_applicant",
    "parse_credit_code",
    "parse_id_number",
    "sex_of",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CC_INDEX = {c: i for i, c in enumerate(CREDIT_CODE_ALPHABET)}

# The earliest birth date accepted: departments still hold records of people born in the 1800s (the registry keeps
# the dead and the very old), so any real calendar date from here to today is a birth date; later is impossible.
EARLIEST_BIRTH = dt.date(1800, 1, 1)


def id_number_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the body of an ID number is 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def parse_id_number(value: str, *, today: dt.date | None = None) -> str:
    """Return the canonical (upper-case ``X``) ID number, or raise :class:`BadUserInput` saying what is wrong.

    The birth date is any real calendar date from :data:`EARLIEST_BIRTH` to ``today`` (the local date by default).

        >>> parse_id_number("110105188002290014")  # born on 29 February 1880
        '110105188002290014'
    """
    text = value.strip().upper() if isinstance(value, str) else ""
    if len(text) != 18:
        raise BadUserInput(f"an ID number has 18 characters, got {len(text)}")
    body, check = text[:17], text[17]
    if not body.isascii() or not body.isdigit():
        raise BadUserInput("the first 17 characters of an ID number are digits")
    try:
        born = dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise BadUserInput(f"an ID number carries a birth date; {body[6:14]} is not a date") from None
    if born < EARLIEST_BIRTH:
        raise BadUserInput(f"birth date {born.isoformat()} in the ID number is out of range (before 1800)")
    if born > (today or dt.date.today()):
        raise BadUserInput(f"birth date {born.isoformat()} in the ID number is out of range (in the future)")
    expected = id_number_check_char(body)
    if check != expected:
        raise BadUserInput("the ID number's check character does not match (a digit is mistyped)")
    return text


def is_id_number(value: str) -> bool:
    try:
        parse_id_number(value)
    except BadUserInput:
        return False
    return True


def birth_date_of(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def sex_of(id_number: str) -> str:
    """``MALE`` or ``FEMALE`` from the parity of the sequence digits."""
    return "MALE" if int(id_number[16]) % 2 else "FEMALE"


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    if len(first17) != 17 or any(c not in _CC_INDEX for c in first17):
        raise ValueError("the body of a credit code is 17 characters of its alphabet")
    total = sum(_CC_INDEX[c] * w for c, w in zip(first17, _CC_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def parse_credit_code(value: str) -> str:
    """Return the canonical credit code, or raise :class:`BadUserInput` saying what is wrong."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if len(text) != 18:
        raise BadUserInput(f"a unified social credit code has 18 characters, got {len(text)}")
    bad = sorted({c for c in text if c not in _CC_INDEX})
    if bad:
        raise BadUserInput(f"characters {''.join(bad)!r} are not in the credit code alphabet (no I, O, S, V, Z)")
    if text[17] != credit_code_check_char(text[:17]):
        raise BadUserInput("the credit code's check character does not match (a character is mistyped)")
    return text


def is_credit_code(value: str) -> bool:
    try:
        parse_credit_code(value)
    except BadUserInput:
        return False
    return True


class Applicant(NamedTuple):
    """An applicant's canonical key and the entity it keys: ``Person`` (an ID number) or ``LegalEntity`` (a credit
    code). ``kind`` is the approval platform's value, ``PERSON`` or ``LEGAL_ENTITY``."""

    entity: Literal["Person", "LegalEntity"]
    key: str

    @property
    def kind(self) -> Literal["PERSON", "LEGAL_ENTITY"]:
        return "PERSON" if self.entity == "Person" else "LEGAL_ENTITY"


def parse_applicant(value: str) -> Applicant:
    """The applicant ``value`` names: a citizen ID number or a unified social credit code, canonical; else
    :class:`BadUserInput` (one message for both: an applicant field takes either, so neither parser's detail fits).

        >>> parse_applicant("11010519491231002x")
        Applicant(entity='Person', key='11010519491231002X')
    """
    try:
        return Applicant("Person", parse_id_number(value))
    except BadUserInput:
        pass
    try:
        return Applicant("LegalEntity", parse_credit_code(value))
    except BadUserInput:
        pass
    raise BadUserInput("applicant must be a valid citizen ID number or unified social credit code")
