"""The plan of a dry run as data (`sql/run_plans.sql`), stored with its run for the operator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from sync_service.db.queries import load_queries


class RunPlans:
    """`sync.runs.plan_items`: a dry run's plan item by item (planning.render.plan_document)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def record(self, run_id: int, document: Mapping[str, Any]) -> None:
        await self.pool.execute(self._q["run_plan_record"], run_id, dict(document))
