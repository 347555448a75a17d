"""Working days (:mod:`gateway.calendar`): weekends, public holidays and adjusted working days (调休), and a case's
clock stopped while the applicant supplies materials."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from gateway.calendar import CalendarConfig, Pause, WorkingCalendar, deadline_status

# The National Day week of an example year: Thu 1 to Wed 7 October off, Sun 27 September and Sat 10 October worked.
NATIONAL_DAY = CalendarConfig(
    holidays=[dt.date(2026, 10, d) for d in (1, 2, 5, 6, 7)],
    workdays=[dt.date(2026, 9, 27), dt.date(2026, 10, 10)],
)
CAL = WorkingCalendar(NATIONAL_DAY)


def _at(day: int, month: int = 10, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def test_holidays_are_off_and_adjusted_weekend_days_are_worked() -> None:
    week = [dt.date(2026, 9, 26) + dt.timedelta(days=i) for i in range(16)]  # Sat 26 Sep to Sun 11 Oct
    worked = [d.day for d in week if CAL.is_working_day(d)]
    assert worked == [27, 28, 29, 30, 8, 9, 10]
    plain = WorkingCalendar(CalendarConfig())
    assert [d.day for d in week if plain.is_working_day(d)] == [28, 29, 30, 1, 2, 5, 6, 7, 8, 9]


def test_counting_and_adding_working_days_agree() -> None:
    start = dt.date(2026, 9, 25)  # a Friday
    assert CAL.working_days(start, dt.date(2026, 10, 10)) == 7
    assert CAL.add_working_days(start, 7) == dt.date(2026, 10, 10)
    assert CAL.add_working_days(start, 5) == dt.date(2026, 10, 8)
    for n in range(30):
        assert CAL.working_days(start, CAL.add_working_days(start, n)) == n
    assert CAL.working_days(start, start) == 0
    assert CAL.working_days(start, start - dt.timedelta(days=3)) == 0


def test_a_day_cannot_be_both_a_holiday_and_a_working_day() -> None:
    with pytest.raises(ValidationError, match="2026-10-01 is both"):
        CalendarConfig(holidays=[dt.date(2026, 10, 1)], workdays=[dt.date(2026, 10, 1)])
    with pytest.raises(ValidationError):
        CalendarConfig(weekend=["saturday"])  # type: ignore[list-item]


def test_the_clock_runs_over_working_days_only() -> None:
    # submitted Fri 25 Sep, 5 promised working days: 27, 28, 29, 30 Sep and 8 Oct; by Thu 8 Oct one is left
    status = deadline_status(CAL, _at(25, 9), 5, [], _at(8))
    assert (status.used, status.left, status.due, status.paused) == (5, 0, dt.date(2026, 10, 8), False)
    assert status.state(warning_days=1) == "WARNING"
    assert deadline_status(CAL, _at(25, 9), 5, [], _at(9)).state(1) == "OVERDUE"
    assert deadline_status(CAL, _at(25, 9), 10, [], _at(28, 9)).state(3) == "ON_TIME"


def test_the_clock_stops_while_materials_are_awaited() -> None:
    # asked for materials Mon 28 Sep, received Fri 9 Oct: of 27, 28, 29, 30 Sep, 8, 9 Oct only 27 and 28 count
    done = [Pause(_at(28, 9), _at(9))]
    status = deadline_status(CAL, _at(25, 9), 5, done, _at(9))
    assert (status.used, status.left, status.paused) == (2, 3, False)
    assert status.due == dt.date(2026, 10, 13)  # Sat 10 (worked), Mon 12, Tue 13
    # still waiting: the days since the request do not count, and the case cannot fall overdue
    waiting = [Pause(_at(28, 9), None)]
    for day in (30, 9):
        now = _at(day, 9 if day == 30 else 10)
        status = deadline_status(CAL, _at(25, 9), 5, waiting, now)
        assert (status.used, status.left, status.paused) == (2, 3, True)
