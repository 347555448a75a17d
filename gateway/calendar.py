"""Working days: the hall's calendar, against which a case's promised time limit (承诺时限) is counted.

A day is a working day unless it falls on the weekend or is a configured public holiday; a configured *adjusted
working day* (调休, a weekend day worked to bridge a holiday) is a working day whatever its weekday::

    workflow:
      calendar:
        weekend: [sat, sun]
        holidays: [2026-10-01, 2026-10-02, 2026-10-05]     # 国庆节
        workdays: [2026-09-27, 2026-10-10]                  # 调休: Sundays and Saturdays worked

A case's clock stops while the applicant supplies materials (补正): from its SUPPLEMENT_REQUESTED event until its
SUPPLEMENT_RECEIVED event (or until now, while it waits). :func:`deadline_status` counts the working days used and
left, and the warning state that follows.

    >>> cal = WorkingCalendar(CalendarConfig(holidays=[dt.date(2026, 10, 1)], workdays=[dt.date(2026, 9, 27)]))
    >>> cal.is_working_day(dt.date(2026, 9, 27)), cal.is_working_day(dt.date(2026, 10, 1))   # a Sunday; a Thursday
    (True, False)
    >>> cal.working_days(dt.date(2026, 9, 25), dt.date(2026, 10, 2))    # Sun 27, Mon 28, Tue 29, Wed 30, Fri 2
    5
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CalendarConfig", "DeadlineStatus", "Pause", "WorkingCalendar", "deadline_status"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKEND: tuple[Weekday, ...] = ("sat", "sun")
# No time limit in a hall runs for years; a count beyond this is a configuration or data error, not a loop to run.
_MAX_SPAN_DAYS = 3660


class CalendarConfig(BaseModel):
    """The weekend, the public holidays and the adjusted working days (调休)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekend: list[Weekday] = Field(default_factory=lambda: list(_WEEKEND))
    holidays: list[dt.date] = Field(default_factory=list)
    workdays: list[dt.date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarConfig:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"{both[0].isoformat()} is both a holiday and an adjusted working day")
        return self


class WorkingCalendar:
    """Which days are working days, and counting them."""

    def __init__(self, config: CalendarConfig) -> None:
        self._weekend = frozenset(_WEEKDAYS.index(day) for day in config.weekend)
        self._holidays = frozenset(config.holidays)
        self._workdays = frozenset(config.workdays)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._workdays:
            return True
        return day not in self._holidays and day.weekday() not in self._weekend

    def working_days(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not after ``start``)."""
        if end <= start:
            return 0
        span = min((end - start).days, _MAX_SPAN_DAYS)
        return sum(self.is_working_day(start + dt.timedelta(days=i)) for i in range(1, span + 1))

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The ``days``-th working day after ``start`` (``start`` itself for 0).

        >>> WorkingCalendar(CalendarConfig()).add_working_days(dt.date(2026, 12, 4), 1)   # Friday -> Monday
        datetime.date(2026, 12, 7)
        """
        day, left = start, days
        for _ in range(_MAX_SPAN_DAYS):
            if left <= 0:
                return day
            day += dt.timedelta(days=1)
            left -= self.is_working_day(day)
        raise ValueError(f"no {days} working days within {_MAX_SPAN_DAYS} days of {start.isoformat()}")


@dataclass(frozen=True)
class Pause:
    """The applicant was supplying materials from ``start`` until ``end`` (``None``: still)."""

    start: dt.datetime
    end: dt.datetime | None


@dataclass(frozen=True)
class DeadlineStatus:
    """A case against its promised working days: used, left (negative once overdue), the day it falls due if
    the clock runs on from today, and whether the clock is stopped now."""

    used: int
    left: int
    due: dt.date
    paused: bool

    def state(self, warning_days: int) -> Literal["ON_TIME", "WARNING", "OVERDUE"]:
        if self.left < 0:
            return "OVERDUE"
        return "WARNING" if self.left <= warning_days else "ON_TIME"


def deadline_status(
    calendar: WorkingCalendar, submitted: dt.datetime, promised_days: int, pauses: Sequence[Pause], now: dt.datetime
) -> DeadlineStatus:
    """Working days used since ``submitted`` (the day of submission not counted) less those paused, against
    ``promised_days``.

    >>> cal = WorkingCalendar(CalendarConfig())
    >>> monday, friday = dt.datetime(2026, 11, 30, 9), dt.datetime(2026, 12, 4, 17)
    >>> deadline_status(cal, monday, 5, [], friday)
    DeadlineStatus(used=4, left=1, due=datetime.date(2026, 12, 7), paused=False)
    >>> deadline_status(cal, monday, 5, [Pause(dt.datetime(2026, 12, 1, 10), None)], friday).used   # stopped Tue
    1
    """
    today = now.date()
    used = calendar.working_days(submitted.date(), today)
    for pause in pauses:
        end = pause.end if pause.end is not None else now
        used -= calendar.working_days(max(pause.start.date(), submitted.date()), min(end.date(), today))
    left = promised_days - used
    due = calendar.add_working_days(today, left) if left >= 0 else today
    paused = any(pause.end is None for pause in pauses)
    return DeadlineStatus(used=used, left=left, due=due, paused=paused)
