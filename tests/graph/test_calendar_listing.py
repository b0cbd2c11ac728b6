"""The whole calendar over Graph: `/calendar/events` paged, series instances bounded by their
range, and removals from the window delta confirmed before they count as deletions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ews_client.errors import TransientError
from ews_client.graph import requests as rq
from ews_client.graph.calendar_delta import EventWindow
from ews_client.graph.events import event_from_json
from ews_client.graph.responses import parse_page
from ews_client.graph.wire import Json
from ews_client.io.graph import GraphClient
from ews_client.io.graph_calendar import CalendarSync
from ews_client.models import (
    Appointment,
    Attendee,
    EntityKind,
    ItemRef,
    ModifiedOccurrence,
    Recurrence,
    Removal,
    Sensitivity,
    Upsert,
)
from ews_client.recurrence import expand
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX, make_client

EVENT = EntityKind.APPOINTMENT
NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _single(subject: str, start: datetime, **kwargs: object) -> Appointment:
    return Appointment(subject=subject, start=start, end=start + timedelta(hours=1), **kwargs)  # type: ignore[arg-type]


def _weekly_since_two_years() -> Appointment:
    first = (NOW - timedelta(days=730)).replace(hour=9)
    first += timedelta(days=(7 - first.weekday()) % 7)  # a Monday
    rec = Recurrence(kind="weekly", days_of_week=("monday",), start_date=first.date())
    starts = expand(first, "UTC", rec, limit=200)
    moved = starts[50]  # about a year ago, outside the window
    cancelled = next(s for s in starts if s > NOW + timedelta(days=60))
    return Appointment(
        subject="Weekly sync",
        start=first,
        end=first + timedelta(hours=1),
        recurrence=rec,
        modified_occurrences=(
            ModifiedOccurrence(
                moved, moved + timedelta(hours=2), moved + timedelta(hours=3), "Weekly sync (moved)"
            ),
        ),
        deleted_occurrences=(cancelled,),
    )


def _by_subject(items: list[Appointment]) -> dict[str, Appointment]:
    return {a.subject or "": a for a in items}


async def test_a_listed_event_reads_as_a_fetched_one(client: GraphClient) -> None:
    """`$select` names every property the converter reads: nothing is lost by listing."""
    rich = _single(
        "Everything",
        NOW - timedelta(days=900),
        time_zone="Europe/Berlin",
        location="Room 7",
        notes="agenda",
        required_attendees=(Attendee("ann@example.com", "Ann"),),
        optional_attendees=(Attendee("bo@example.com"),),
        sensitivity=Sensitivity.PRIVATE,
        reminder_minutes=30,
        categories=("Blue",),
        crm_id="crm-1",
    )
    ref = await client.create_item(BOX, rich)
    [listed] = await client.list_items(BOX, EVENT)
    [fetched] = await client.fetch(BOX, EVENT, [ref.id])
    assert listed == event_from_json(fetched)
    assert listed.crm_id == "crm-1" and listed.location == "Room 7"


async def test_listing_pages_and_lists_each_series_once(client: GraphClient) -> None:
    for n in range(23):
        await client.create_item(BOX, _single(f"E{n}", NOW + timedelta(days=40 * n - 400)))
    await client.create_item(BOX, _weekly_since_two_years())
    pages = await client.pages(BOX, rq.calendar_events(BOX, page_size=7), EVENT)
    assert [len(p.values) for p in pages] == [7, 7, 7, 3]
    ids = [str(o["id"]) for p in pages for o in p.values]
    assert len(ids) == len(set(ids)) == 24
    kinds = sorted(str(o["type"]) for p in pages for o in p.values)
    assert kinds.count("seriesMaster") == 1 and kinds.count("singleInstance") == 23


async def test_instances_of_an_endless_series_are_bounded_by_the_range(
    client: GraphClient,
) -> None:
    series = _weekly_since_two_years()
    ref = await client.create_item(BOX, series)
    start, end = NOW - timedelta(days=800), NOW + timedelta(days=365)
    req = rq.instances(BOX, ref.id, start, end)
    req = rq.GraphRequest(req.method, req.url.replace("$top=999", "$top=25"), None, req.headers)
    first = await client.call(BOX, req, idempotent=True)
    values = list(first["value"])
    for page in await client.pages(BOX, rq.follow(first["@odata.nextLink"], EVENT), EVENT):
        values.extend(page.values)
    originals = [datetime.fromisoformat(str(o["originalStart"])) for o in values]
    assert all(start <= o < end for o in originals)
    pattern = [s for s in expand(series.start, "UTC", series.recurrence, limit=500) if s < end]  # type: ignore[arg-type]
    [cancelled] = series.deleted_occurrences
    assert cancelled not in originals and len(values) == len(pattern) - 1
    assert [str(o["type"]) for o in values].count("exception") == 1


async def test_a_full_read_sees_every_date_and_folds_the_series(client: GraphClient) -> None:
    for subject, when in (("Five years back", NOW - timedelta(days=5 * 365)),
                          ("Three years ahead", NOW + timedelta(days=3 * 365)),
                          ("Tomorrow", NOW + timedelta(days=1))):  # fmt: skip
        await client.create_item(BOX, _single(subject, when))
    wanted = _weekly_since_two_years()
    await client.create_item(BOX, wanted)
    result = await client.sync_changes(BOX, EVENT, None)
    got = _by_subject([c.item for c in result.changes if isinstance(c, Upsert)])  # type: ignore[misc]
    assert set(got) == {"Five years back", "Three years ahead", "Tomorrow", "Weekly sync"}
    series = got["Weekly sync"]
    assert series.deleted_occurrences == wanted.deleted_occurrences
    assert series.modified_occurrences == wanted.modified_occurrences
    # The state it leaves is the window delta's: an express read of it finds nothing new.
    again = await client.sync_changes(BOX, EVENT, result.sync_state)
    assert again.changes == ()


async def test_a_removal_from_the_window_is_confirmed(sim: RunningSimulator) -> None:
    now = [NOW]
    async with make_client(sim, clock=lambda: now[0]) as client:
        moved = await client.create_item(BOX, _single("Moved away", NOW + timedelta(days=3)))
        gone = await client.create_item(BOX, _single("Deleted", NOW + timedelta(days=4)))
        state = (await client.sync_changes(BOX, EVENT, None)).sync_state
        far = NOW + timedelta(days=800)
        [current] = await client.fetch(BOX, EVENT, [moved.id])
        await client.update_item(
            BOX, ItemRef(moved.id, str(current["@odata.etag"])),
            _single("Moved away", far), frozenset({"start", "end"}),
        )  # fmt: skip
        await client.delete_item(BOX, gone, EVENT)
        pages = await client.pages(BOX, rq.follow(_link(state), EVENT), EVENT)
        reported = {r for p in pages for r in p.removed}
        assert reported == {moved.id, gone.id}  # the server says both left the window
        result = await client.sync_changes(BOX, EVENT, state)
        assert [c.item_id for c in result.changes if isinstance(c, Removal)] == [gone.id]
        [still] = [c.item for c in result.changes if isinstance(c, Upsert)]
        assert still.ref is not None and still.ref.id == moved.id and still.start == far


def _link(state: str) -> str:
    return str(json.loads(state)["link"])


class _DeletingBetweenPages:
    """The real client, with events deleted (over HTTP) just before each later page of the
    listing is requested: as when a user cleans up a calendar while it is being read."""

    def __init__(self, client: GraphClient, doomed: list[ItemRef], per_page: int) -> None:
        self._client, self._doomed, self._per_page = client, doomed, per_page
        self.batch, self.pages, self.fetch = client.batch, client.pages, client.fetch

        self.restarts = -1  # listings begun, but for the first

    async def call(self, mailbox: str, req: rq.GraphRequest, *, idempotent: bool = False) -> Json:
        if req.url.startswith(f"{rq.user(mailbox)}/calendar/events"):
            self.restarts += 1
        elif "/calendar/events" in req.url and "skip=" in req.url:
            for _ in range(min(self._per_page, len(self._doomed))):
                await self._client.delete_item(mailbox, self._doomed.pop(0), EVENT)
        return await self._client.call(mailbox, req, idempotent=idempotent)


async def _listed_subjects(sync: CalendarSync) -> set[str]:
    result = await sync.sync(BOX, None, restarted=False)
    return {c.item.subject or "" for c in result.changes if isinstance(c, Upsert)}


async def test_a_deletion_between_pages_hides_no_other_event(client: GraphClient) -> None:
    """Graph pages the calendar by `$skip`: an event deleted between two page requests moves
    the next one across the page boundary. The listing's overlapping pages still list every
    event that was never deleted; the server's own next links alone would miss one per
    deletion (checked first, so that the simulator is shown to behave as Graph does)."""
    refs = [
        await client.create_item(BOX, _single(f"E{i:02}", NOW + timedelta(days=i)))
        for i in range(30)
    ]
    early = [refs[1], refs[12], refs[13]]  # each on a page already read when it is deleted
    plain = _DeletingBetweenPages(client, list(early[:1]), per_page=1)
    pages = []
    req = rq.calendar_events(BOX, page_size=10)
    while True:
        page = parse_page(await plain.call(BOX, req))
        pages.append(page)
        if page.next_link is None:
            break
        req = rq.follow(page.next_link, EVENT)
    listed = {str(o["subject"]) for p in pages for o in p.values}
    assert "E10" not in listed  # moved to place 9 after E01 went: on neither page
    survivors = {f"E{i:02}" for i in range(30)} - {"E01", "E12", "E13"}
    window = EventWindow()
    deleting = _DeletingBetweenPages(client, list(early[1:]), per_page=1)
    sync = CalendarSync(deleting, window, lambda: NOW, listing_page=10)
    assert await _listed_subjects(sync) == survivors


async def test_more_deletions_than_the_overlap_restart_the_listing(client: GraphClient) -> None:
    """A page that does not join on to the pages before it starts the listing again; a
    calendar emptied faster than it can be listed fails the pass as transient (retried
    later) instead of being read with a gap."""
    refs = [
        await client.create_item(BOX, _single(f"F{i:02}", NOW + timedelta(days=i)))
        for i in range(12)
    ]
    once = _DeletingBetweenPages(client, refs[:4], per_page=4)
    sync = CalendarSync(once, EventWindow(), lambda: NOW, listing_page=4, listing_overlap=2)
    assert await _listed_subjects(sync) == {f"F{i:02}" for i in range(4, 12)}
    assert once.restarts == 1
    more = [await client.create_item(BOX, _single(f"G{i:02}", NOW)) for i in range(40)]
    front_first = _DeletingBetweenPages(client, [*refs[4:], *more], per_page=4)
    sync = CalendarSync(front_first, EventWindow(), lambda: NOW, listing_page=4, listing_overlap=2)
    with pytest.raises(TransientError, match="changed faster"):
        await sync.sync(BOX, None, restarted=False)
    assert front_first.restarts == 2  # three listings in all
