"""Item errors and findings (`sql/item_errors.sql`): recorded by passes, acted on by operators.

One table, `sync.item_errors`, with a kind: `refused` (the other side refused a write; the
applier records it and the passes skip that content until it changes) and `ambiguous_match`
(an initial or recover pass found several candidates and created each item on the other side
rather than guess a pair). A row is `open` until an operator acknowledges it (kept, no longer
counted) or asks for a retry (its refused content is no longer skipped; the row becomes
history, and a new refusal is a new row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sync_service.db.queries import load_queries

KINDS = ("refused", "ambiguous_match")
STATUSES = ("open", "acknowledged", "retried")
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorFilter:
    """Which item errors a listing, a retry or an acknowledgement covers; None: any."""

    mailbox_id: int | None = None
    server_id: int | None = None
    entity: str | None = None
    kind: str | None = None
    reason: str | None = None  # text the reason contains, in any case
    since: datetime | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """An item-level finding of a pass (an ambiguous match): what it did and why."""

    direction: str  # the side(s) the pass wrote instead: crm_to_exchange, exchange_to_crm, both
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RetriedMailbox:
    id: int
    email: str
    initial_done: bool


@dataclass(frozen=True, slots=True)
class Retried:
    """Rows marked for a retry, and the mailboxes they belong to."""

    ids: list[int]
    mailboxes: list[RetriedMailbox]


class ItemErrors:
    """The item errors table beyond the applier's inserts: findings, listings, actions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def add_findings(self, mailbox_id: int, entity: str, found: Sequence[Finding]) -> int:
        """Record findings of one pass; one already recorded is not added again. How many
        were added."""
        if not found:
            return 0
        rows = [{"direction": f.direction, "reason": f.reason, "detail": f.detail} for f in found]
        added = await self.pool.fetchval(self._q["item_findings_insert"], mailbox_id, entity, rows)
        return int(added or 0)

    async def matching(
        self, where: ErrorFilter, *, after_id: int = 0, limit: int | None = None
    ) -> list[Row]:
        """Matching rows, newest first, below `after_id` (0: from the newest); every one when
        `limit` is None."""
        rows = await self.pool.fetch(
            self._q["item_errors_list"],
            where.mailbox_id,
            where.server_id,
            where.entity,
            where.kind,
            where.reason,
            where.since,
            where.status,
            after_id,
            limit,
        )
        return [dict(r) for r in rows]

    async def kinds(self, ids: Sequence[int]) -> dict[int, str]:
        """The kind of each existing row among `ids`."""
        rows = await self.pool.fetch(self._q["item_errors_by_id"], list(ids))
        return {int(r["id"]): str(r["kind"]) for r in rows}

    async def retry(self, ids: Sequence[int]) -> Retried:
        """Ask for a retry of refused rows (and of their twins refusing the same content)."""
        rows = await self.pool.fetch(self._q["item_errors_retry"], list(ids))
        boxes = {
            int(r["mailbox_id"]): RetriedMailbox(
                int(r["mailbox_id"]), str(r["email"]), bool(r["initial_done"])
            )
            for r in rows
        }
        return Retried(sorted(int(r["id"]) for r in rows), sorted(boxes.values(), key=_by_id))

    async def acknowledge(self, ids: Sequence[int]) -> list[int]:
        """Acknowledge rows; the ids acknowledged now (not those acknowledged before)."""
        rows = await self.pool.fetch(self._q["item_errors_acknowledge"], list(ids))
        return sorted(int(r["id"]) for r in rows)

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Open rows by (entity, kind)."""
        rows = await self.pool.fetch(self._q["item_errors_open_counts"])
        return {(str(r["entity"]), str(r["kind"])): int(r["n"]) for r in rows}


def _by_id(box: RetriedMailbox) -> int:
    return box.id
