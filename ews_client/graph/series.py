"""Recurring events in Graph: fold a master's `instances` into the model, and plan the
writes that make a series' exceptions match the model (pure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ews_client.graph.wire import Json, dtz, opt_str, parse_dtz, read_body, text_body
from ews_client.models import Appointment, ModifiedOccurrence
from ews_client.recurrence import expand

EXPANSION_LIMIT = 2000


def instances_window(master: Appointment, horizon: datetime) -> tuple[datetime, datetime]:
    """From the series' first start to `horizon` (occurrences beyond are not looked at)."""
    assert master.start is not None
    return master.start - timedelta(days=1), max(horizon, master.start + timedelta(days=1))


def _pattern_starts(master: Appointment, until: datetime) -> list[datetime]:
    if master.recurrence is None or master.start is None:
        return []
    starts = expand(master.start, master.time_zone, master.recurrence, limit=EXPANSION_LIMIT)
    return [s for s in starts if s < until]


def _original(obj: Json) -> datetime | None:
    value = obj.get("originalStart")
    if not value:
        return None
    return parse_dtz({"dateTime": str(value), "timeZone": "UTC"})


def _location(obj: Json) -> str | None:
    loc = obj.get("location")
    return opt_str(loc.get("displayName")) if isinstance(loc, dict) else None


def _exceptions(instances: list[Json]) -> list[ModifiedOccurrence]:
    out = []
    for obj in instances:
        original = _original(obj)
        if original is None or obj.get("type") != "exception":
            continue
        start, end = parse_dtz(obj.get("start")), parse_dtz(obj.get("end"))
        if start is None or end is None:
            continue
        subject = opt_str(obj.get("subject"))
        out.append(ModifiedOccurrence(original, start, end, subject, _location(obj),
                                      read_body(obj)))  # fmt: skip
    return sorted(out, key=lambda o: o.original_start)


def fold_instances(master: Appointment, instances: list[Json], until: datetime) -> Appointment:
    """The master with its modified occurrences (`type` exception) and its deleted ones
    (pattern occurrences before `until` that no instance stands for)."""
    seen = {o for obj in instances if (o := _original(obj)) is not None}
    deleted = tuple(s for s in _pattern_starts(master, until) if s not in seen)
    modified = tuple(_exceptions(instances))
    return replace(master, modified_occurrences=modified, deleted_occurrences=deleted)


@dataclass(frozen=True, slots=True)
class OccurrenceWrites:
    patches: tuple[tuple[str, Json], ...]  # (occurrence id, PATCH body)
    deletes: tuple[str, ...]  # occurrence ids


def _occurrence_body(occ: ModifiedOccurrence, zone: str) -> Json:
    return {
        "start": dtz(occ.start, zone),
        "end": dtz(occ.end, zone),
        "subject": occ.subject,
        "location": {"displayName": occ.location or ""},
        "body": text_body(occ.notes),
    }


def plan_occurrence_writes(wanted: Appointment, instances: list[Json]) -> OccurrenceWrites:
    """PATCH each occurrence that should be an exception (and is not yet as wanted), DELETE
    each occurrence that should be gone. Unknown original starts are skipped: the occurrence
    is outside the window or already deleted."""
    by_start = {o: obj for obj in instances if (o := _original(obj)) is not None}
    have = {o.original_start: o for o in _exceptions(instances)}
    patches = []
    for occ in wanted.modified_occurrences:
        obj = by_start.get(occ.original_start)
        if obj is not None and have.get(occ.original_start) != occ:
            patches.append((str(obj["id"]), _occurrence_body(occ, wanted.time_zone)))
    deletes = tuple(str(by_start[d]["id"]) for d in wanted.deleted_occurrences if d in by_start)
    return OccurrenceWrites(tuple(patches), deletes)
