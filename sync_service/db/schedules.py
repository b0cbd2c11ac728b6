"""Express schedules beyond a server's own interval (`sql/schedules.sql`): per entity, per
server, per set of server groups; and the mailboxes as the per-entity sweep reads them.

What a schedule covers and which one decides is said in schema/0012_entity_scope.sql; the
decision itself is `dispatcher/schedule.py::express_interval`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ews_client import EntityKind
from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries
from sync_service.db.queue import Entities, entity_array, entity_scope


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One schedule as the sweep reads it."""

    server_id: int | None  # None: every server
    groups: frozenset[str] | None  # None: any group or none
    entities: Entities
    interval: timedelta | None  # None: no express sweep for what it covers


@dataclass(frozen=True, slots=True)
class NamedSchedule:
    """One schedule as the operator sees it."""

    name: str
    server: str | None
    groups: list[str] | None
    entities: Entities
    interval: timedelta | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EntityMailbox:
    """An active mailbox as the per-entity sweep sees it."""

    id: int
    group: str | None
    initial_done: bool
    modes: tuple[str, str, str]  # contacts, calendar, tasks
    last_pass_at: dict[EntityKind, datetime | None]


class ScheduleStore:
    """The `sync.schedules` table and the per-entity sweep's read of the mailboxes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def upsert(
        self,
        name: str,
        server_id: int | None,
        groups: Sequence[str] | None,
        entities: Entities,
        interval: timedelta | None,
    ) -> bool:
        """Create or replace the schedule `name`; True when it is new."""
        inserted = await self.pool.fetchval(
            self._q["schedule_upsert"],
            name,
            server_id,
            None if groups is None else sorted(set(groups)),
            entity_array(entities),
            interval,
        )
        return bool(inserted)

    async def delete(self, name: str) -> bool:
        """Remove the schedule `name`; False when there is none."""
        return await self.pool.fetchval(self._q["schedule_delete"], name) is not None

    async def named(self, server_id: int | None = None) -> list[NamedSchedule]:
        """Every schedule (or those that cover server `server_id`), by name."""
        rows = await self.pool.fetch(self._q["schedule_list"], server_id)
        return [
            NamedSchedule(
                r["name"],
                r["server"],
                r["groups"],
                entity_scope(r["entities"]),
                r["express_interval"],
                r["updated_at"],
            )
            for r in rows
        ]

    async def rules(self, conn: Conn | None = None) -> list[ScheduleRow]:
        on = self.pool if conn is None else conn
        return [
            ScheduleRow(
                r["server_id"],
                None if r["groups"] is None else frozenset(r["groups"]),
                entity_scope(r["entities"]),
                r["express_interval"],
            )
            for r in await on.fetch(self._q["schedule_rules"])
        ]

    async def mailboxes(
        self, conn: Conn, server_id: int, groups: Collection[str] | None
    ) -> list[EntityMailbox]:
        """Active mailboxes of a server, limited to `groups` if given, with per-entity times."""
        wanted = None if groups is None else list(groups)
        rows = await conn.fetch(self._q["schedule_entity_mailboxes"], server_id, wanted)
        return [
            EntityMailbox(
                r["id"],
                r["server_group"],
                r["initial_done"],
                (r["contacts_mode"], r["calendar_mode"], r["tasks_mode"]),
                {
                    EntityKind.CONTACT: r["contact_at"],
                    EntityKind.APPOINTMENT: r["appointment_at"],
                    EntityKind.TASK: r["task_at"],
                },
            )
            for r in rows
        ]
