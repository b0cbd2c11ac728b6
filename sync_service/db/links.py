"""What a pass reads and records (`sql/links.sql`): link rows, item errors, states, runs.

The link rows are the 3-way sync's status database; the folders' sync states and the CRM
watermarks are read here and written with the mailbox row at the pass's end (`Store`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from sync_service.db.queries import load_queries
from sync_service.db.store import Mailbox, mailbox_of


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


@dataclass(frozen=True, slots=True)
class EntityState:
    """Where an entity's last pass left a mailbox."""

    entity: str
    sync_state: str | None
    watermark: int
    unfinished: bool  # link rows of an interrupted write wait for the planner


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a pass ended, for its runs row."""

    outcome: str
    counts: Mapping[str, Any]
    requests: int
    throttled: int
    error: str | None
    plan: str | None


class LinkStore:
    """The item links, item errors and runs tables, and the states a pass starts from."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def entity_states(self, mailbox_id: int) -> list[EntityState]:
        """Sync state, watermark and unfinished writes of every entity: one round trip."""
        rows = await self.pool.fetch(self._q["pass_states"], mailbox_id)
        return [
            EntityState(r["entity"], r["sync_state"], int(r["last_seq"] or 0), r["unfinished"])
            for r in rows
        ]

    async def links(self, mailbox_id: int, entity: str) -> list[LinkRow]:
        rows = await self.pool.fetch(self._q["item_links_list"], mailbox_id, entity)
        return [LinkRow(*r) for r in rows]

    async def upsert_links(
        self, mailbox_id: int, entity: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Upsert link rows (no CRM id twice) in one statement; a row holding the same
        Exchange item id is replaced."""
        await self.pool.execute(self._q["item_links_upsert"], mailbox_id, entity, json.dumps(rows))

    async def delete_link(self, mailbox_id: int, entity: str, crm_id: str) -> None:
        await self.pool.execute(self._q["item_link_delete"], mailbox_id, entity, crm_id)

    async def refused_hashes(self, mailbox_id: int, entity: str) -> set[str]:
        """Content the other side already refused: skipped until it changes."""
        rows = await self.pool.fetch(self._q["item_errors_refused"], mailbox_id, entity)
        return {r["content_hash"] for r in rows}

    async def add_item_error(
        self,
        mailbox_id: int,
        entity: str,
        item: tuple[str | None, str | None],
        direction: str,
        reason: str,
        content_hash: str | None,
    ) -> None:
        """Record one item's failure; `item` is its (CRM id, Exchange id) where known."""
        crm_id, exchange_id = item
        await self.pool.execute(
            self._q["item_error_insert"],
            mailbox_id,
            entity,
            crm_id,
            exchange_id,
            direction,
            reason,
            content_hash,
        )

    async def begin_run(
        self, mailbox_id: int, job_id: int, kind: str, dry_run: bool, engine: str
    ) -> tuple[Mailbox, int] | None:
        """The mailbox and the id of a new runs row for its pass (None: the mailbox is gone)."""
        row = await self.pool.fetchrow(
            self._q["run_begin"], mailbox_id, job_id, kind, dry_run, engine
        )
        return (mailbox_of(row), int(row["run_id"])) if row else None

    async def finish_run(self, run_id: int, end: RunEnd) -> None:
        await self.pool.execute(
            self._q["run_finish"],
            run_id,
            end.outcome,
            end.counts,
            end.requests,
            end.throttled,
            end.error,
            end.plan,
        )
