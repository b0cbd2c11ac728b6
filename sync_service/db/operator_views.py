"""What the operator surface reads (`sql/operator.sql`): mailbox details, runs, summaries.

Rows come back as plain dicts, the shape the CLI prints and the API returns.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from sync_service.db.queries import load_queries

Row = dict[str, Any]


class OperatorViews:
    """Read models over the `sync` schema for `status`, `mailboxes show` and `runs`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def item_counts(self, mailbox_id: int) -> dict[str, int]:
        """Linked items per entity (entities without any are absent)."""
        rows = await self.pool.fetch(self._q["op_mailbox_item_counts"], mailbox_id)
        return {r["entity"]: int(r["n"]) for r in rows}

    async def item_errors(self, mailbox_id: int, limit: int) -> list[Row]:
        rows = await self.pool.fetch(self._q["op_mailbox_item_errors"], mailbox_id, limit)
        return [dict(r) for r in rows]

    async def open_jobs(self, mailbox_id: int) -> list[Row]:
        """Unfinished jobs of a mailbox (a real pass and a dry run at most), the real first."""
        rows = await self.pool.fetch(self._q["op_mailbox_open_jobs"], mailbox_id)
        return [dict(r) for r in rows]

    async def runs(self, mailbox_id: int | None, since: datetime | None, limit: int) -> list[Row]:
        """Runs, newest first, optionally of one mailbox and since a time."""
        rows = await self.pool.fetch(self._q["op_runs"], mailbox_id, since, limit)
        return [dict(r) for r in rows]

    async def run(self, run_id: int) -> Row | None:
        """One run with its plan (`plan_items` as data, `plan` as text), or None."""
        row = await self.pool.fetchrow(self._q["op_run"], run_id)
        return dict(row) if row else None

    async def runs_of_jobs(self, job_ids: list[int], since: datetime) -> list[Row]:
        """The passes of these jobs that ended after `since` (database time) or still run."""
        rows = await self.pool.fetch(self._q["op_runs_of_jobs"], job_ids, since)
        return [dict(r) for r in rows]

    async def job_states(self, job_ids: list[int]) -> dict[int, str]:
        rows = await self.pool.fetch(self._q["op_jobs_status"], job_ids)
        return {int(r["id"]): str(r["status"]) for r in rows}

    async def runs_summary(self, since: datetime) -> list[Row]:
        """Passes, requests and throttled answers since `since`, by outcome."""
        return [dict(r) for r in await self.pool.fetch(self._q["op_runs_summary"], since)]

    async def items_summary(self, since: datetime) -> list[Row]:
        """Items written since `since` by entity, direction and operation (`n`)."""
        return [dict(r) for r in await self.pool.fetch(self._q["op_items_summary"], since)]

    async def has_leader_table(self) -> bool:
        """False before the dispatcher's migration exists."""
        return bool(await self.pool.fetchval(self._q["op_leader_table"]))

    async def leader(self, stale_after: timedelta) -> Row | None:
        """The recorded leader, with `fresh`: whether its heartbeat is recent."""
        row = await self.pool.fetchrow(self._q["op_leader"], stale_after)
        return dict(row) if row else None

    async def now(self) -> datetime:
        """Database time: runs are compared with it, not with a host's clock."""
        now: datetime = await self.pool.fetchval(self._q["op_now"])
        return now
