"""Recurrence expansion: local wall time kept across DST, ranges, instance indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ews_client.models import Recurrence
from ews_client.recurrence import expand, instance_index

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_keeps_local_wall_time_across_dst_change() -> None:
    # 09:00 Berlin on Sat 2026-03-28 is 08:00 UTC (CET); after the switch on 29 March it is
    # 07:00 UTC (CEST).
    rec = Recurrence(kind="daily", occurrences=3)
    got = expand(utc(2026, 3, 28, 8), BERLIN, rec)
    assert got == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_weekly_days_and_interval_with_end_date() -> None:
    rec = Recurrence(
        kind="weekly", interval=2, days_of_week=("monday", "wednesday"), end_date=date(2026, 1, 21)
    )
    got = expand(utc(2026, 1, 5, 10), "UTC", rec)  # Monday 5 Jan 2026
    assert got == [
        utc(2026, 1, 5, 10),
        utc(2026, 1, 7, 10),
        utc(2026, 1, 19, 10),
        utc(2026, 1, 21, 10),
    ]


def test_absolute_monthly_clamps_to_month_end() -> None:
    rec = Recurrence(kind="absolute_monthly", day_of_month=31, occurrences=3)
    got = expand(utc(2026, 1, 31, 12), "UTC", rec)
    assert got == [utc(2026, 1, 31, 12), utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)]


def test_relative_monthly_last_friday() -> None:
    rec = Recurrence(
        kind="relative_monthly", days_of_week=("friday",), week_index="last", occurrences=2
    )
    got = expand(utc(2026, 1, 1, 9), "UTC", rec)
    assert got == [utc(2026, 1, 30, 9), utc(2026, 2, 27, 9)]


def test_yearly_patterns() -> None:
    absolute = Recurrence(kind="absolute_yearly", day_of_month=15, month=3, occurrences=2)
    assert expand(utc(2026, 3, 15, 9), "UTC", absolute) == [
        utc(2026, 3, 15, 9),
        utc(2027, 3, 15, 9),
    ]
    relative = Recurrence(
        kind="relative_yearly",
        days_of_week=("thursday",),
        week_index="fourth",
        month=11,
        occurrences=2,
    )
    assert expand(utc(2026, 11, 1, 18), "UTC", relative) == [
        utc(2026, 11, 26, 18),
        utc(2027, 11, 25, 18),
    ]


def test_no_end_stops_at_limit() -> None:
    assert len(expand(utc(2026, 1, 1), "UTC", Recurrence(kind="daily"), limit=50)) == 50


def test_instance_index_is_position_plus_one() -> None:
    rec = Recurrence(kind="daily", occurrences=5)
    start = utc(2026, 3, 28, 8)
    assert instance_index(start, BERLIN, rec, utc(2026, 3, 29, 7)) == 2
    assert instance_index(start, BERLIN, rec, utc(2026, 3, 29, 8)) is None  # not on the pattern
    assert instance_index(start, BERLIN, rec, utc(2026, 4, 5, 7)) is None  # past the range
