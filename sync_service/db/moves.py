"""A mailbox carried to another server (`sql/moves.sql`): links re-pointed, states reset.

Links are re-pointed in batches, each batch one transaction; the server switch (with the
reset of the old server's sync states) is the last transaction, so a move cut short leaves
the mailbox on its old server with some links already naming the new ids, and running the
move again re-points them all (it matches by CRM id, not by the ids held).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from sync_service.db.queries import load_queries

BATCH = 500  # link rows per transaction


@dataclass(frozen=True, slots=True)
class LinkIds:
    crm_id: str
    exchange_id: str  # '' for an Exchange create not yet made


class MoveStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def links(self, mailbox_id: int, entity: str) -> list[LinkIds]:
        rows = await self.pool.fetch(self._q["move_links"], mailbox_id, entity)
        return [LinkIds(r["crm_id"], r["exchange_id"]) for r in rows]

    async def relink(self, mailbox_id: int, entity: str, new_ids: Sequence[tuple[str, str]]) -> int:
        """Point each (crm id, new item id) link at its new id; the number of batches."""
        batches = 0
        for start in range(0, len(new_ids), BATCH):
            chunk = new_ids[start : start + BATCH]
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.executemany(
                    self._q["move_relink"], [(mailbox_id, entity, c, i) for c, i in chunk]
                )
            batches += 1
        return batches

    async def hold(self, mailbox_id: int, reason: str) -> tuple[str, str | None] | None:
        """Stop the mailbox for its move; its (state, reason) of before, None if a pass runs."""
        row = await self.pool.fetchrow(self._q["move_hold"], mailbox_id, reason)
        return None if row is None else (row["state"], row["state_reason"])

    async def release(self, mailbox_id: int, state: str, reason: str | None) -> None:
        await self.pool.execute(self._q["move_release"], mailbox_id, state, reason)

    async def switch_server(self, mailbox_id: int, server_id: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q["move_reset_folders"], mailbox_id)
            await conn.execute(self._q["move_switch_server"], mailbox_id, server_id)
