"""The bundled CRM's schema (`sql/crm.sql`): one method per statement, for `PostgresCrm`.

Every method runs on the connection it is given: the adapter decides the transactions (a
write and its change-capture origin in one) and which reads share a snapshot. The per-entity
statements (`crm_<entity>_get`, `_list`, `_lock`, `_insert`, ...) take the entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ews_client import EntityKind
from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries

Rows = list[asyncpg.Record]


class CrmTables:
    """The `crm` schema's change log, records, attendees and record-user links."""

    def __init__(self) -> None:
        self._q = load_queries()

    def _of(self, entity: EntityKind, statement: str) -> str:
        return self._q[f"crm_{entity.value}_{statement}"]

    # change log
    async def safe_position(self, conn: Conn) -> int:
        """Below this position every change is final; read the log in a later statement."""
        return int(await conn.fetchval(self._q["crm_safe_position"]))

    async def purge_log(self, conn: Conn, below: int, before: datetime, limit: int) -> int:
        """Delete up to `limit` log rows below position `below` written before `before`."""
        status = await conn.execute(self._q["crm_purge_log"], below, before, limit)
        return int(status.rsplit(" ", 1)[1])

    async def set_origin(self, conn: Conn, origin: str) -> None:
        """Mark the transaction's changes as made for `origin`, so they are not echoed."""
        await conn.execute(self._q["crm_set_origin"], origin)

    async def changes_since(
        self, conn: Conn, user: str, entity: EntityKind, after: int, limit: int, safe: int
    ) -> Rows:
        return await conn.fetch(
            self._q["crm_changes_since"], user, entity.value, after, limit, safe
        )

    async def changes_of_xact(
        self, conn: Conn, user: str, entity: EntityKind, pos: int, seq: int
    ) -> Rows:
        """The rest of one transaction's changes after `seq`."""
        return await conn.fetch(self._q["crm_changes_of_xact"], user, entity.value, pos, seq)

    async def changes_since_many(
        self, conn: Conn, user: str, after: Sequence[tuple[EntityKind, int]], limit: int, safe: int
    ) -> Rows:
        return await conn.fetch(
            self._q["crm_changes_since_many"],
            user,
            [entity.value for entity, _ in after],
            [seq for _, seq in after],
            limit,
            safe,
        )

    async def pending_users(self, conn: Conn, after: int, bound: int) -> Rows:
        return await conn.fetch(self._q["crm_pending_users"], after, bound)

    async def users(self, conn: Conn) -> Rows:
        return await conn.fetch(self._q["crm_users_list"])

    # records
    async def records(self, conn: Conn, entity: EntityKind, ids: list[str]) -> Rows:
        return await conn.fetch(self._of(entity, "get"), ids)

    async def user_records(self, conn: Conn, entity: EntityKind, user: str) -> Rows:
        """The user's sync set: owned records plus records shared with them."""
        return await conn.fetch(self._of(entity, "list"), user)

    async def lock(self, conn: Conn, entity: EntityKind, record_id: str) -> asyncpg.Record | None:
        """Lock a record's row; its owner and version (None: no such record)."""
        return await conn.fetchrow(self._of(entity, "lock"), record_id)

    async def insert(
        self,
        conn: Conn,
        entity: EntityKind,
        record_id: str | None,
        origin: str,
        params: Sequence[object],
    ) -> asyncpg.Record | None:
        return await conn.fetchrow(self._of(entity, "insert"), record_id, origin, *params)

    async def insert_many(self, conn: Conn, entity: EntityKind, rows: str, origin: str) -> None:
        """Insert several records given as one JSON array."""
        await conn.execute(self._of(entity, "insert_many"), rows, origin)

    async def update(
        self, conn: Conn, entity: EntityKind, record_id: str, params: Sequence[object]
    ) -> asyncpg.Record | None:
        return await conn.fetchrow(self._of(entity, "update"), record_id, *params)

    async def delete(self, conn: Conn, entity: EntityKind, record_id: str) -> None:
        await conn.execute(self._of(entity, "delete"), record_id)

    # attendees
    async def attendees(self, conn: Conn, appointment_ids: list[Any]) -> Rows:
        return await conn.fetch(self._q["crm_attendees_get"], appointment_ids)

    async def replace_attendees(
        self,
        conn: Conn,
        appointment_id: Any,
        attendees: tuple[list[str], list[str | None], list[bool]],
    ) -> None:
        """Two statements: drop the appointment's attendees, insert `attendees` in order."""
        emails, names, required = attendees
        await conn.execute(self._q["crm_attendees_delete"], appointment_id)
        await conn.execute(self._q["crm_attendees_insert"], appointment_id, emails, names, required)

    async def insert_attendees_many(self, conn: Conn, batch: str) -> None:
        """The attendees of several new appointments, as one JSON array."""
        await conn.execute(self._q["crm_attendees_insert_many"], batch)

    # record-user links
    async def link_user(self, conn: Conn, entity: EntityKind, record_id: str, user: str) -> None:
        await conn.execute(self._q["crm_link_insert"], entity.value, record_id, user)

    async def unlink_user(self, conn: Conn, entity: EntityKind, record_id: str, user: str) -> None:
        await conn.execute(self._q["crm_link_delete"], entity.value, record_id, user)
