"""Express schedules as the operator sets them, for the CLI (`schedules`) and the API.

A schedule names what it covers (a server, some server groups, some entities: at least a
server or groups) and how often an express pass of it runs (`every`: a duration, or `off`
for no express sweep of what it covers). Which schedule decides for a mailbox's entity is
`dispatcher/schedule.py::express_interval`; without any, a server keeps its own
express_interval for every entity, as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sync_service.config import parse_duration
from sync_service.db.schedules import NamedSchedule, ScheduleStore
from sync_service.operator.csv_import import IDENTIFIER_MAX, text_problem
from sync_service.operator.entity_names import entity_words, parse_entities
from sync_service.operator.operations import NotFound, Operations
from sync_service.operator.server_specs import NAME_PATTERN, InvalidInput

log = logging.getLogger("sync_service.operator.schedules")
_NAME = re.compile(NAME_PATTERN)
OFF = "off"
# Bounds: an interval the sweep can keep (a tick is a few seconds) and a year at most.
MIN_INTERVAL = timedelta(seconds=10)
MAX_INTERVAL = timedelta(days=366)
# Groups of one schedule: as many as a deployment has (the bound only keeps one request sane).
MAX_GROUPS = 10_000


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule as given: names and words, checked by `Schedules.set`."""

    server: str | None = None
    groups: Sequence[str] | None = None
    entities: Sequence[str] | None = None
    every: str = "15m"


@dataclass(frozen=True, slots=True)
class ScheduleView:
    name: str
    server: str | None
    groups: list[str] | None
    entities: list[str] | None
    every: str  # a duration in seconds ("300s") or "off"
    express_interval_seconds: float | None
    updated_at: datetime


def parse_every(value: str) -> timedelta | None:
    """`15m`, `1h`, `300` (seconds) -> the interval; `off` -> None."""
    if value.strip().lower() == OFF:
        return None
    try:
        interval = timedelta(seconds=parse_duration(value))
    except ValueError as exc:
        raise InvalidInput("every", f"{exc}, or off") from None
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidInput("every", "must be between 10s and 366d, or off")
    return interval


def check_name(name: str) -> str:
    problem = text_problem(name, 63)
    if problem is not None:
        raise InvalidInput("name", problem)
    if not _NAME.fullmatch(name):
        raise InvalidInput("name", "use 1-63 letters, digits, '.', '_' or '-'")
    return name


def check_groups(groups: Sequence[str] | None) -> list[str] | None:
    if groups is None:
        return None
    if not groups:
        raise InvalidInput("groups", "give at least one group, or none for every mailbox")
    if len(groups) > MAX_GROUPS:
        raise InvalidInput("groups", f"at most {MAX_GROUPS} groups")
    for group in groups:
        problem = "must not be empty" if not group else text_problem(group, IDENTIFIER_MAX)
        if problem is not None:
            raise InvalidInput("groups", f"{group!r}: {problem}")
    return sorted(set(groups))


def view(schedule: NamedSchedule) -> ScheduleView:
    seconds = None if schedule.interval is None else schedule.interval.total_seconds()
    every = OFF if seconds is None else f"{seconds:g}s"
    return ScheduleView(
        schedule.name,
        schedule.server,
        schedule.groups,
        entity_words(schedule.entities),
        every,
        seconds,
        schedule.updated_at,
    )


class Schedules:
    """The operator's schedules, over the `Operations` of the CLI or the API."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.store = ScheduleStore(ops.pool)

    async def set(self, name: str, spec: ScheduleSpec) -> tuple[ScheduleView, bool]:
        """Create or replace schedule `name`; (the schedule, whether it is new)."""
        check_name(name)
        groups = check_groups(spec.groups)
        if spec.server is None and groups is None:
            raise InvalidInput("server", "give a server, groups, or both")
        server_id = None if spec.server is None else (await self.ops.server(spec.server)).id
        entities = parse_entities(spec.entities)
        interval = parse_every(spec.every)
        new = await self.store.upsert(name, server_id, groups, entities, interval)
        log.info("schedule set", extra={"schedule": name, "new": new})
        return await self.get(name), new

    async def get(self, name: str) -> ScheduleView:
        for schedule in await self.store.named():
            if schedule.name == name:
                return view(schedule)
        raise NotFound("name", f"no schedule named {name!r}; see `schedules list`")

    async def list(self, server: str | None = None) -> list[ScheduleView]:
        """Every schedule, or those that cover `server` (its own and every server's)."""
        server_id = None if server is None else (await self.ops.server(server)).id
        return [view(s) for s in await self.store.named(server_id)]

    async def remove(self, name: str) -> None:
        if not await self.store.delete(name):
            raise NotFound("name", f"no schedule named {name!r}; see `schedules list`")
        log.info("schedule removed", extra={"schedule": name})


def schedule_json(schedule: ScheduleView) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "server": schedule.server,
        "groups": schedule.groups,
        "entities": schedule.entities,
        "every": schedule.every,
        "express_interval_seconds": schedule.express_interval_seconds,
        "updated_at": schedule.updated_at,
    }
