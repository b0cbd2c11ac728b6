"""Calendar coverage without loss, on both backends: a mailbox spanning eight years, a series
that never ends, all-day events on the window's edges; full passes see all of it, express
passes over a moving window write nothing for events that merely leave or enter it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ews_client.io.graph import GraphClient
from ews_client.models import Appointment, ModifiedOccurrence, Recurrence
from ews_client.recurrence import expand
from ews_client.simulator.writes import simple_props
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

BOX = "cal@sim.example"
NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
YEAR = timedelta(days=365)
WINDOW_START, WINDOW_END = NOW - timedelta(days=30), NOW + YEAR  # Graph's default window


def _at(subject: str, start: datetime, hours: int = 1) -> Appointment:
    return Appointment(subject=subject, start=start, end=start + timedelta(hours=hours))


def _all_day(subject: str, day: datetime) -> Appointment:
    return Appointment(subject=subject, start=day, end=day + timedelta(days=1), all_day=True)


def _series() -> Appointment:
    first = (NOW - 2 * YEAR).replace(hour=9)
    first += timedelta(days=(7 - first.weekday()) % 7)
    rec = Recurrence(kind="weekly", days_of_week=("monday",), start_date=first.date())
    starts = expand(first, "UTC", rec, limit=300)
    moved = starts[52]  # a year after it began: far outside the window
    cancelled = next(s for s in starts if s > NOW + timedelta(days=60))
    return Appointment(
        subject="Weekly forever",
        start=first,
        end=first + timedelta(hours=1),
        recurrence=rec,
        modified_occurrences=(
            ModifiedOccurrence(
                moved, moved + timedelta(hours=3), moved + timedelta(hours=4), "Weekly (moved)"
            ),
        ),
        deleted_occurrences=(cancelled,),
    )


MAILBOX_ITEMS = (
    _at("Five years back", (NOW - 5 * YEAR).replace(hour=10)),
    _at("Two months ago", (NOW - timedelta(days=60)).replace(hour=10)),
    _at("In a month", (NOW + timedelta(days=30)).replace(hour=10)),
    _at("Three years ahead", (NOW + 3 * YEAR).replace(hour=10)),
    _all_day("Ends at window start", WINDOW_START - timedelta(days=1)),
    _all_day("Starts at window start", WINDOW_START),
    _all_day("Ends at window end", WINDOW_END - timedelta(days=1)),
    _all_day("Starts at window end", WINDOW_END),
    _series(),
)
CRM_ONLY = (("Four years back", NOW - 4 * YEAR), ("Two years ahead", NOW + 2 * YEAR))


@dataclass
class Calendar:
    h: Harness
    user: str
    now: list[datetime]

    async def crm(self) -> dict[str, datetime]:
        rows = await self.h.pool.fetch(
            "SELECT subject, starts_at FROM crm.appointments WHERE owner_id = $1", self.user
        )
        subjects = [r["subject"] for r in rows]
        assert len(subjects) == len(set(subjects)), f"created twice in the CRM: {subjects}"
        return {r["subject"]: r["starts_at"] for r in rows}

    async def mailbox(self) -> dict[str, datetime]:
        items = [i["fields"] for i in await self.h.items(BOX, "calendar")]
        subjects = [f["Subject"] for f in items]
        assert len(subjects) == len(set(subjects)), f"created twice in the mailbox: {subjects}"
        return {f["Subject"]: datetime.fromisoformat(f["Start"]) for f in items}

    async def equal(self) -> dict[str, datetime]:
        crm, box = await self.crm(), await self.mailbox()
        assert crm == box
        return crm

    async def writes(self) -> tuple[int, dict[str, str]]:
        """CRM change-log rows and the change key of every mailbox item: any write moves one."""
        logged = await self.h.pool.fetchval("SELECT count(*) FROM crm.change_log")
        keys = {i["id"]: i["change_key"] for i in await self.h.items(BOX, "calendar")}
        return int(logged), keys

    async def sync(self, kind: PassKind = PassKind.EXPRESS) -> None:
        assert await self.h.sync(BOX, kind) == Done("ok")

    async def owner(self, subject: str, method: str, fields: dict[str, str] | None = None) -> None:
        [item] = [
            i for i in await self.h.items(BOX, "calendar") if i["fields"]["Subject"] == subject
        ]
        body = {"fields": fields} if fields is not None else None
        await self.h.owner(method, f"/mailboxes/{BOX}/items/{item['id']}", body)


async def _calendar(h: Harness) -> Calendar:
    """The CRM user and the mailbox above; the Graph backend's clock is the test's."""
    user, _ = await h.add_user(BOX)
    now = [NOW]
    client = await h.runner.backends.get(h.server)
    if isinstance(client, GraphClient):
        client.calendar.clock = lambda: now[0]
    for item in MAILBOX_ITEMS:
        await client.create_item(BOX, item)
    for subject, start in (*CRM_ONLY, ("Five years back", MAILBOX_ITEMS[0].start)):
        assert start is not None
        await h.pool.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "VALUES ($1, $2, $3, $4)",
            user,
            subject,
            start,
            start + timedelta(hours=1),
        )
    return Calendar(h, user, now)


EVERYTHING = {a.subject for a in MAILBOX_ITEMS} | {s for s, _ in CRM_ONLY}


async def test_full_passes_see_the_whole_calendar(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        cal = await _calendar(h)
        await cal.sync(PassKind.INITIAL)  # matches "Five years back" instead of duplicating it
        assert set(await cal.equal()) == EVERYTHING
        for kind in (PassKind.COMPLETE, PassKind.RECOVER, PassKind.COMPLETE):
            before = await cal.writes()
            await cal.sync(kind)
            assert await cal.writes() == before, f"{kind} wrote"
            assert set(await cal.equal()) == EVERYTHING


async def test_express_passes_over_a_moving_window(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        cal = await _calendar(h)
        await cal.sync(PassKind.INITIAL)
        await cal.sync()

        # Forty days later: a dozen events left the window and others entered it.
        cal.now[0] = NOW + timedelta(days=40)
        before = await cal.writes()
        await cal.sync()
        await cal.sync()
        assert await cal.writes() == before

        # Moved out of the window in Outlook: the delta says "removed", the event is there.
        far = (NOW + 5 * YEAR).replace(hour=15)
        moved = {"Start": far.isoformat(), "End": (far + timedelta(hours=1)).isoformat()}
        await cal.owner("In a month", "PATCH", moved)
        await cal.sync()
        assert (await cal.equal())["In a month"] == far

        # Really deleted in Outlook, inside the window: the CRM follows at once.
        await cal.owner("Starts at window end", "DELETE")
        await cal.sync()
        assert "Starts at window end" not in await cal.equal()

        # Deleted outside the window: a complete pass sees it (an express pass may not).
        await cal.owner("Five years back", "DELETE")
        await cal.sync()
        await cal.sync(PassKind.COMPLETE)
        left = EVERYTHING - {"Starts at window end", "Five years back"}
        assert set(await cal.equal()) == left


def _seed(h: Harness, count: int) -> None:
    """`count` single events from five years back to three years ahead, straight into the
    simulator's store (as if the mailbox had always held them)."""
    box = h.sim.sim.add_mailbox(BOX)
    folder = box.folder("calendar")
    step = (8 * YEAR) / count
    for n in range(count):
        start = (NOW - 5 * YEAR + n * step).replace(microsecond=0)
        fields = {"Subject": f"Event {n:05d}", "Start": start.isoformat(),
                  "End": (start + timedelta(minutes=30)).isoformat()}  # fmt: skip
        box.add(folder, "CalendarItem", simple_props("CalendarItem", fields))


def _requests(h: Harness) -> int:
    if h.server.backend == "graph" and h.sim.graph is not None:
        return sum(h.sim.graph.requests.values())
    counted: dict[str, Any] = h.sim.sim.counters()["requests"]  # type: ignore[assignment]
    return sum(int(v) for v in counted.values())


async def _timed(h: Harness, run: Callable[[], Any]) -> tuple[float, int]:
    requests, started = _requests(h), time.perf_counter()
    await run()
    return time.perf_counter() - started, _requests(h) - requests


async def test_a_mailbox_of_5000_events_passes_complete(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        _seed(h, 5000)
        cal = Calendar(h, user, [NOW])
        first = await _timed(h, lambda: cal.sync(PassKind.COMPLETE))
        assert len(await cal.equal()) == 5000
        again = await _timed(h, lambda: cal.sync(PassKind.COMPLETE))
        assert len(await cal.equal()) == 5000
        # Figures for the record (no timed assertion): run with -s to see them.
        print(f"\n[{backend}] 5,000 events, complete pass creating the CRM records: "
              f"{first[0]:.1f} s, {first[1]} requests; a second complete pass: "
              f"{again[0]:.1f} s, {again[1]} requests")  # fmt: skip
