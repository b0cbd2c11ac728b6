"""How the console shows values: the templates' filters (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

STATE_LABELS = {
    "active": "active",
    "disabled": "disabled",
    "quarantined": "quarantined",
    "needs_recovery": "needs recovery",
}


def when(value: datetime | None) -> str:
    """An instant as UTC, to the second; a dash for none."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value.tzinfo else str(value)


def seconds(value: float | int | None) -> str:
    """A duration in words an operator reads at a glance: 45 s, 12 min, 3 h 5 min."""
    if value is None:
        return "-"
    total = int(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min"
    hours, minutes = divmod(total // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def interval(value: timedelta | None) -> str:
    return "-" if value is None else seconds(value.total_seconds())


def state_label(state: object) -> str:
    text = str(getattr(state, "value", state))
    return STATE_LABELS.get(text, text)


def shown(value: Any) -> str:
    """A field's value in a plan or an audit row: text as it is, anything else as JSON."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def counts(value: Mapping[str, Any] | str | None) -> str:
    """A run's {entity: {direction: {operation: n}}} as 'contact crm_to_exchange create 3'."""
    found: Mapping[str, Any] = json.loads(value) if isinstance(value, str) else value or {}
    if not found:
        return "nothing written"
    parts = [
        f"{entity} {direction} {operation} {n}"
        for entity, directions in sorted(found.items())
        if isinstance(directions, Mapping)
        for direction, operations in sorted(directions.items())
        if isinstance(operations, Mapping)
        for operation, n in sorted(operations.items())
    ]
    return ", ".join(parts) or "nothing written"


def planned(entities: list[dict[str, Any]] | str | None) -> str:
    """A dry run's per-entity summaries."""
    found: list[dict[str, Any]] = (
        json.loads(entities) if isinstance(entities, str) else entities or []
    )
    if not found:
        return "-"
    return "; ".join(str(e.get("summary", "")) for e in found)


FILTERS: dict[str, Callable[..., str]] = {
    "when": when,
    "seconds": seconds,
    "interval": interval,
    "state_label": state_label,
    "shown": shown,
    "counts": counts,
    "planned": planned,
}
