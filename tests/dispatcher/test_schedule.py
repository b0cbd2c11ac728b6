"""The pure schedule rules, driven with explicit instants (no clock, no database)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ews_client.models import EntityKind
from sync_service.dispatcher import schedule
from sync_service.dispatcher.debounce import Debouncer
from sync_service.dispatcher.schedule import CompleteSchedule, MailboxTimes

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_complete_slot_keeps_local_time_across_spring_change() -> None:
    sched = CompleteSchedule(BERLIN, time(1, 30), timedelta(0))
    # 1:30 local is before the 2:00 change: CET (+1) on Sunday, CEST (+2) from Monday.
    assert schedule.complete_slot(sched, 7, date(2026, 3, 28)) == utc(2026, 3, 28, 0, 30)
    assert schedule.complete_slot(sched, 7, date(2026, 3, 29)) == utc(2026, 3, 29, 0, 30)
    assert schedule.complete_slot(sched, 7, date(2026, 3, 30)) == utc(2026, 3, 29, 23, 30)


def test_complete_slot_in_the_skipped_hour_runs_once_after_the_gap() -> None:
    sched = CompleteSchedule(BERLIN, time(2, 30), timedelta(0))
    slot = schedule.complete_slot(sched, 1, date(2026, 3, 29))
    assert slot == utc(2026, 3, 29, 1, 30)
    assert slot.astimezone(BERLIN).time() == time(3, 30)


def test_complete_slot_in_the_repeated_hour_is_the_first_one() -> None:
    sched = CompleteSchedule(NEW_YORK, time(1, 15), timedelta(0))
    assert schedule.complete_slot(sched, 1, date(2026, 10, 31)) == utc(2026, 10, 31, 5, 15)
    assert schedule.complete_slot(sched, 1, date(2026, 11, 1)) == utc(2026, 11, 1, 5, 15)  # EDT
    assert schedule.complete_slot(sched, 1, date(2026, 11, 2)) == utc(2026, 11, 2, 6, 15)  # EST


def test_complete_due_once_per_local_day_over_both_changes() -> None:
    """Ticks every 10 minutes from March to November: one pass per day, at 02:00 local."""
    sched = CompleteSchedule(BERLIN, time(2, 0), timedelta(hours=2))
    start, end = utc(2026, 3, 20), utc(2026, 11, 5)
    dues: list[datetime] = []
    now = start
    while now < end:
        nxt = now + timedelta(minutes=10)
        if schedule.complete_due(sched, 42, now, nxt):
            dues.append(nxt)
        now = nxt
    days = [d.astimezone(BERLIN).date() for d in dues]
    assert len(days) == len(set(days)) == (end - start).days
    offset = schedule.spread_offset(42, sched.window)
    for due in dues:
        local = (due - offset).astimezone(BERLIN)
        # within one tick after 02:00 local (03:00 on the day 02:00 does not exist)
        expected = 3 if local.date() == date(2026, 3, 29) else 2
        assert (local.hour, local.minute // 10) == (expected, 0), due


def test_complete_due_needs_a_real_interval() -> None:
    sched = CompleteSchedule(ZoneInfo("UTC"), time(2, 0), timedelta(0))
    assert not schedule.complete_due(sched, 1, utc(2026, 1, 1, 2), utc(2026, 1, 1, 2))
    assert schedule.complete_due(sched, 1, utc(2026, 1, 1, 1, 59), utc(2026, 1, 1, 2))
    assert not schedule.complete_due(sched, 1, utc(2026, 1, 1, 2), utc(2026, 1, 1, 3))
    # a dispatcher down for days still asks for one pass only
    assert schedule.complete_due(sched, 1, utc(2026, 1, 1, 3), utc(2026, 1, 9))


def test_spread_is_stable_and_even_over_the_window() -> None:
    window = timedelta(hours=2)
    offsets = [schedule.spread_offset(i, window) for i in range(1, 10_001)]
    assert offsets == [schedule.spread_offset(i, window) for i in range(1, 10_001)]
    assert all(timedelta(0) <= o < window for o in offsets)
    per_second = Counter(offsets)
    assert max(per_second.values()) <= 10  # 10,000 over 7,200 s: about 1.4 per second
    per_ten_minutes = Counter(int(o.total_seconds()) // 600 for o in offsets)
    assert len(per_ten_minutes) == 12
    assert all(700 <= n <= 970 for n in per_ten_minutes.values()), per_ten_minutes
    assert schedule.spread_offset(5, timedelta(0)) == timedelta(0)


def test_express_due_rules() -> None:
    now = utc(2026, 5, 1, 12)
    interval = timedelta(minutes=15)
    fresh = MailboxTimes(1, None, now - timedelta(minutes=14))
    stale = MailboxTimes(2, None, now - timedelta(minutes=15))
    never = MailboxTimes(3, None, None)
    assert not schedule.express_due(fresh, now, interval, covered=False)
    assert schedule.express_due(stale, now, interval, covered=False)
    assert schedule.express_due(never, now, interval, covered=False)
    # push kept it fresh: a healthy subscription means no polling at all
    assert not schedule.express_due(never, now, interval, covered=True)
    # swept a minute ago and its job has not run yet: not again
    swept = now - timedelta(minutes=1)
    assert not schedule.express_due(stale, now, interval, covered=False, last_swept_at=swept)
    assert schedule.express_due(stale, now, interval, covered=False, last_swept_at=now - interval)


def test_watched_entities_follow_the_modes() -> None:
    assert schedule.watched_entities("two-way", "off", "exchange-to-crm") == (
        EntityKind.CONTACT,
        EntityKind.TASK,
    )
    assert schedule.watched_entities("crm-to-exchange", "off", "off") == ()


def test_retention_boundary_and_daily_rhythm() -> None:
    now = utc(2026, 5, 15, 3)
    assert schedule.retention_cutoff(now, 14) == utc(2026, 5, 1, 3)
    assert schedule.retention_due(None, now)
    assert not schedule.retention_due(now - timedelta(hours=23), now)
    assert schedule.retention_due(now - timedelta(days=1), now)


def test_debouncer_turns_a_burst_into_one_release() -> None:
    t0 = utc(2026, 5, 1, 12)
    deb = Debouncer(quiet=timedelta(seconds=0.5), longest=timedelta(seconds=3))
    for i in range(100):
        deb.record(7, t0 + timedelta(milliseconds=10 * i))
    deb.record(8, t0)
    assert [b.mailbox_id for b in deb.release(t0 + timedelta(seconds=0.6))] == [8]
    [burst] = deb.release(t0 + timedelta(seconds=1.5))
    assert burst.mailbox_id == 7 and burst.first_at == t0
    assert len(deb) == 0
    # a mailbox that never goes quiet is still released after `longest`
    for i in range(40):
        deb.record(9, t0 + timedelta(milliseconds=100 * i))
    assert [b.mailbox_id for b in deb.release(t0 + timedelta(seconds=3))] == [9]
