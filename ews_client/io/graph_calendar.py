"""Calendar sync over Graph: a full read lists the whole calendar, express passes follow a
`calendarView/delta` over a window that moves forward.

- Without a stored state (complete, initial and recover passes, or a dead token) the read is
  the calendar in full: `/calendar/events` (every single event and series master, any date,
  paged with overlapping pages so that a deletion meanwhile cannot hide another event), each
  series folded with its `instances` (exceptions, cancelled occurrences). A
  fresh window delta is taken first, so that whatever changes while we list is seen again by
  the next express pass.
- With a state, the window delta's changes. An id it reports as removed is confirmed with a
  GET before it becomes a `Removal`: an event that only left the window (time passed, or it
  was moved out of it) is still there, and is read as a change instead.

The requests go out here; the window, the stored state and the sorting of what a delta or a
listing holds are pure (`graph/calendar_delta.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from ews_client.errors import ItemNotFoundError, ProtocolError, TransientError
from ews_client.graph import requests as rq
from ews_client.graph.calendar_delta import (
    Confirmed,
    EventState,
    EventWindow,
    confirm_removed,
    decode_state,
    delta_ids,
    listed_events,
)
from ews_client.graph.events import event_from_json
from ews_client.graph.listing import OVERLAP, anchored, next_page
from ews_client.graph.responses import InnerResponse, Page, listed_keys, parse_page, unseen
from ews_client.graph.series import fold_instances, instances_window
from ews_client.graph.wire import Json
from ews_client.models import Appointment, EntityKind, KnownKeys, Removal, SyncResult, Upsert

EVENT = EntityKind.APPOINTMENT
LISTING_ATTEMPTS = 3


class GraphCalls(Protocol):
    """What calendar sync needs from the Graph client (`GraphClient` has it): the client
    composes a `CalendarSync`, so this module must not import the client back."""

    async def call(self, mailbox: str, req: rq.GraphRequest, *, idempotent: bool = False) -> Json:
        """One request; the JSON body of a 2xx answer."""

    async def batch(self, mailbox: str, reqs: list[rq.GraphRequest]) -> list[InnerResponse]:
        """The inner answers of `$batch`, in the order of `reqs`."""

    async def pages(self, mailbox: str, first: rq.GraphRequest, kind: EntityKind) -> list[Page]:
        """Every page from `first` to the delta link (or the last page)."""

    async def fetch(
        self, mailbox: str, kind: EntityKind, ids: list[str], list_id: str = ""
    ) -> list[Json]:
        """Items in full; items gone meanwhile are skipped."""


class CalendarSync:
    """`clock` is public: the window and the series horizon follow it (tests move time)."""

    def __init__(
        self,
        client: GraphCalls,
        window: EventWindow,
        clock: Callable[[], datetime],
        listing_page: int = rq.LISTING_PAGE,
        listing_overlap: int = OVERLAP,
    ) -> None:
        self._client = client
        self._window = window
        self.clock = clock
        self._listing_page = listing_page
        self._listing_overlap = listing_overlap

    def _current_window(self) -> tuple[datetime, datetime]:
        return self._window.around(self.clock())

    def _horizon(self) -> datetime:
        return self._window.horizon(self.clock())

    async def sync(
        self,
        mailbox: str,
        state: str | None,
        *,
        restarted: bool,
        known: KnownKeys | None = None,
        calendar: str = "",
    ) -> SyncResult:
        """The calendar's changes since `state` (None: the whole calendar). Single events
        still at the change key of `known` (our own writes) are not fetched again.
        `calendar`: a linked calendar's id ("": the default calendar)."""
        if state is None:
            return await self._listing(mailbox, restarted, calendar)
        start, end = self._current_window()
        old = decode_state(state)
        if start - old.start < self._window.slack:
            first, start, end = rq.follow(old.link, EVENT), old.start, old.end
        else:
            # The window fell behind: a fresh delta over the new one. Events that left it are
            # not reported at all, events that entered it come as changes (unchanged ones
            # plan nothing), so moving the window writes nothing.
            first = rq.events_delta(mailbox, start, end, calendar)
        pages = await self._client.pages(mailbox, first, EVENT)
        link = _delta_link(pages)
        ids = delta_ids(pages)
        confirmed = await self._confirm(mailbox, ids.removed)
        singles = list(ids.singles)
        if known is not None and singles:
            singles = unseen(singles, listed_keys(pages), await known())
        wanted = list(dict.fromkeys([*singles, *ids.masters, *confirmed.masters]))
        fetched = await self._client.fetch(mailbox, EVENT, wanted)
        items = await self._fold(mailbox, [*fetched, *confirmed.present], self._horizon())
        changes = [Upsert(a) for a in items]
        gone = [Removal(r) for r in confirmed.gone]
        return SyncResult((*changes, *gone), EventState(link, start, end).encode(), restarted)

    async def _listing(self, mailbox: str, restarted: bool, calendar: str = "") -> SyncResult:
        """The whole calendar, and a window delta taken before it for the next express pass."""
        start, end = self._current_window()
        first = rq.events_delta(mailbox, start, end, calendar)
        delta = await self._client.pages(mailbox, first, EVENT)
        link = _delta_link(delta)
        listed = listed_events(await self._list_calendar(mailbox, calendar))
        items = await self._fold(mailbox, listed, self._horizon())
        state = EventState(link, start, end).encode()
        return SyncResult(tuple(Upsert(a) for a in items), state, restarted)

    async def _list_calendar(self, mailbox: str, calendar: str = "") -> list[Page]:
        """Every page of `/calendar/events`, each next page overlapping the one before it so
        that an event deleted meanwhile cannot make another one slip past (graph/listing.py)."""
        for _ in range(LISTING_ATTEMPTS):
            pages = await self._overlapping_pages(mailbox, calendar)
            if pages is not None:
                return pages
        raise TransientError(
            f"the calendar changed faster than it could be listed ({LISTING_ATTEMPTS} attempts)",
            code="ListingGap",
        )

    async def _overlapping_pages(self, mailbox: str, calendar: str = "") -> list[Page] | None:
        """The listing, or None when a page did not join on to the ones before it."""
        page = parse_page(
            await self._client.call(
                mailbox,
                rq.calendar_events(mailbox, self._listing_page, calendar),
                idempotent=True,
            )
        )
        pages, seen = [page], {str(v["id"]) for v in page.values}
        while page.next_link is not None:
            nxt = next_page(page.next_link, len(page.values), self._listing_overlap)
            page = parse_page(
                await self._client.call(mailbox, rq.follow(nxt.link, EVENT), idempotent=True)
            )
            if nxt.overlapping and not anchored(page, seen):
                return None
            pages.append(page)
            seen.update(str(v["id"]) for v in page.values)
        return pages

    async def _confirm(self, mailbox: str, removed: Sequence[str]) -> Confirmed:
        """GET each reported removal: only "not found" is a deletion."""
        reqs = [rq.get_item(mailbox, EVENT, rid) for rid in removed]
        found: dict[str, Json] = {}
        for rid, inner in zip(removed, await self._client.batch(mailbox, reqs), strict=True):
            err = inner.error()
            if isinstance(err, ItemNotFoundError):
                continue
            if err is not None:
                raise err  # unknown: the pass fails rather than delete on a guess
            found[rid] = inner.body
        return confirm_removed(removed, found)

    async def _fold(self, mailbox: str, objs: list[Json], until: datetime) -> list[Appointment]:
        """Events as the model, each series with its exceptions and cancelled occurrences up
        to `until`; a series gone meanwhile is left out (the next read reports it)."""
        events = [event_from_json(obj) for obj in objs]
        series = [a for a in events if a.recurrence is not None]
        reqs = [self._instances_request(mailbox, a, until) for a in series]
        folded: dict[str, Appointment] = {}
        for master, inner in zip(series, await self._client.batch(mailbox, reqs), strict=True):
            err = inner.error()
            if isinstance(err, ItemNotFoundError):
                continue
            if err is not None:
                raise err
            values = await self._rest(mailbox, inner.body)
            assert master.ref is not None
            folded[master.ref.id] = fold_instances(master, values, until)
        return [folded.get(a.ref.id, a) if a.ref else a for a in events
                if a.recurrence is None or (a.ref is not None and a.ref.id in folded)]  # fmt: skip

    async def _rest(self, mailbox: str, body: Json) -> list[Json]:
        page = parse_page(body)
        values = list(page.values)
        if page.next_link is not None:
            for more in await self._client.pages(mailbox, rq.follow(page.next_link, EVENT), EVENT):
                values.extend(more.values)
        return values

    def _instances_request(self, mailbox: str, a: Appointment, until: datetime) -> rq.GraphRequest:
        assert a.ref is not None
        start, end = instances_window(a, until)
        return rq.instances(mailbox, a.ref.id, start, end)

    async def instances(self, mailbox: str, a: Appointment) -> list[Json]:
        """The instances of a series up to the horizon, and up to the last occurrence `a`
        changes (for writing its exceptions)."""
        wanted = [*a.deleted_occurrences, *(o.original_start for o in a.modified_occurrences)]
        until = max([self._horizon(), *(w + timedelta(days=1) for w in wanted)])
        req = self._instances_request(mailbox, a, until)
        return await self._rest(mailbox, await self._client.call(mailbox, req, idempotent=True))

    async def master(self, mailbox: str, master_id: str) -> Appointment:
        """A series master with its exceptions and deleted occurrences folded in."""
        got = await self._fold(
            mailbox, await self._client.fetch(mailbox, EVENT, [master_id]), self._horizon()
        )
        if not got:
            raise ItemNotFoundError("the series master is gone", code="ErrorItemNotFound")
        return got[0]


def _delta_link(pages: list[Page]) -> str:
    link = pages[-1].delta_link
    if link is None:
        raise ProtocolError("delta ended without a deltaLink", code="Delta")
    return link
