"""What `status` shows about the dispatcher: who leads, since when, how fresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sync_service.db.queries import load_queries


@dataclass(frozen=True, slots=True)
class DispatcherStatus:
    leader: str | None
    leader_since: datetime | None
    heartbeat_at: datetime | None  # the leader proves its lock session every second
    crm_cursor: int | None
    last_retention_at: datetime | None


async def dispatcher_status(pool: asyncpg.Pool) -> DispatcherStatus:
    row = await pool.fetchrow(load_queries()["dispatcher_status"])
    assert row is not None  # the migration inserts the one row
    return DispatcherStatus(
        row["leader"],
        row["leader_since"],
        row["heartbeat_at"],
        row["crm_cursor"],
        row["last_retention_at"],
    )
