"""Moving one occurrence of a series as exchangelib does it: UpdateItem on the occurrence with
Start and End and the two time-zone fields (StartTimeZone, EndTimeZone), and a whole-item
save of an occurrence; the master then lists the exception, a calendar view shows it moved."""

from __future__ import annotations

from datetime import datetime, timedelta

from exchangelib import CalendarItem
from exchangelib.recurrence import DailyPattern, Recurrence
from exchangelib.version import EXCHANGE_2016

from ews_client.simulator.testing import RunningSimulator

from .conftest import account, in_thread

HOUR = timedelta(hours=1)


def _series(acc: object, start: datetime) -> CalendarItem:
    master = CalendarItem(
        account=acc,
        folder=acc.calendar,  # type: ignore[attr-defined]
        subject="Weekly review",
        start=start,
        end=start + HOUR,
        recurrence=Recurrence(pattern=DailyPattern(interval=1), start=start.date(), number=4),
    )
    master.save(send_meeting_invitations="SendToNone")
    return master


async def test_moving_one_occurrence_with_its_time_zones(sim: RunningSimulator) -> None:
    acc = account(sim)
    assert acc.version.build >= EXCHANGE_2016  # so exchangelib sends both zone fields

    def move() -> tuple[CalendarItem, CalendarItem]:
        start = datetime(2026, 3, 2, 9, tzinfo=acc.default_timezone)
        master = _series(acc, start)
        second = master.occurrence(index=2)
        second.refresh()
        second.start += 2 * HOUR
        second.end += 2 * HOUR
        second.save(update_fields=["start", "end"])
        master.refresh()
        return master, second

    before = sim.sim.requests["UpdateItem"]
    master, second = await in_thread(move)
    assert sim.sim.requests["UpdateItem"] == before + 1
    [moved] = master.modified_occurrences
    assert moved.id == second.id
    assert (moved.start, moved.end) == (second.start, second.end)
    assert moved.original_start == second.start - 2 * HOUR
    first_start = master.start

    def view() -> list[tuple[str, datetime]]:
        found = acc.calendar.view(start=first_start, end=first_start + timedelta(days=4))
        return [(item.type, item.start) for item in found]

    kinds = await in_thread(view)
    assert [k for k, _ in kinds] == ["Occurrence", "Exception", "Occurrence", "Occurrence"]
    assert kinds[1][1] == second.start


async def test_saving_a_whole_occurrence_changes_only_that_occurrence(
    sim: RunningSimulator,
) -> None:
    acc = account(sim)

    def edit() -> tuple[CalendarItem, list[CalendarItem]]:
        start = datetime(2026, 4, 6, 14, tzinfo=acc.default_timezone)
        master = _series(acc, start)
        third = list(acc.calendar.view(start=start, end=start + timedelta(days=4)))[2]
        third.subject = "Moved review"
        third.start += HOUR
        third.end += HOUR
        third.save()  # every field exchangelib may set on an occurrence
        master.refresh()
        return master, list(acc.calendar.view(start=start, end=start + timedelta(days=4)))

    master, view = await in_thread(edit)
    assert len(master.modified_occurrences) == 1 and master.subject == "Weekly review"
    assert [v.subject for v in view] == ["Weekly review"] * 2 + ["Moved review", "Weekly review"]
    assert view[2].type == "Exception" and view[2].start - view[1].start == timedelta(
        days=1, hours=1
    )
