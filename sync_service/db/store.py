"""Typed access to the `sync` schema: one method per named query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from typing import Any, Self, TypeVar

import asyncpg

from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries

ENTITY_MODES = ("two-way", "crm-to-exchange", "exchange-to-crm", "off")
MAILBOX_STATES = ("active", "disabled", "quarantined", "needs_recovery")
T = TypeVar("T")


def _from_row(cls: type[T], row: asyncpg.Record) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in dict(row).items() if k in names})


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


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    crm_user_id: str
    email: str
    server_id: int
    server_group: str | None
    contacts_mode: str
    calendar_mode: str
    tasks_mode: str
    state: str
    state_reason: str | None
    failure_count: int
    last_error: str | None
    marker_generation: int
    marker_at: datetime | None
    initial_done: bool
    last_express_at: datetime | None
    last_complete_at: datetime | None

    def mode(self, entity: str) -> str:
        return {
            "contact": self.contacts_mode,
            "appointment": self.calendar_mode,
            "task": self.tasks_mode,
        }[entity]


@dataclass(frozen=True, slots=True)
class LinkRow:
    """The last-synced state of one item pair (the 3-way sync's status row)."""

    crm_id: str
    exchange_id: str
    change_key: str
    crm_hash: str
    exchange_hash: str
    synced_fields: dict[str, Any]
    pending: str = ""
    intent_hash: str = ""

    @classmethod
    def of(cls, row: asyncpg.Record) -> Self:
        return _from_row(cls, row)


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


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.q = load_queries()

    # servers
    async def add_server(self, new: NewServer) -> Server:
        values = [getattr(new, f.name) for f in fields(NewServer)]
        row = await self.pool.fetchrow(self.q["server_insert"], *values)
        assert row is not None
        return _from_row(Server, row)

    async def servers(self) -> list[Server]:
        return [_from_row(Server, r) for r in await self.pool.fetch(self.q["server_list"])]

    async def server(self, server_id: int) -> Server | None:
        row = await self.pool.fetchrow(self.q["server_get"], server_id)
        return _from_row(Server, row) if row else None

    async def server_by_name(self, name: str) -> Server | None:
        row = await self.pool.fetchrow(self.q["server_get_by_name"], name)
        return _from_row(Server, row) if row else None

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
            self.q["mailbox_upsert"], crm_user_id, email, server_id, group, *modes
        )
        assert row is not None
        return _from_row(Mailbox, row), bool(row["inserted"])

    async def begin_run(
        self, mailbox_id: int, job_id: int, kind: str, dry_run: bool, engine: str
    ) -> tuple[Mailbox, int] | None:
        """The mailbox and the id of a new runs row for its pass (None: the mailbox is gone)."""
        row = await self.pool.fetchrow(
            self.q["run_begin"], mailbox_id, job_id, kind, dry_run, engine
        )
        return (_from_row(Mailbox, row), int(row["run_id"])) if row else None

    async def mailbox(self, mailbox_id: int) -> Mailbox | None:
        row = await self.pool.fetchrow(self.q["mailbox_get"], mailbox_id)
        return _from_row(Mailbox, row) if row else None

    async def mailbox_by_email(self, email: str) -> Mailbox | None:
        row = await self.pool.fetchrow(self.q["mailbox_get_by_email"], email)
        return _from_row(Mailbox, row) if row else None

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
            self.q["mailbox_list"], state, groups, server_id, after_id, limit
        )
        return [_from_row(Mailbox, r) for r in rows]

    async def set_mailbox_state(self, mailbox_id: int, state: str, reason: str | None) -> None:
        await self.pool.execute(self.q["mailbox_set_state"], mailbox_id, state, reason)

    async def pass_succeeded(
        self,
        mailbox_id: int,
        kind: str,
        marker: tuple[int, datetime],
        states: Sequence[tuple[str, str, int]],
    ) -> None:
        """Record a successful pass with the (entity, sync state, watermark) that moved."""
        await self.pool.execute(
            self.q["mailbox_pass_end"],
            mailbox_id,
            kind,
            marker[0],
            marker[1],
            [entity for entity, _, _ in states],
            [sync_state for _, sync_state, _ in states],
            [watermark for _, _, watermark in states],
        )

    async def pass_failed(self, mailbox_id: int, error: str, max_failures: int) -> str:
        """Count a transient failure; returns the mailbox's state afterwards."""
        state: str = await self.pool.fetchval(
            self.q["mailbox_pass_failed"], mailbox_id, error, max_failures
        )
        return state

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
            self.q["mailbox_set_options"], email, set_group, group, contacts, calendar, tasks
        )
        return _from_row(Mailbox, row) if row else None

    async def mailbox_counts_by_state(self) -> dict[str, int]:
        rows = await self.pool.fetch(self.q["mailbox_counts_by_state"])
        return {r["state"]: int(r["n"]) for r in rows}
