"""Canonical values of recurring series: pattern, exceptions and deleted occurrences.

A series compares as three fields (pattern, modified occurrences, deleted occurrences) beside
the master's own fields, so that a change to one occurrence changes the exceptions field only
and never rewrites the whole series on the other side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from datetime import date, datetime
from typing import Any, cast

from ews_client.models import ModifiedOccurrence, Recurrence

from . import values as v
from .values import JsonValue


def norm_recurrence(raw: object) -> JsonValue:
    if raw is None:
        return None
    if not isinstance(raw, Recurrence):
        raise TypeError(f"expected a Recurrence, got {type(raw).__name__}")
    out: dict[str, JsonValue] = {}
    for field in dataclass_fields(Recurrence):
        value = getattr(raw, field.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [str(day).lower() for day in value]
        out[field.name] = value
    return out


def parse_recurrence(value: JsonValue) -> Recurrence | None:
    if not isinstance(value, dict):
        return None
    args: dict[str, Any] = dict(value)
    for name in ("start_date", "end_date"):
        args[name] = v.parse_date(value.get(name))
    args["days_of_week"] = tuple(cast(list[str], value.get("days_of_week") or []))
    return Recurrence(**args)


def _occurrence(raw: ModifiedOccurrence) -> dict[str, JsonValue]:
    return {
        "original_start": v.iso_utc(raw.original_start),
        "start": v.iso_utc(raw.start),
        "end": v.iso_utc(raw.end),
        "subject": v.norm_line(raw.subject),
        "location": v.norm_line(raw.location),
        "notes": v.norm_text(raw.notes),
    }


def norm_modified(raw: object) -> JsonValue:
    """Exceptions sorted by their original start (the occurrence's identity in the series)."""
    items = [_occurrence(item) for item in cast(Iterable[ModifiedOccurrence], raw or ())]
    items.sort(key=lambda item: str(item["original_start"]))
    return cast(list[JsonValue], items)


def parse_modified(value: JsonValue) -> tuple[ModifiedOccurrence, ...]:
    out: list[ModifiedOccurrence] = []
    for item in value if isinstance(value, list) else []:
        entry = cast(dict[str, JsonValue], item)
        out.append(
            ModifiedOccurrence(
                original_start=_dt(entry["original_start"]),
                start=_dt(entry["start"]),
                end=_dt(entry["end"]),
                subject=cast(str | None, entry.get("subject")),
                location=cast(str | None, entry.get("location")),
                notes=cast(str | None, entry.get("notes")),
            )
        )
    return tuple(out)


def norm_deleted(raw: object) -> JsonValue:
    starts = {v.iso_utc(moment) for moment in cast(Iterable[datetime], raw or ())}
    return cast(list[JsonValue], sorted(starts))


def parse_deleted(value: JsonValue) -> tuple[datetime, ...]:
    return tuple(_dt(item) for item in value) if isinstance(value, list) else ()


def _dt(value: JsonValue) -> datetime:
    moment = v.parse_datetime(value)
    if moment is None:
        raise ValueError("occurrence without a start")
    return moment


def combine_deleted(
    base: JsonValue, crm: JsonValue, exchange: JsonValue, winner: JsonValue
) -> JsonValue:
    """Deleted occurrences stay deleted: a deletion on either side survives any conflict."""
    del base, winner
    union = {str(item) for item in _list(crm)} | {str(item) for item in _list(exchange)}
    return cast(list[JsonValue], sorted(union))


def combine_modified(
    base: JsonValue, crm: JsonValue, exchange: JsonValue, winner: JsonValue
) -> JsonValue:
    """Three-way merge per occurrence: an edit of one occurrence never undoes another's.

    The same occurrence edited differently on both sides takes the conflict winner's version.
    """
    sides = [_by_start(base), _by_start(crm), _by_start(exchange), _by_start(winner)]
    out: list[JsonValue] = []
    for start in sorted(set(sides[1]) | set(sides[2]) | set(sides[0])):
        old, left, right, won = (side.get(start) for side in sides)
        value = left if left == right or right == old else right if left == old else won
        if value is not None:
            out.append(value)
    return out


def _list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def _by_start(value: JsonValue) -> dict[str, JsonValue]:
    return {str(cast(dict[str, JsonValue], item)["original_start"]): item for item in _list(value)}


RECURRENCE = v.Codec("recurrence", norm_recurrence, lambda value: value)
MODIFIED = v.Codec("modified_occurrences", norm_modified, lambda value: value)
DELETED = v.Codec("deleted_occurrences", norm_deleted, lambda value: value)
