"""Calendar sync over Graph: `calendarView/delta` over a window that moves forward, plus the
series masters (and their instances) so that recurrences and their exceptions survive.

The requests go out here; the window, the stored state and the sorting of what a delta
lists are pure (`graph/calendar_delta.py`). Each master is fetched (GET /events/{id})
together with its `instances` to rebuild the model's series.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ews_client.errors import ItemNotFoundError, ProtocolError
from ews_client.graph import requests as rq
from ews_client.graph.calendar_delta import EventState, EventWindow, decode_state, delta_ids
from ews_client.graph.events import event_from_json
from ews_client.graph.responses import InnerResponse, Page, parse_page
from ews_client.graph.series import fold_instances, instances_window
from ews_client.graph.wire import Json
from ews_client.models import Appointment, EntityKind, Removal, SyncResult, Upsert

EVENT = EntityKind.APPOINTMENT


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
    def __init__(
        self, client: GraphCalls, window: EventWindow, clock: Callable[[], datetime]
    ) -> None:
        self._client = client
        self._window = window
        self._clock = clock

    def _current_window(self) -> tuple[datetime, datetime]:
        return self._window.around(self._clock())

    async def sync(self, mailbox: str, state: str | None, *, restarted: bool) -> SyncResult:
        start, end = self._current_window()
        old = decode_state(state) if state is not None else None
        if old is not None and start - old.start < self._window.slack:
            first, start, end = rq.follow(old.link, EVENT), old.start, old.end
        else:
            first = rq.events_delta(mailbox, start, end)
        pages = await self._client.pages(mailbox, first, EVENT)
        link = pages[-1].delta_link
        if link is None:
            raise ProtocolError("delta ended without a deltaLink", code="Delta")
        ids = delta_ids(pages)
        items = await self._full(mailbox, [*ids.singles, *ids.masters], end)
        changes = [Upsert(a) for a in items]
        gone = [Removal(r) for r in ids.removed]
        new_state = EventState(link, start, end).encode()
        return SyncResult((*changes, *gone), new_state, restarted)

    async def _full(self, mailbox: str, ids: list[str], until: datetime) -> list[Appointment]:
        fetched = await self._client.fetch(mailbox, EVENT, ids)
        events = [event_from_json(obj) for obj in fetched]
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

    def _horizon(self) -> datetime:
        return self._current_window()[1]

    def _instances_request(self, mailbox: str, a: Appointment, until: datetime) -> rq.GraphRequest:
        assert a.ref is not None
        start, end = instances_window(a, until)
        return rq.instances(mailbox, a.ref.id, start, end)

    async def instances(self, mailbox: str, a: Appointment) -> list[Json]:
        """Every instance of a series up to the window's end (for writing its exceptions)."""
        req = self._instances_request(mailbox, a, self._horizon())
        return await self._rest(mailbox, await self._client.call(mailbox, req, idempotent=True))

    async def master(self, mailbox: str, master_id: str) -> Appointment:
        """A series master with its exceptions and deleted occurrences folded in."""
        got = await self._full(mailbox, [master_id], self._horizon())
        if not got:
            raise ItemNotFoundError("the series master is gone", code="ErrorItemNotFound")
        return got[0]
