"""The pure side of calendar sync over Graph: the moving window, the stored sync state, how
the instances a `calendarView/delta` lists name the items to fetch, and how a removal the
delta reports is confirmed.

calendarView/delta answers with instances (single events, occurrences, exceptions), never
with series masters: every occurrence or exception names its `seriesMasterId`, so the
masters are fetched in full to rebuild a series. The stored state is a small JSON object:
the delta link and the window it covers.

The window only bounds what an express pass looks at; it is never the calendar. A full read
lists `/calendar/events` (every single event and series master, any date), and an id the
window delta reports as removed counts as deleted only once a GET of it says it is gone:
an event that merely left the window (time passed, or it was moved out) is still there
(ews_client/PROTOCOL_NOTES.md, "Graph calendar coverage").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ews_client.errors import InvalidSyncStateError, ProtocolError
from ews_client.graph.responses import Page
from ews_client.graph.wire import Json, fmt_utc, parse_dt


@dataclass(frozen=True, slots=True)
class EventWindow:
    back: timedelta = timedelta(days=30)
    ahead: timedelta = timedelta(days=365)
    # The window moves when it has fallen this far behind "now": a fresh delta (no
    # reconcile needed: events leaving the window are not deletions).
    slack: timedelta = timedelta(days=1)

    def around(self, now: datetime) -> tuple[datetime, datetime]:
        """The window's start and end for `now` (whole seconds)."""
        now = now.replace(microsecond=0)
        return now - self.back, now + self.ahead

    def horizon(self, now: datetime) -> datetime:
        """How far ahead a series' instances are read: the window's end, from `now` (not from
        a stored window), so that every kind of pass folds a series the same way."""
        return self.around(now)[1]


@dataclass(frozen=True, slots=True)
class EventState:
    link: str
    start: datetime
    end: datetime

    def encode(self) -> str:
        return json.dumps(
            {"v": 1, "link": self.link, "start": fmt_utc(self.start), "end": fmt_utc(self.end)}
        )


def decode_state(text: str) -> EventState:
    try:
        obj = json.loads(text)
        return EventState(str(obj["link"]), parse_dt(obj["start"]), parse_dt(obj["end"]))
    except (ValueError, KeyError, TypeError, ProtocolError) as exc:
        raise InvalidSyncStateError("unreadable calendar sync state", code="BadState") from exc


@dataclass(frozen=True, slots=True)
class DeltaIds:
    """What a calendar delta named, each id once, in delta order."""

    singles: tuple[str, ...]
    masters: tuple[str, ...]
    removed: tuple[str, ...]  # neither a single nor a master listed in the same delta


def delta_ids(pages: Sequence[Page]) -> DeltaIds:
    """Sort the listed instances: single events, series masters (named by their occurrences
    and exceptions, or listed themselves) and removals."""
    singles: dict[str, None] = {}
    masters: dict[str, None] = {}
    removed: dict[str, None] = {}
    for page in pages:
        for obj in page.values:
            kind = obj.get("type")
            if kind in ("occurrence", "exception") and obj.get("seriesMasterId"):
                masters[str(obj["seriesMasterId"])] = None
            elif kind == "seriesMaster":
                masters[str(obj["id"])] = None
            else:
                singles[str(obj["id"])] = None
        removed.update(dict.fromkeys(page.removed))
    gone = tuple(r for r in removed if r not in singles and r not in masters)
    return DeltaIds(tuple(singles), tuple(masters), gone)


SERIES_PARTS = ("occurrence", "exception")


def listed_events(pages: Sequence[Page]) -> list[Json]:
    """The single events and series masters of a `/calendar/events` listing, each once (as
    last listed).

    The listing holds no occurrences or exceptions (those come from `instances`); one that
    shows up anyway is left out rather than taken for an event of its own.
    """
    seen: dict[str, Json] = {}
    for page in pages:
        for obj in page.values:
            if obj.get("type") not in SERIES_PARTS:
                # Overlapping pages list an event twice: the later copy is the fresher one
                # (the order stays that of first sight).
                seen[str(obj["id"])] = obj
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What a GET of each id a window delta reported as removed said."""

    gone: tuple[str, ...]  # 404: really deleted
    present: tuple[Json, ...]  # single events and masters still there (they left the window)
    masters: tuple[str, ...]  # series whose occurrence is still there: read the series again


def confirm_removed(removed: Sequence[str], found: Mapping[str, Json]) -> Confirmed:
    """Sort the reported removals by what the server answered (`found`: id -> body of the
    ids still there; an id not in it answered "not found")."""
    gone: list[str] = []
    present: list[Json] = []
    masters: dict[str, None] = {}
    for rid in removed:
        obj = found.get(rid)
        if obj is None:
            gone.append(rid)
        elif obj.get("type") in SERIES_PARTS and obj.get("seriesMasterId"):
            masters[str(obj["seriesMasterId"])] = None
        else:
            present.append(obj)
    return Confirmed(tuple(gone), tuple(present), tuple(masters))
