"""Recurrence <-> Graph `patternedRecurrence` JSON."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from ews_client.errors import ProtocolError
from ews_client.graph.wire import Json
from ews_client.models import Recurrence, RecurrenceKind, WeekIndex

KIND_TO_GRAPH: dict[str, str] = {
    "daily": "daily",
    "weekly": "weekly",
    "absolute_monthly": "absoluteMonthly",
    "relative_monthly": "relativeMonthly",
    "absolute_yearly": "absoluteYearly",
    "relative_yearly": "relativeYearly",
}
KIND_FROM_GRAPH = {v: k for k, v in KIND_TO_GRAPH.items()}
WEEK_INDEXES = ("first", "second", "third", "fourth", "last")


def recurrence_to_json(rec: Recurrence, zone: str) -> Json:
    pattern: Json = {"type": KIND_TO_GRAPH[rec.kind], "interval": rec.interval}
    if rec.days_of_week:
        pattern["daysOfWeek"] = list(rec.days_of_week)
    if rec.day_of_month is not None:
        pattern["dayOfMonth"] = rec.day_of_month
    if rec.month is not None:
        pattern["month"] = rec.month
    if rec.week_index is not None:
        pattern["index"] = rec.week_index
    start = rec.start_date.isoformat() if rec.start_date else None
    rng: Json = {"type": "noEnd", "startDate": start, "recurrenceTimeZone": zone}
    if rec.end_date is not None:
        rng.update(type="endDate", endDate=rec.end_date.isoformat())
    elif rec.occurrences is not None:
        rng.update(type="numbered", numberOfOccurrences=rec.occurrences)
    return {"pattern": pattern, "range": rng}


def _day(value: Any) -> date | None:
    # Graph writes "0001-01-01" for an absent endDate.
    if not value or str(value).startswith("0001-"):
        return None
    return date.fromisoformat(str(value)[:10])


def _int(value: Any) -> int | None:
    return int(value) if value else None


def recurrence_from_json(obj: Any) -> Recurrence | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("pattern"), dict):
        return None
    pattern, rng = obj["pattern"], obj.get("range") or {}
    kind = KIND_FROM_GRAPH.get(str(pattern.get("type")))
    if kind is None:
        raise ProtocolError(f"unknown recurrence type {pattern.get('type')!r}")
    index = pattern.get("index")
    # Graph sends index "first" and dayOfMonth 0 even where the pattern has none: keep what
    # the pattern kind uses, so that a round trip compares equal.
    relative = kind.startswith("relative")
    yearly = kind.endswith("yearly")
    return Recurrence(
        kind=cast(RecurrenceKind, kind),
        interval=int(pattern.get("interval") or 1),
        days_of_week=tuple(str(d).lower() for d in pattern.get("daysOfWeek") or ()),
        day_of_month=_int(pattern.get("dayOfMonth")) if not relative else None,
        month=_int(pattern.get("month")) if yearly else None,
        week_index=cast(WeekIndex, index) if relative and index in WEEK_INDEXES else None,
        start_date=_day(rng.get("startDate")),
        end_date=_day(rng.get("endDate")) if rng.get("type") == "endDate" else None,
        occurrences=_int(rng.get("numberOfOccurrences")) if rng.get("type") == "numbered" else None,
    )
