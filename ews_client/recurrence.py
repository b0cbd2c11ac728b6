"""Expansion of recurring series into occurrence start times (pure, no I/O).

Occurrences are computed on the series' local calendar, in its IANA time zone, so that a
09:00 meeting stays at 09:00 local time across daylight-saving changes (Exchange stores the
pattern in local time with the series' time zone). EWS numbers occurrences from 1 in series
order (`t:OccurrenceItemId/@InstanceIndex`); here the index is the position + 1.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ews_client.models import Recurrence

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEK_INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
# EWS `DayOfWeekType` also has the pseudo days Day, Weekday and WeekendDay for relative patterns.
_PSEUDO_DAYS = {
    "day": frozenset(range(7)),
    "weekday": frozenset(range(5)),
    "weekendday": frozenset({5, 6}),
}
# Safety valve for patterns that can never match (e.g. 31 February yearly).
_MAX_EMPTY_PERIODS = 4000


def expand(
    start: datetime, time_zone: str, rec: Recurrence, *, limit: int = 1000
) -> list[datetime]:
    """Aware UTC start times of the occurrences of a series, in order.

    `start` is the (aware) start of the series' first instance; its local wall time is kept for
    every occurrence. The range ends at `rec.end_date` (inclusive), after `rec.occurrences`,
    or, with neither, after `limit` occurrences.
    """
    out: list[datetime] = []
    cap = limit if rec.occurrences is None else min(limit, rec.occurrences)
    for occurrence in iter_occurrences(start, time_zone, rec):
        if len(out) >= cap:
            break
        out.append(occurrence)
    return out


def instance_index(
    start: datetime, time_zone: str, rec: Recurrence, original_start: datetime
) -> int | None:
    """The 1-based instance index of the occurrence starting at `original_start`, or None."""
    target = original_start.astimezone(UTC)
    for position, occurrence in enumerate(iter_occurrences(start, time_zone, rec)):
        if rec.occurrences is not None and position >= rec.occurrences:
            return None
        if occurrence == target:
            return position + 1
        if occurrence > target:
            return None
    return None


def iter_occurrences(start: datetime, time_zone: str, rec: Recurrence) -> Iterator[datetime]:
    """Every occurrence start (UTC) up to the end date; unbounded for numbered/no-end ranges."""
    zone = ZoneInfo(time_zone)
    local = start.astimezone(zone)
    wall = local.timetz().replace(tzinfo=None)
    first = rec.start_date or local.date()
    for day in _dates(rec, first):
        if rec.end_date is not None and day > rec.end_date:
            return
        yield _at(day, wall, zone)


def _at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def _dates(rec: Recurrence, first: date) -> Iterator[date]:
    interval = max(1, rec.interval)
    if rec.kind == "daily":
        return _daily(first, interval)
    if rec.kind == "weekly":
        return _weekly(first, interval, _weekday_set(rec.days_of_week, first))
    if rec.kind in ("absolute_monthly", "relative_monthly"):
        return _by_period(rec, first, interval)
    return _by_period(rec, first, 12 * interval)


def _daily(first: date, interval: int) -> Iterator[date]:
    day = first
    while True:
        yield day
        day += timedelta(days=interval)


def _weekly(first: date, interval: int, days: frozenset[int]) -> Iterator[date]:
    # Weeks are counted from the week holding the start date; EWS' default FirstDayOfWeek is
    # Sunday, so a week runs Sunday..Saturday.
    week_start = first - timedelta(days=(first.weekday() + 1) % 7)
    while True:
        for offset in range(7):
            day = week_start + timedelta(days=offset)
            if day >= first and day.weekday() in days:
                yield day
        week_start += timedelta(weeks=interval)


def _by_period(rec: Recurrence, first: date, step_months: int) -> Iterator[date]:
    """Monthly and yearly patterns: one candidate date per period of `step_months` months."""
    year, month = first.year, rec.month if _is_yearly(rec) and rec.month else first.month
    if _is_yearly(rec) and (year, month) < (first.year, first.month):
        year += 1
    empty = 0
    while empty < _MAX_EMPTY_PERIODS:
        day = _day_in_month(rec, year, month, first)
        if day is not None and day >= first:
            empty = 0
            yield day
        else:
            empty += 1
        month += step_months
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _is_yearly(rec: Recurrence) -> bool:
    return rec.kind in ("absolute_yearly", "relative_yearly")


def _day_in_month(rec: Recurrence, year: int, month: int, first: date) -> date | None:
    length = calendar.monthrange(year, month)[1]
    if rec.kind in ("absolute_monthly", "absolute_yearly"):
        wanted = rec.day_of_month or first.day
        # Exchange places day 29..31 on the month's last day when the month is shorter.
        return date(year, month, min(wanted, length))
    days = _weekday_set(rec.days_of_week, first)
    matches = [d for d in range(1, length + 1) if date(year, month, d).weekday() in days]
    index = _WEEK_INDEX[rec.week_index or "first"]
    if index >= len(matches):
        return None
    return date(year, month, matches[index])


def _weekday_set(names: tuple[str, ...], first: date) -> frozenset[int]:
    if not names:
        return frozenset({first.weekday()})
    days: set[int] = set()
    for name in names:
        key = name.lower()
        if key in _PSEUDO_DAYS:
            days |= _PSEUDO_DAYS[key]
        else:
            days.add(WEEKDAYS.index(key))
    return frozenset(days)
