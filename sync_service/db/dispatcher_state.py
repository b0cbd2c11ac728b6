"""The dispatcher's state (`sql/dispatcher.sql`): leadership, CRM cursor, schedules, retention.

Also the dispatcher's reads of mailboxes and servers. A method that takes `conn` runs inside
the caller's transaction (or on the leader's lock connection); the others use the pool.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries
from sync_service.db.store import Server, server_of

PurgedTable = Literal["runs", "item_errors", "jobs", "audit"]


@dataclass(frozen=True, slots=True)
class DispatcherStatus:
    leader: str | None
    leader_since: datetime | None
    heartbeat_at: datetime | None  # the leader proves its lock session every second
    crm_cursor: int | None
    last_retention_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduledMailbox:
    """An active mailbox as the schedules see it."""

    id: int
    server_group: str | None
    last_express_at: datetime | None
    initial_done: bool


@dataclass(frozen=True, slots=True)
class WatchedMailbox:
    """An active mailbox of an enabled server, for push subscriptions."""

    id: int
    email: str
    server_id: int
    modes: tuple[str, str, str] = ("", "", "")  # contacts, calendar, tasks (EWS only)


class DispatcherState:
    """The `sync.dispatcher` row, the server schedules and what the dispatcher reads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    # leadership, on the connection that holds the advisory lock
    async def claim_leadership(self, conn: Conn, name: str) -> None:
        await conn.execute(self._q["dispatcher_claim_leadership"], name)

    async def heartbeat(self, conn: Conn, name: str) -> None:
        await conn.execute(self._q["dispatcher_heartbeat"], name)

    async def status(self) -> DispatcherStatus:
        row = await self.pool.fetchrow(self._q["dispatcher_status"])
        assert row is not None  # the migration inserts the one row
        return DispatcherStatus(
            row["leader"],
            row["leader_since"],
            row["heartbeat_at"],
            row["crm_cursor"],
            row["last_retention_at"],
        )

    # the CRM change feed
    async def crm_cursor(self) -> int | None:
        cursor: int | None = await self.pool.fetchval(self._q["dispatcher_cursor"])
        return cursor

    async def set_crm_cursor(
        self, expected: int | None, cursor: int, conn: Conn | None = None
    ) -> bool:
        """Move the cursor from `expected` to `cursor`; False when it was not `expected`."""
        on = self.pool if conn is None else conn
        status = await on.execute(self._q["dispatcher_set_cursor"], expected, cursor)
        return bool(status.endswith(" 1"))

    async def mailboxes_of_users(self, conn: Conn, users: list[str]) -> list[tuple[int, str]]:
        """(mailbox id, CRM user id) of the active mailboxes of `users`."""
        rows = await conn.fetch(self._q["dispatcher_mailboxes_of_users"], users)
        return [(r["id"], r["crm_user_id"]) for r in rows]

    # schedules
    async def enabled_servers(self) -> list[Server]:
        return [server_of(r) for r in await self.pool.fetch(self._q["dispatcher_enabled_servers"])]

    async def scheduled_mailboxes(
        self, conn: Conn, server_id: int | None, groups: Collection[str] | None
    ) -> list[ScheduledMailbox]:
        """Active mailboxes of a server (None: every server), limited to `groups` if given."""
        wanted = None if groups is None else list(groups)
        rows = await conn.fetch(self._q["dispatcher_schedule_mailboxes"], server_id, wanted)
        return [
            ScheduledMailbox(r["id"], r["server_group"], r["last_express_at"], r["initial_done"])
            for r in rows
        ]

    async def complete_through(self, conn: Conn, server_id: int) -> datetime | None:
        through: datetime | None = await conn.fetchval(
            self._q["dispatcher_complete_through"], server_id
        )
        return through

    async def set_complete_through(self, conn: Conn, server_id: int, at: datetime) -> None:
        await conn.execute(self._q["dispatcher_set_complete_through"], server_id, at)

    async def needing_recovery(self, conn: Conn) -> list[int]:
        return [r["id"] for r in await conn.fetch(self._q["dispatcher_needs_recovery"])]

    # push
    async def push_mailboxes(self) -> list[WatchedMailbox]:
        """Active mailboxes of the enabled EWS servers, with the modes that decide folders."""
        rows = await self.pool.fetch(self._q["dispatcher_push_mailboxes"])
        return [
            WatchedMailbox(
                r["id"],
                r["email"],
                r["server_id"],
                (r["contacts_mode"], r["calendar_mode"], r["tasks_mode"]),
            )
            for r in rows
        ]

    async def graph_mailboxes(self) -> list[WatchedMailbox]:
        """Active mailboxes of the enabled Graph servers."""
        rows = await self.pool.fetch(self._q["dispatcher_graph_mailboxes"])
        return [WatchedMailbox(r["id"], r["email"], r["server_id"]) for r in rows]

    async def mark_pushed(self, conn: Conn, mailbox_ids: list[int], at: datetime) -> None:
        await conn.execute(self._q["dispatcher_mark_push"], mailbox_ids, at)

    # retention
    async def last_retention(self, conn: Conn) -> datetime | None:
        last: datetime | None = await conn.fetchval(self._q["dispatcher_last_retention"])
        return last

    async def purge(self, conn: Conn, table: PurgedTable, cutoff: datetime) -> int:
        """Delete the rows of `table` older than `cutoff`; how many went."""
        status = await conn.execute(self._q[f"dispatcher_purge_{table}"], cutoff)
        return int(status.rsplit(" ", 1)[1])

    async def log_read_from(self) -> int | None:
        """The oldest CRM log position a mailbox or the feed still reads from."""
        pos: int | None = await self.pool.fetchval(self._q["dispatcher_log_read_from"])
        return pos

    async def set_retention(self, conn: Conn, at: datetime) -> None:
        await conn.execute(self._q["dispatcher_set_retention"], at)
