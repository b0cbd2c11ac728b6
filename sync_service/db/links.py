"""What a pass reads and records (`sql/links.sql`): link rows, item errors, states, runs.

The link rows are the 3-way sync's status database; the folders' sync states and the CRM
watermarks are read here and written with the mailbox row at the pass's end (`Store`). The
statements that commit link rows also count their writes for the pass's run and insert their
audit rows (`db/audit.py`): a write is committed, counted and audited at once, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from sync_service.db.audit import AuditEntry
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


# Writes of one entity by direction and operation: {"crm_to_exchange": {"create": 3}}.
Written = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a pass ended, for its runs row (its counts were added as its writes committed)."""

    outcome: str
    requests: int
    throttled: int
    error: str | None
    plan: str | None


@dataclass(frozen=True, slots=True)
class Begun:
    """A pass's start: its mailbox, its runs row and the kind that row records."""

    mailbox: Mailbox
    run_id: int
    kind: str


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
        self,
        mailbox_id: int,
        entity: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        run_id: int | None = None,
        written: Written | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Upsert link rows (no CRM id twice) in one statement; a row holding the same
        Exchange item id is replaced.

        Counted in that statement: `written`, the writes these rows record, for run `run_id`;
        and for a settled row marked `"earlier": true` over a pending one, the create an
        earlier pass made, for the run that committed its intent. Inserted in it: `audit`, the
        audit rows of those writes.
        """
        await self.pool.execute(
            self._q["item_links_upsert"],
            mailbox_id,
            entity,
            json.dumps(rows),
            run_id,
            _triples(written),
            json.dumps(audit),
        )

    async def delete_link(
        self,
        mailbox_id: int,
        entity: str,
        crm_id: str,
        *,
        run_id: int | None = None,
        written: Written | None = None,
        earlier: bool = False,
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Remove a link; counted and audited as in `upsert_links` (`earlier`: the row is
        pending and its create was made by an earlier pass)."""
        await self.pool.execute(
            self._q["item_link_delete"],
            mailbox_id,
            entity,
            crm_id,
            run_id,
            _triples(written),
            earlier,
            json.dumps(audit),
        )

    async def count_writes(
        self,
        mailbox_id: int,
        entity: str,
        run_id: int | None,
        written: Written,
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Writes no link row records: added to run `run_id`'s counts (None: to none) and
        audited, in one statement."""
        await self.pool.execute(
            self._q["run_count_writes"],
            mailbox_id,
            entity,
            run_id,
            _triples(written),
            json.dumps(audit),
        )

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
        self,
        mailbox_id: int,
        job_id: int,
        kind: str,
        dry_run: bool,
        engine: str,
        entities: Iterable[str] | None = None,
    ) -> Begun | None:
        """The mailbox and a new runs row for its pass (None: the mailbox is gone). The row
        records the kind that runs (a mailbox's first express pass runs as initial) and the
        entities it covers (`entities`, None: every one; a first pass covers every one)."""
        scope = None if entities is None else sorted(str(e) for e in entities)
        row = await self.pool.fetchrow(
            self._q["run_begin"], mailbox_id, job_id, kind, dry_run, engine, scope
        )
        if row is None:
            return None
        return Begun(mailbox_of(row), int(row["run_id"]), str(row["run_kind"]))

    async def finish_run(self, run_id: int, end: RunEnd) -> None:
        await self.pool.execute(
            self._q["run_finish"],
            run_id,
            end.outcome,
            end.requests,
            end.throttled,
            end.error,
            end.plan,
        )

    async def run_requests(self, run_id: int, requests: int, throttled: int) -> None:
        """Record a pass's requests so far (it is being cut short; its job ends the run)."""
        await self.pool.execute(self._q["run_requests"], run_id, requests, throttled)


def _triples(written: Written | None) -> list[list[str | int]]:
    """{direction: {operation: n}} as the [direction, operation, n] list the SQL adds up."""
    return [
        [direction, operation, n]
        for direction, operations in (written or {}).items()
        for operation, n in operations.items()
    ]
