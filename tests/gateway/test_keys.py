from __future__ import annotations

import datetime as dt

import pytest

from gateway.errors import BadUserInput
from gateway.keys import (
    birth_date_of,
    credit_code_check_char,
    is_credit_code,
    is_id_number,
    parse_applicant,
    parse_credit_code,
    parse_id_number,
    sex_of,
)


def test_sample_id_number_is_valid_and_canonicalised() -> None:
    assert parse_id_number(" 11010519491231002x ") == "11010519491231002X"
    assert birth_date_of("11010519491231002X") == dt.date(1949, 12, 31)
    assert sex_of("11010519491231002X") == "FEMALE"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1101051949123100", "18 characters"),
        ("11010519491231002Y", "check character"),
        ("11010519491231003X", "check character"),
        ("110105194913310021", "not a date"),
        ("1101051949123100AX", "digits"),
        ("110105230012310019", "out of range"),
    ],
)
def test_invalid_id_numbers_say_why(value: str, reason: str) -> None:
    with pytest.raises(BadUserInput, match=reason):
        parse_id_number(value)
    assert not is_id_number(value)


@pytest.mark.parametrize(
    ("value", "born"),
    [
        ("110105188002290014", dt.date(1880, 2, 29)),  # a leap day in the 1880s: held departments know such people
        ("110105180001010010", dt.date(1800, 1, 1)),  # the earliest accepted
        ("110105200002290013", dt.date(2000, 2, 29)),  # a century that is a leap year
    ],
)
def test_any_real_birth_date_since_1800_is_accepted(value: str, born: dt.date) -> None:
    assert parse_id_number(value, today=dt.date(2026, 1, 1)) == value
    assert birth_date_of(value) == born
    assert is_id_number(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("110105179912310016", "before 1800"),
        ("110105190002290017", "not a date"),  # 1900 was not a leap year
        ("110105202601020014", "in the future"),
    ],
)
def test_impossible_and_future_birth_dates_are_refused(value: str, reason: str) -> None:
    with pytest.raises(BadUserInput, match=reason):
        parse_id_number(value, today=dt.date(2026, 1, 1))


def test_a_birth_date_of_today_is_accepted_and_tomorrow_is_not() -> None:
    today = dt.date(2026, 1, 1)
    assert parse_id_number("110105202601010019", today=today) == "110105202601010019"
    with pytest.raises(BadUserInput, match="in the future"):
        parse_id_number("110105202601020014", today=today)


def test_every_single_digit_typo_is_caught() -> None:
    valid = "11010519491231002X"
    for position in range(17):
        for digit in "0123456789":
            if digit == valid[position]:
                continue
            typo = valid[:position] + digit + valid[position + 1 :]
            assert not is_id_number(typo), typo


def test_sample_credit_code_is_valid() -> None:
    assert parse_credit_code("91110000600037341l") == "91110000600037341L"
    assert credit_code_check_char("91110000600037341") == "L"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91110000600037341", "18 characters"),
        ("91110000600037341M", "check character"),
        ("9111000060003734IL", "alphabet"),
        ("O1110000600037341L", "alphabet"),
    ],
)
def test_invalid_credit_codes_say_why(value: str, reason: str) -> None:
    with pytest.raises(BadUserInput, match=reason):
        parse_credit_code(value)
    assert not is_credit_code(value)


@pytest.mark.parametrize(
    ("value", "entity", "key", "kind"),
    [
        (" 11010519491231002x ", "Person", "11010519491231002X", "PERSON"),
        ("91110000600037341l", "LegalEntity", "91110000600037341L", "LEGAL_ENTITY"),
    ],
)
def test_an_applicant_is_an_id_number_or_a_credit_code(value: str, entity: str, key: str, kind: str) -> None:
    named = parse_applicant(value)
    assert (named.entity, named.key, named.kind) == (entity, key, kind)


@pytest.mark.parametrize("value", ["11010519491231002Y", "91110000600037341A", "", "110105194912310", "王小明"])
def test_an_invalid_applicant_is_refused_with_one_message(value: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        parse_applicant(value)
    assert str(refused.value) == "applicant must be a valid citizen ID number or unified social credit code"
