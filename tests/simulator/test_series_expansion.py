"""The simulator's own expansion of series: the rules, case by case (wall time across DST,
intervals, month ends, relative days, years, the three kinds of range)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lxml import etree

from ews_client.simulator import recurrence as rec
from ews_client.simulator.calendar import parse_recurrence
from ews_client.simulator.recurrence import Pattern, expand
from ews_client.simulator.xmlutil import T

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_keeps_local_wall_time_across_dst_change() -> None:
    # 09:00 Berlin is 08:00 UTC before the switch on 29 March 2026, 07:00 UTC after it.
    pattern = Pattern(rec.DAILY, start=date(2026, 3, 28), count=3)
    got = expand(utc(2026, 3, 28, 8), BERLIN, pattern, 1000)
    assert got == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_weekly_days_and_interval_with_end_date() -> None:
    pattern = Pattern(rec.WEEKLY, start=date(2026, 1, 5), interval=2, days=frozenset({0, 2}),
                      end=date(2026, 1, 21))  # fmt: skip
    got = expand(utc(2026, 1, 5, 10), "UTC", pattern, 1000)
    assert got == [utc(2026, 1, 5, 10), utc(2026, 1, 7, 10), utc(2026, 1, 19, 10),
                   utc(2026, 1, 21, 10)]  # fmt: skip


def test_absolute_monthly_clamps_to_month_end() -> None:
    pattern = Pattern(rec.ABSOLUTE_MONTHLY, start=date(2026, 1, 31), day_of_month=31, count=3)
    got = expand(utc(2026, 1, 31, 12), "UTC", pattern, 1000)
    assert got == [utc(2026, 1, 31, 12), utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)]


def test_relative_monthly_last_friday() -> None:
    pattern = Pattern(rec.RELATIVE_MONTHLY, start=date(2026, 1, 1), days=frozenset({4}),
                      week=-1, count=2)  # fmt: skip
    got = expand(utc(2026, 1, 1, 9), "UTC", pattern, 1000)
    assert got == [utc(2026, 1, 30, 9), utc(2026, 2, 27, 9)]


def test_yearly_patterns() -> None:
    absolute = Pattern(rec.ABSOLUTE_YEARLY, start=date(2026, 3, 15), day_of_month=15, month=3,
                       count=2)  # fmt: skip
    assert expand(utc(2026, 3, 15, 9), "UTC", absolute, 1000) == [
        utc(2026, 3, 15, 9),
        utc(2027, 3, 15, 9),
    ]
    thanksgiving = Pattern(rec.RELATIVE_YEARLY, start=date(2026, 11, 1), days=frozenset({3}),
                           week=3, month=11, count=2)  # fmt: skip
    assert expand(utc(2026, 11, 1, 18), "UTC", thanksgiving, 1000) == [
        utc(2026, 11, 26, 18),
        utc(2027, 11, 25, 18),
    ]


def test_no_end_stops_at_limit() -> None:
    pattern = Pattern(rec.DAILY, start=date(2026, 1, 1))
    assert len(expand(utc(2026, 1, 1), "UTC", pattern, 50)) == 50


def test_stored_recurrence_reads_day_sets_and_ranges() -> None:
    xml = (
        f'<Recurrence xmlns="{T}"><RelativeMonthlyRecurrence><Interval>1</Interval>'
        "<DaysOfWeek>Weekday</DaysOfWeek><DayOfWeekIndex>Last</DayOfWeekIndex>"
        "</RelativeMonthlyRecurrence><EndDateRecurrence><StartDate>2026-01-01Z</StartDate>"
        "<EndDate>2026-03-31</EndDate></EndDateRecurrence></Recurrence>"
    )
    pattern = parse_recurrence(etree.fromstring(xml))
    assert pattern == Pattern(rec.RELATIVE_MONTHLY, start=date(2026, 1, 1),
                              days=frozenset(range(5)), week=-1, end=date(2026, 3, 31))  # fmt: skip
    # The last weekday of January, February and March 2026.
    got = expand(utc(2026, 1, 1, 9), "UTC", pattern, 1000)
    assert got == [utc(2026, 1, 30, 9), utc(2026, 2, 27, 9), utc(2026, 3, 31, 9)]
