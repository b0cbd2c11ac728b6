"""Occurrences of a calendar series, expanded from its pattern (pure, no I/O).

The rules are Exchange's (EWS `RecurrenceType`): a pattern runs on the series' local calendar,
in its time zone, so a 09:00 meeting stays at 09:00 wall time across daylight-saving changes.
The range starts on its start date and ends on its end date (inclusive), after a number of
occurrences, or never. Occurrences are numbered from 1 in series order (the `InstanceIndex`
of `t:OccurrenceItemId`).

The simulator keeps this expansion of its own: it is the server the client is tested against,
so a mistake in the client's expansion must not be mirrored here.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DAILY, WEEKLY = "DailyRecurrence", "WeeklyRecurrence"
ABSOLUTE_MONTHLY, RELATIVE_MONTHLY = "AbsoluteMonthlyRecurrence", "RelativeMonthlyRecurrence"
ABSOLUTE_YEARLY, RELATIVE_YEARLY = "AbsoluteYearlyRecurrence", "RelativeYearlyRecurrence"
KINDS = (DAILY, WEEKLY, ABSOLUTE_MONTHLY, RELATIVE_MONTHLY, ABSOLUTE_YEARLY, RELATIVE_YEARLY)
# A pattern that can never match (30 February every year) yields nothing; stop looking after
# this many periods in a row without a date.
_BARREN_PERIODS = 4000


@dataclass(frozen=True, slots=True)
class Pattern:
    """A stored `t:Recurrence`, read: the pattern and its range."""

    kind: str  # one of KINDS: the pattern element's local name
    start: date  # the range's first day
    interval: int = 1  # days, weeks, months or years between periods
    days: frozenset[int] = frozenset()  # weekdays (Monday 0); none: the start day's weekday
    day_of_month: int | None = None  # absolute patterns; none: the start day's
    month: int | None = None  # yearly patterns, 1..12; none: the start day's
    week: int | None = None  # relative patterns: 0..3, or -1 for the last
    end: date | None = None  # the range's last day
    count: int | None = None  # the range's number of occurrences


def expand(first: datetime, zone: str, pattern: Pattern, limit: int) -> list[datetime]:
    """UTC starts of the first occurrences (at most `limit`) of the series whose first
    instance starts at `first` (aware) in the IANA `zone`."""
    cap = limit if pattern.count is None else min(limit, pattern.count)
    out: list[datetime] = []
    if cap <= 0:
        return out
    local = first.astimezone(ZoneInfo(zone))
    for day in _days(pattern):
        if pattern.end is not None and day > pattern.end:
            break
        out.append(datetime.combine(day, local.time(), tzinfo=local.tzinfo).astimezone(UTC))
        if len(out) >= cap:
            break
    return out


def _days(pattern: Pattern) -> Iterator[date]:
    step = max(1, pattern.interval)
    if pattern.kind == DAILY:
        return _every(pattern.start, timedelta(days=step))
    if pattern.kind == WEEKLY:
        return _weekly(pattern.start, step, _weekdays(pattern))
    if pattern.kind in (ABSOLUTE_MONTHLY, RELATIVE_MONTHLY):
        return _periods(pattern, step)
    return _periods(pattern, 12 * step)


def _every(day: date, step: timedelta) -> Iterator[date]:
    while True:
        yield day
        day += step


def _weekly(start: date, step: int, days: frozenset[int]) -> Iterator[date]:
    # Weeks count from the one holding the start day; a week runs Sunday to Saturday (the
    # default first day of the week in Exchange).
    sunday = start - timedelta(days=(start.weekday() + 1) % 7)
    while True:
        for offset in range(7):
            day = sunday + timedelta(days=offset)
            if day >= start and day.weekday() in days:
                yield day
        sunday += timedelta(weeks=step)


def _periods(pattern: Pattern, months: int) -> Iterator[date]:
    """Monthly and yearly patterns: at most one date in each period of `months` months."""
    year, month = pattern.start.year, pattern.start.month
    if pattern.kind in (ABSOLUTE_YEARLY, RELATIVE_YEARLY) and pattern.month:
        year += pattern.month < month
        month = pattern.month
    barren = 0
    while barren < _BARREN_PERIODS:
        day = _day_in(pattern, year, month)
        if day is not None and day >= pattern.start:
            barren = 0
            yield day
        else:
            barren += 1
        year, month = divmod(year * 12 + month - 1 + months, 12)
        month += 1


def _day_in(pattern: Pattern, year: int, month: int) -> date | None:
    length = calendar.monthrange(year, month)[1]
    if pattern.kind in (ABSOLUTE_MONTHLY, ABSOLUTE_YEARLY):
        # Day 29..31 of a shorter month falls on its last day.
        wanted = pattern.day_of_month or pattern.start.day
        return date(year, month, min(wanted, length))
    days = _weekdays(pattern)
    hits = [d for d in range(1, length + 1) if date(year, month, d).weekday() in days]
    week = 0 if pattern.week is None else pattern.week
    if week >= len(hits):
        return None
    return date(year, month, hits[week])


def _weekdays(pattern: Pattern) -> frozenset[int]:
    return pattern.days or frozenset({pattern.start.weekday()})
