"""Servers and mailboxes (`sql/mailboxes.sql`): their rows, their states, one method per query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from typing import TypeVar

import asyncpg

from sync_service.db.enums import ENTITY_MODES, MAILBOX_STATES, EntityMode, MailboxState
from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries

__all__ = [
    "ENTITY_MODES",
    "MAILBOX_STATES",
    "EntityMode",
    "Mailbox",
    "MailboxState",
    "NewServer",
    "Server",
    "Store",
    "mailbox_of",
    "server_of",
]
T = TypeVar("T")


_MODE_COLUMNS = ("contacts_mode", "calendar_mode", "tasks_mode")


def _from_row(cls: type[T], row: asyncpg.Record) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in dict(row).items() if k in names})


def server_of(row: asyncpg.Record) -> Server:
    """A server row (`SELECT *` of sync.servers) as a Server."""
    return _from_row(Server, row)


def mailbox_of(row: asyncpg.Record) -> Mailbox:
    """A mailbox row (`SELECT *` of sync.mailboxes, extra columns ignored) as a Mailbox."""
    values = {k: v for k, v in dict(row).items() if k in _MAILBOX_FIELDS}
    values["state"] = MailboxState(values["state"])
    for column in _MODE_COLUMNS:
        values[column] = EntityMode(values[column])
    return Mailbox(**values)


@dataclass(frozen=True, slots=True)
class Server:
    id: int
    name: str
    backend: str
    url: str
    auth_kind: str
    username: str | None
    tenant: str | None
    client_id: str | None
    authority: str | None
    secret_env: str | None
    secret_file: str | None
    ca_file: str | None
    time_zone: str
    express_interval: timedelta
    complete_at: time
    max_concurrency: int
    rate_per_second: float
    enabled: bool
    scope: str | None = None  # oauth: the token scope; None: the backend's default
    certificate_file: str | None = None  # oauth: PEM of client certificate + key, not a secret


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    crm_user_id: str
    email: str
    server_id: int
    server_group: str | None
    contacts_mode: EntityMode
    calendar_mode: EntityMode
    tasks_mode: EntityMode
    state: MailboxState
    state_reason: str | None
    failure_count: int
    last_error: str | None
    marker_generation: int
    marker_at: datetime | None
    initial_done: bool
    last_express_at: datetime | None
    last_complete_at: datetime | None

    def mode(self, entity: str) -> EntityMode:
        return {
            "contact": self.contacts_mode,
            "appointment": self.calendar_mode,
            "task": self.tasks_mode,
        }[entity]


@dataclass(frozen=True, slots=True)
class NewServer:
    name: str
    backend: str
    url: str
    auth_kind: str
    username: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    authority: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    ca_file: str | None = None
    time_zone: str = "UTC"
    express_interval: timedelta = timedelta(minutes=15)
    complete_at: time = time(2, 0)
    max_concurrency: int = 50
    rate_per_second: float = 100.0
    # Last: server_insert and server_update take the fields in this order.
    scope: str | None = None
    certificate_file: str | None = None


class Store:
    """The servers and mailboxes tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    # servers
    async def add_server(self, new: NewServer) -> Server:
        values = [getattr(new, f.name) for f in fields(NewServer)]
        row = await self.pool.fetchrow(self._q["server_insert"], *values)
        assert row is not None
        return server_of(row)

    async def servers(self) -> list[Server]:
        return [server_of(r) for r in await self.pool.fetch(self._q["server_list"])]

    async def server(self, server_id: int) -> Server | None:
        row = await self.pool.fetchrow(self._q["server_get"], server_id)
        return server_of(row) if row else None

    async def server_by_name(self, name: str) -> Server | None:
        row = await self.pool.fetchrow(self._q["server_get_by_name"], name)
        return server_of(row) if row else None

    async def replace_server(self, name: str, spec: NewServer) -> bool:
        """Write every setting of `spec` (but its name) to server `name`; False: no such one."""
        values = [getattr(spec, f.name) for f in fields(NewServer) if f.name != "name"]
        return await self.pool.fetchrow(self._q["server_update"], name, *values) is not None

    async def remove_server(self, name: str) -> bool:
        """Delete a server no mailbox uses; False when it still has mailboxes (or is gone)."""
        return await self.pool.fetchval(self._q["server_delete"], name) is not None

    async def server_mailbox_count(self, name: str) -> int:
        return int(await self.pool.fetchval(self._q["server_mailbox_count"], name))

    # mailboxes
    async def upsert_mailbox(
        self,
        conn: Conn,
        crm_user_id: str,
        email: str,
        server_id: int,
        group: str | None,
        modes: tuple[str, str, str],
    ) -> tuple[Mailbox, bool]:
        row = await conn.fetchrow(
            self._q["mailbox_upsert"], crm_user_id, email, server_id, group, *modes
        )
        assert row is not None
        return mailbox_of(row), bool(row["inserted"])

    async def mailbox(self, mailbox_id: int) -> Mailbox | None:
        row = await self.pool.fetchrow(self._q["mailbox_get"], mailbox_id)
        return mailbox_of(row) if row else None

    async def mailbox_by_email(self, email: str) -> Mailbox | None:
        row = await self.pool.fetchrow(self._q["mailbox_get_by_email"], email)
        return mailbox_of(row) if row else None

    async def mailboxes(
        self,
        *,
        state: str | None = None,
        groups: list[str] | None = None,
        server_id: int | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[Mailbox]:
        rows = await self.pool.fetch(
            self._q["mailbox_list"], state, groups, server_id, after_id, limit
        )
        return [mailbox_of(r) for r in rows]

    async def mailbox_owners(self, emails: list[str]) -> dict[str, str]:
        """address -> CRM user id, for those of `emails` some mailbox has."""
        rows = await self.pool.fetch(self._q["mailbox_owners"], emails)
        return {r["email"]: r["crm_user_id"] for r in rows}

    async def set_mailbox_state(
        self, mailbox_id: int, state: MailboxState, reason: str | None
    ) -> None:
        await self.pool.execute(self._q["mailbox_set_state"], mailbox_id, state, reason)

    async def pass_succeeded(
        self,
        mailbox_id: int,
        kind: str,
        marker: tuple[int, datetime],
        states: Sequence[tuple[str, str, int]],
    ) -> None:
        """Record a successful pass with the (entity, sync state, watermark) that moved."""
        await self.pool.execute(
            self._q["mailbox_pass_end"],
            mailbox_id,
            kind,
            marker[0],
            marker[1],
            [entity for entity, _, _ in states],
            [sync_state for _, sync_state, _ in states],
            [watermark for _, _, watermark in states],
        )

    async def pass_failed(self, mailbox_id: int, error: str, max_failures: int) -> MailboxState:
        """Count a transient failure; returns the mailbox's state afterwards."""
        state = await self.pool.fetchval(
            self._q["mailbox_pass_failed"], mailbox_id, error, max_failures
        )
        return MailboxState(state)

    async def set_mailbox_options(
        self,
        email: str,
        *,
        group: str | None = None,
        set_group: bool = False,
        contacts: str | None = None,
        calendar: str | None = None,
        tasks: str | None = None,
    ) -> Mailbox | None:
        row = await self.pool.fetchrow(
            self._q["mailbox_set_options"], email, set_group, group, contacts, calendar, tasks
        )
        return mailbox_of(row) if row else None

    async def mailbox_counts_by_state(self) -> dict[str, int]:
        rows = await self.pool.fetch(self._q["mailbox_counts_by_state"])
        return {r["state"]: int(r["n"]) for r in rows}

    async def mark_pushed(self, mailbox_id: int) -> None:
        """A notification asked for a pass: the express sweep may skip the mailbox meanwhile."""
        await self.pool.execute(self._q["mailbox_pushed"], mailbox_id)


_MAILBOX_FIELDS = frozenset(f.name for f in fields(Mailbox))
