"""Live replicas (`sql/engines.sql`): each heartbeats while it runs and leaves on a clean stop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from sync_service.db.queries import load_queries


class Engines:
    """The `sync.engines` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def heartbeat(self, name: str, roles: str) -> None:
        """Register or refresh a live replica."""
        await self.pool.execute(self._q["engine_heartbeat"], name, roles)

    async def remove(self, name: str) -> None:
        await self.pool.execute(self._q["engine_remove"], name)

    async def live(self, max_age: timedelta) -> list[dict[str, Any]]:
        """Replicas whose heartbeat is recent: name, roles, started_at, heartbeat_at."""
        return [dict(r) for r in await self.pool.fetch(self._q["engines_live"], max_age)]
