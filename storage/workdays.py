"""Working time in Lhasa: China's official calendar of holidays and make-up working days (调休).

A time limit is counted in clock hours, in working hours, or in working days (工作日). Working
time runs during office hours (`GRIDBOT_OFFICE_HOURS`, default 09:00-18:00 Asia/Shanghai) on
working days; one working day is one day's office hours. A limit that starts outside office hours
starts at the next opening, so a report on Saturday with 5 working days is due at closing time on
the fifth working day. Working days come from `chinese-calendar`; for a year it does not know yet
we fall back to Monday–Friday and say so in the log (once per year).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import chinese_calendar

from .timeutil import LOCAL_TZ

log = logging.getLogger("gridbot.workdays")

DEFAULT_OFFICE_HOURS = "09:00-18:00"
_warned_years: set[int] = set()


def is_working_day(day: date) -> bool:
    """A working day by China's official calendar (holidays off, 调休 Saturdays on)."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("the holiday calendar does not know %s yet: counting Monday to Friday as working days", day.year)
        return day.weekday() < 5


@lru_cache(maxsize=8)
def _parse_office_hours(text: str) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise ValueError(f"office hours look like 09:00-18:00, not {text!r}")
    opens, closes = time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))
    if closes <= opens:
        raise ValueError("office hours must close after they open")
    return opens, closes


def office_hours() -> tuple[time, time]:
    return _parse_office_hours(os.environ.get("GRIDBOT_OFFICE_HOURS", DEFAULT_OFFICE_HOURS))


def working_day_length() -> timedelta:
    opens, closes = office_hours()
    return datetime.combine(date.min, closes) - datetime.combine(date.min, opens)


def _office_window(day: date) -> tuple[datetime, datetime]:
    opens, closes = office_hours()
    return datetime.combine(day, opens, LOCAL_TZ), datetime.combine(day, closes, LOCAL_TZ)


def add_working_time(start: datetime, span: timedelta) -> datetime:
    """The moment when `span` of working time has passed after `start` (aware datetimes, UTC out)."""
    if span < timedelta(0):
        raise ValueError("working time cannot be negative")
    moment = start.astimezone(LOCAL_TZ)
    remaining = span
    day = moment.date()
    for _ in range(3660):  # ten years of days: a limit never runs that long
        if is_working_day(day):
            opens, closes = _office_window(day)
            begin = max(moment, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
        day += timedelta(days=1)
        moment = datetime.combine(day, time(0), LOCAL_TZ)
    raise ValueError("time limit too long")


def working_time_between(start: datetime, end: datetime) -> timedelta:
    """How much working time lies between two moments (zero when end is before start)."""
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    day, last = start.astimezone(LOCAL_TZ).date(), end.astimezone(LOCAL_TZ).date()
    while day <= last:
        if is_working_day(day):
            opens, closes = _office_window(day)
            begin, finish = max(start, opens), min(end, closes)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total


UNITS = ("hours", "working_hours", "working_days")


@dataclass(frozen=True)
class TimeLimit:
    """A time limit as the matter list gives it: 72 hours, 2 working hours, 5 working days."""

    amount: float
    unit: str = "hours"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unit is one of {', '.join(UNITS)}")
        if not 0 < self.amount <= 24 * 366:
            raise ValueError("a time limit is positive and shorter than a year")

    @property
    def working(self) -> bool:
        return self.unit != "hours"

    def span(self) -> timedelta:
        """Clock time for `hours`, working time for the others."""
        if self.unit == "working_days":
            return working_day_length() * self.amount
        return timedelta(hours=self.amount)

    def due(self, start: datetime) -> datetime:
        return self.at(start, 1.0)

    def at(self, start: datetime, fraction: float) -> datetime:
        """The moment when `fraction` of the limit has passed after `start`."""
        part = self.span() * fraction
        return add_working_time(start, part) if self.working else start + part


ONE_WORKING_DAY = TimeLimit(1, "working_days")
