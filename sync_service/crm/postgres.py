"""The bundled PostgreSQL CRM: the `crm` schema of schema/0002_crm.sql behind the CRM port.

Every method is one short statement or one transaction over the statements of
`sync_service.db.crm_tables` (the owner of the `crm` schema's SQL); values are always bound
parameters. Writes made for a mailbox user first set `crm.sync_origin` so that the
change-capture trigger marks them and they are not sent back to that mailbox (no echo).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from ews_client import EntityKind
from sync_service.crm.codec import (
    attendee_from_row,
    attendee_params,
    attendees_batch,
    entity_of,
    insert_batch,
    parse_uuid,
    rejected_field,
    to_record,
    write_params,
)
from sync_service.crm.log import reduce_changes
from sync_service.crm.meetings import PostgresMeetings
from sync_service.crm.port import (
    ChangeBatch,
    CrmRejected,
    CrmUser,
    PendingChanges,
    RecordGone,
    VersionConflict,
)
from sync_service.db.crm_tables import CrmTables
from sync_service.db.pool import Conn
from sync_service.db.record_links import RecordLinks
from sync_service.planning.records import CrmAppointment, CrmAttendee, CrmRecord
from sync_service.planning.shared import OwnerDelete

# PostgreSQL errors that mean "this value does not fit": reported as CrmRejected.
_VALUE_ERRORS = (
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.ForeignKeyViolationError,
    asyncpg.UniqueViolationError,
    asyncpg.DataError,
)


class PostgresCrm:
    """CrmPort over the bundled `crm` schema, on a pool from `sync_service.db.pool`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._sql = CrmTables()
        self._shared = RecordLinks(pool)
        self.meetings = PostgresMeetings(pool)

    # -- change log ---------------------------------------------------------------------------

    async def current_seq(self) -> int:
        async with self._pool.acquire() as conn:
            return await self._safe_position(conn)

    async def _safe_position(self, conn: Conn) -> int:
        """Below this position every change is final; read the log in a later statement."""
        return await self._sql.safe_position(conn)

    async def purge_changes(self, below: int, before: datetime, limit: int) -> int:
        async with self._pool.acquire() as conn:
            return await self._sql.purge_log(conn, min(below, await self._safe_position(conn)),
                                             before, limit)  # fmt: skip

    async def changes_since(
        self, user_id: str, entity: EntityKind, after_seq: int, limit: int = 10_000
    ) -> ChangeBatch:
        user = _user_uuid(user_id)
        entity = EntityKind(entity)
        limit = max(1, limit)
        async with self._pool.acquire() as conn:
            # Two statements: the log is read on a snapshot newer than the position's.
            safe = max(after_seq, await self._safe_position(conn))
            rows = await self._sql.changes_since(conn, user, entity, after_seq, limit, safe)
            if len(rows) < limit:
                return ChangeBatch(reduce_changes(rows), safe)
            # Cut at a transaction boundary: finish the last transaction, stop after it.
            last = rows[-1]
            rest = await self._sql.changes_of_xact(conn, user, entity, last["pos"], last["seq"])
        return ChangeBatch(reduce_changes([*rows, *rest]), int(last["pos"]), complete=False)

    async def changes_since_many(
        self, user_id: str, after: Mapping[EntityKind, int], limit: int = 10_000
    ) -> dict[EntityKind, ChangeBatch]:
        """One position and one read of the log for all of a pass's entities (two round trips
        instead of two per entity); an entity with a full page is left to `changes_since`."""
        user = _user_uuid(user_id)
        entities = [EntityKind(entity) for entity in after]
        limit = max(1, limit)
        async with self._pool.acquire() as conn:
            safe = await self._safe_position(conn)
            afters = [(entity, after[entity]) for entity in entities]
            rows = await self._sql.changes_since_many(conn, user, afters, limit, safe)
        found: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            found.setdefault(row["entity"], []).append(row)
        batches: dict[EntityKind, ChangeBatch] = {}
        for entity in entities:
            mine = found.get(entity.value, [])
            if len(mine) < limit:
                batches[entity] = ChangeBatch(reduce_changes(mine), max(after[entity], safe))
            else:  # a page to cut at a transaction boundary: rare, done the long way
                batches[entity] = await self.changes_since(user_id, entity, after[entity], limit)
        return batches

    async def pending_users(
        self, after_seq: int, up_to: int | None = None
    ) -> dict[str, PendingChanges]:
        async with self._pool.acquire() as conn:
            safe = await self._safe_position(conn)
            bound = safe if up_to is None else min(up_to, safe)
            rows = await self._sql.pending_users(conn, after_seq, bound)
        return {r["user_id"]: PendingChanges(int(r["max_seq"]), r["oldest"]) for r in rows}

    # -- reads --------------------------------------------------------------------------------

    async def get_records(self, entity: EntityKind, ids: Sequence[str]) -> dict[str, CrmRecord]:
        entity = EntityKind(entity)
        wanted = sorted({u for u in map(parse_uuid, ids) if u is not None})
        if not wanted:
            return {}
        async with self._pool.acquire() as conn:
            rows = await self._sql.records(conn, entity, wanted)
            records = await self._assemble(conn, entity, rows)
        return {r.id: r for r in records}

    async def list_records(self, user_id: str, entity: EntityKind) -> list[CrmRecord]:
        entity = EntityKind(entity)
        user = _user_uuid(user_id)
        async with self._pool.acquire() as conn:
            rows = await self._sql.user_records(conn, entity, user)
            dropped = await self._shared.dropped(conn, entity.value, user)  # the owner's own
            rows = [r for r in rows if str(r["id"]) not in dropped] if dropped else rows
            return await self._assemble(conn, entity, rows)

    async def shared_ids(self, entity: EntityKind, ids: Collection[str]) -> set[str]:
        wanted = sorted({u for u in map(parse_uuid, ids) if u is not None})
        if not wanted:
            return set()
        async with self._pool.acquire() as conn:
            return await self._shared.shared(conn, EntityKind(entity).value, wanted)

    async def list_users(self) -> list[CrmUser]:
        async with self._pool.acquire() as conn:
            rows = await self._sql.users(conn)
        return [CrmUser(r["id"], r["email"], r["display_name"]) for r in rows]

    async def _assemble(
        self, conn: Conn, entity: EntityKind, rows: Sequence[asyncpg.Record]
    ) -> list[CrmRecord]:
        if entity is not EntityKind.APPOINTMENT or not rows:
            return [to_record(entity, row) for row in rows]
        found = await self._sql.attendees(conn, [r["id"] for r in rows])
        attendees: dict[Any, list[CrmAttendee]] = {}
        for row in found:
            attendees.setdefault(row["appointment_id"], []).append(attendee_from_row(row))
        return [to_record(entity, r, tuple(attendees.get(r["id"], ()))) for r in rows]

    # -- writes -------------------------------------------------------------------------------

    async def create_record(self, record: CrmRecord, origin_user_id: str) -> CrmRecord:
        entity = entity_of(record)
        record_id = None
        if record.id:
            record_id = parse_uuid(record.id)
            if record_id is None:
                raise CrmRejected("id", "is not a uuid")
        params = write_params(record)
        async with self._writing(origin_user_id) as conn:
            row = await self._sql.insert(conn, entity, record_id, origin_user_id, params)
            assert row is not None
            return await self._finish_write(conn, entity, record, row)

    async def create_records(self, records: Sequence[CrmRecord], origin_user_id: str) -> None:
        """Create several records in one transaction: all of them, or none (CrmRejected).

        One statement per entity (the rows as one JSON parameter) and one for all the
        attendees: a batch costs a few round trips instead of one or three per record.
        """
        batches: dict[EntityKind, list[tuple[str, CrmRecord]]] = {}
        for record in records:
            batches.setdefault(entity_of(record), []).append((_new_id(record), record))
        async with self._writing(origin_user_id) as conn:
            for entity, batch in batches.items():
                rows = insert_batch(entity, batch)
                await self._sql.insert_many(conn, entity, rows, origin_user_id)
            meetings = [(i, r) for i, r in batches.get(EntityKind.APPOINTMENT, ())
                        if isinstance(r, CrmAppointment) and r.attendees]  # fmt: skip
            if meetings:  # attendees go in their own table, once the appointments exist
                await self._sql.insert_attendees_many(conn, attendees_batch(meetings))

    async def update_record(
        self, record: CrmRecord, expected_version: int, origin_user_id: str
    ) -> CrmRecord:
        entity = entity_of(record)
        params = write_params(record)
        async with self._writing(origin_user_id) as conn:
            record_id = await self._lock(conn, entity, record.id, expected_version)
            if record_id is None:
                raise RecordGone(entity, record.id)
            row = await self._sql.update(conn, entity, record_id, params)
            assert row is not None
            return await self._finish_write(conn, entity, record, row)

    async def delete_for_user(
        self,
        entity: EntityKind,
        record_id: str,
        user_id: str,
        expected_version: int,
        origin_user_id: str | None,
        owner_delete: OwnerDelete = OwnerDelete.DELETE_ALL,
    ) -> None:
        entity = EntityKind(entity)
        user = _user_uuid(user_id)
        async with self._writing(origin_user_id) as conn:
            locked = await self._lock(conn, entity, record_id, expected_version, with_owner=True)
            if locked is None:
                return  # already gone: a retried delete is not an error
            if locked == user:
                await self._owner_delete(conn, entity, record_id, user, owner_delete)
            else:
                # Only this user's copy goes: the record stays for its owner and other users.
                await self._sql.unlink_user(conn, entity, record_id, user)

    async def _owner_delete(
        self, conn: Conn, entity: EntityKind, record_id: str, owner: str, mode: OwnerDelete
    ) -> None:
        """The owner's delete: of the record, unless others hold it and `mode` says else."""
        heir = await self._shared.first_linked(conn, entity.value, record_id)
        if heir is None or mode is OwnerDelete.DELETE_ALL:
            await self._sql.delete(conn, entity, record_id)
        elif mode is OwnerDelete.TRANSFER:
            await self._shared.transfer(conn, entity.value, record_id, heir)
        else:
            await self._shared.drop_owner(conn, entity.value, record_id, owner)

    async def link_user(self, entity: EntityKind, record_id: str, user_id: str) -> None:
        await self._link(True, EntityKind(entity), record_id, user_id)

    async def unlink_user(self, entity: EntityKind, record_id: str, user_id: str) -> None:
        await self._link(False, EntityKind(entity), record_id, user_id)

    async def _link(self, linked: bool, entity: EntityKind, record_id: str, user_id: str) -> None:
        rid = parse_uuid(record_id)
        if rid is None:
            raise RecordGone(entity, record_id)
        change = self._sql.link_user if linked else self._sql.unlink_user
        async with self._writing(None) as conn:
            await change(conn, entity, rid, _user_uuid(user_id))

    # -- helpers ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _writing(self, origin_user_id: str | None) -> AsyncIterator[Conn]:
        """One transaction, marked with the mailbox user it writes for; value errors of
        PostgreSQL become CrmRejected naming the field."""
        origin = None if origin_user_id is None else _user_uuid(origin_user_id)
        conn: Conn
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                if origin is not None:
                    await self._sql.set_origin(conn, origin)
                yield conn
            except _VALUE_ERRORS as exc:
                field = rejected_field(
                    getattr(exc, "table_name", None),
                    getattr(exc, "constraint_name", None),
                    getattr(exc, "column_name", None),
                )
                raise CrmRejected(field, _reason(exc)) from exc

    async def _lock(
        self,
        conn: Conn,
        entity: EntityKind,
        record_id: str,
        expected_version: int,
        with_owner: bool = False,
    ) -> str | None:
        """Lock the row and check its version; the canonical id (or the owner), None if gone."""
        rid = parse_uuid(record_id)
        if rid is None:
            return None
        row = await self._sql.lock(conn, entity, rid)
        if row is None:
            return None
        if row["version"] != expected_version:
            raise VersionConflict(entity, record_id, expected_version, row["version"])
        return str(row["owner_id"]) if with_owner else rid

    async def _finish_write(
        self, conn: Conn, entity: EntityKind, record: CrmRecord, row: asyncpg.Record
    ) -> CrmRecord:
        if not isinstance(record, CrmAppointment):
            return to_record(entity, row)
        await self._sql.replace_attendees(conn, row["id"], attendee_params(record))
        # The attendee triggers saw this transaction already wrote the row: version unchanged.
        stored = to_record(entity, row)
        assert isinstance(stored, CrmAppointment)
        return replace(stored, attendees=record.attendees)


def _new_id(record: CrmRecord) -> str:
    """The canonical id of a record to create; a new one when it has none (as the CRM's own
    default would give it), so that a batch insert needs nothing back."""
    if not record.id:
        return str(uuid.uuid4())
    record_id = parse_uuid(record.id)
    if record_id is None:
        raise CrmRejected("id", "is not a uuid")
    return record_id


def _user_uuid(user_id: str) -> str:
    parsed = parse_uuid(user_id)
    if parsed is None:
        raise CrmRejected("user_id", "is not a uuid")
    return parsed


def _reason(exc: asyncpg.PostgresError) -> str:
    if isinstance(exc, asyncpg.CheckViolationError):
        return "value not accepted (too long, out of range or not an allowed value)"
    if isinstance(exc, asyncpg.NotNullViolationError):
        return "is required"
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return "refers to something that does not exist"
    return str(exc.args[0]) if exc.args else type(exc).__name__
