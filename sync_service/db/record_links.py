"""Shared (firm) records in the bundled CRM (`sql/record_links.sql`): which records several
users hold, what the owner's delete of such a record does, and the operator's links.

Statements run on the connection given (the CRM adapter's write transaction, with its
change-capture origin) or on the pool (the operator's reads and bulk links).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries


@dataclass(frozen=True, slots=True)
class Holder:
    email: str
    role: str  # "owner" or "linked"
    holds: bool  # False: an owner who dropped their copy
    linked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkChange:
    """One user to link to (or unlink from) one record."""

    entity: str
    record_id: str
    user_id: str


class RecordLinks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    # -- for the CRM adapter (on its connection) ----------------------------------------------

    async def shared(self, conn: Conn, entity: str, ids: Sequence[str]) -> set[str]:
        rows = await conn.fetch(self._q["record_links_shared"], entity, list(ids))
        return {r["id"] for r in rows}

    async def dropped(self, conn: Conn, entity: str, user: str) -> set[str]:
        rows = await conn.fetch(self._q["record_links_dropped"], entity, user)
        return {r["id"] for r in rows}

    async def first_linked(self, conn: Conn, entity: str, record_id: str) -> str | None:
        found: str | None = await conn.fetchval(
            self._q["record_links_first_linked"], entity, record_id
        )
        return found

    async def drop_owner(self, conn: Conn, entity: str, record_id: str, owner: str) -> None:
        await conn.execute(self._q["record_links_drop_owner"], entity, record_id, owner)

    async def transfer(self, conn: Conn, entity: str, record_id: str, to_user: str) -> None:
        await conn.execute(self._q["record_links_transfer"], entity, record_id, to_user)

    # -- for the operator ---------------------------------------------------------------------

    async def users_by_email(self, emails: Sequence[str]) -> dict[str, str]:
        """Lower-case e-mail -> CRM user id, for the addresses that are CRM users."""
        rows = await self.pool.fetch(self._q["record_links_users_by_email"], list(emails))
        return {r["email"]: r["id"] for r in rows}

    async def owners(self, entity: str, ids: Sequence[str]) -> dict[str, str]:
        """Record id -> owner id, for the records of `ids` that exist."""
        rows = await self.pool.fetch(self._q["record_links_owners"], entity, list(ids))
        return {r["id"]: r["owner_id"] for r in rows}

    async def link_many(self, changes: Sequence[LinkChange]) -> int:
        """Link each user to each record (one transaction); how many links were new."""
        return await self._many("record_links_link_many", changes)

    async def unlink_many(self, changes: Sequence[LinkChange]) -> int:
        """Remove the links (one transaction); how many there were."""
        return await self._many("record_links_unlink_many", changes)

    async def holders(self, entity: str, record_id: str) -> list[Holder]:
        rows = await self.pool.fetch(self._q["record_links_holders"], entity, record_id)
        return [Holder(r["email"], r["role"], r["holds"], r["linked_at"]) for r in rows]

    async def _many(self, query: str, changes: Sequence[LinkChange]) -> int:
        if not changes:
            return 0
        given = json.dumps(
            [{"entity": c.entity, "record_id": c.record_id, "user_id": c.user_id} for c in changes]
        )
        return int(await self.pool.fetchval(self._q[query], given))
