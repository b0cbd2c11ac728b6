"""The bundled CRM's meeting tables (schema/0015_meetings.sql): which appointment a meeting's
global object id names, each CRM participant's response, and the participants' links.

A meeting's identity and the responses are not record content: writing them logs no change,
so no mailbox is queued for them. Linking a participant to the appointment is a sharing link
like any other (`crm.record_users`, change-captured): the participant's mailbox is queued and
pairs its own copy with the appointment.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import asyncpg

from sync_service.crm.codec import parse_uuid

_UIDS = (
    "SELECT appointment_id::text AS id, uid FROM crm.meetings "
    "WHERE appointment_id = ANY($1::uuid[])"
)
_KNOWN = "SELECT uid, appointment_id::text AS id FROM crm.meetings WHERE uid = ANY($1::text[])"
# The first copy to be linked names the appointment; a later one learns it (returned either way).
_REGISTER = """
WITH added AS (
    INSERT INTO crm.meetings (appointment_id, uid) VALUES ($1::uuid, $2)
    ON CONFLICT DO NOTHING RETURNING appointment_id
)
SELECT appointment_id::text FROM added
UNION ALL SELECT appointment_id::text FROM crm.meetings WHERE uid = $2
LIMIT 1
"""
_RESPOND = """
INSERT INTO crm.meeting_responses AS r (appointment_id, user_id, response)
VALUES ($1::uuid, $2::uuid, $3)
ON CONFLICT (appointment_id, user_id) DO UPDATE SET response = EXCLUDED.response,
    responded_at = now()
WHERE r.response IS DISTINCT FROM EXCLUDED.response
"""
_RESPONSES = """
SELECT u.email, r.response FROM crm.meeting_responses r JOIN crm.users u ON u.id = r.user_id
WHERE r.appointment_id = $1::uuid ORDER BY u.email
"""
_USERS = "SELECT lower(email) AS email, id::text AS id FROM crm.users WHERE lower(email) = ANY($1)"
# Participants other than the owner, linked once (the link row is what queues their mailbox).
_LINK = """
INSERT INTO crm.record_users (entity, record_id, user_id)
SELECT 'appointment', a.id, u.id FROM crm.appointments a
JOIN unnest($2::uuid[]) AS u (id) ON u.id <> a.owner_id
WHERE a.id = $1::uuid
ON CONFLICT DO NOTHING
"""
# The organizer's CRM user becomes the appointment's owner (a participant's copy may have made
# it first); the former owner stays a participant. Logged as the organizer's own write.
_ORIGIN = "SELECT set_config('crm.sync_origin', $1, true)"
_CLAIM = """
UPDATE crm.appointments a SET owner_id = $2::uuid
FROM (SELECT id, owner_id FROM crm.appointments WHERE id = $1::uuid FOR UPDATE) old
WHERE a.id = old.id AND a.owner_id <> $2::uuid
RETURNING old.owner_id::text
"""
_UNLINK_OWNER = (
    "DELETE FROM crm.record_users WHERE entity = 'appointment' AND record_id = $1::uuid "
    "AND user_id = $2::uuid"
)
_LINK_ONE = (
    "INSERT INTO crm.record_users (entity, record_id, user_id) "
    "VALUES ('appointment', $1::uuid, $2::uuid) ON CONFLICT DO NOTHING"
)
RESPONSES = frozenset({"none", "accepted", "tentative", "declined"})


class PostgresMeetings:
    """The meeting statements, each one short statement on the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def known(self, uids: Collection[str]) -> dict[str, str]:
        """Meeting uid -> appointment id, for the uids the CRM knows."""
        if not uids:
            return {}
        rows = await self._pool.fetch(_KNOWN, sorted(uids))
        return {row["uid"]: row["id"] for row in rows}

    async def uids(self, appointment_ids: Collection[str]) -> dict[str, str]:
        """Appointment id -> meeting uid, for the appointments that are known meetings."""
        ids = sorted({i for i in (parse_uuid(x) for x in appointment_ids) if i is not None})
        if not ids:
            return {}
        rows = await self._pool.fetch(_UIDS, ids)
        return {row["id"]: row["uid"] for row in rows}

    async def register(self, appointment_id: str, uid: str) -> str | None:
        """Name `appointment_id` as the meeting's appointment unless one already is; the
        appointment that is (None for an id that is no uuid, or one already named another uid)."""
        rid = parse_uuid(appointment_id)
        if rid is None:
            return None
        return await self._pool.fetchval(_REGISTER, rid, uid)  # type: ignore[no-any-return]

    async def respond(self, appointment_id: str, user_id: str, response: str) -> None:
        """The participant's own answer to the meeting (kept only when it changed)."""
        rid, uid = parse_uuid(appointment_id), parse_uuid(user_id)
        if rid is None or uid is None or response not in RESPONSES:
            return
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(_RESPOND, rid, uid, response)
            except asyncpg.ForeignKeyViolationError:
                return  # the appointment went meanwhile: nothing to answer
        return

    async def responses(self, appointment_id: str) -> dict[str, str]:
        """Participant's e-mail -> response."""
        rid = parse_uuid(appointment_id)
        if rid is None:
            return {}
        rows = await self._pool.fetch(_RESPONSES, rid)
        return {row["email"]: row["response"] for row in rows}

    async def users_by_email(self, emails: Collection[str]) -> Mapping[str, str]:
        """Lower-case e-mail -> CRM user id, for the addresses that are CRM users."""
        if not emails:
            return {}
        rows = await self._pool.fetch(_USERS, sorted({e.lower() for e in emails}))
        return {row["email"]: row["id"] for row in rows}

    async def claim(self, appointment_id: str, user_id: str) -> None:
        """Make the organizer's CRM user the appointment's owner (a no-op when already)."""
        rid, uid = parse_uuid(appointment_id), parse_uuid(user_id)
        if rid is None or uid is None:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_ORIGIN, uid)
            former = await conn.fetchval(_CLAIM, rid, uid)
            if former is None:
                return
            await conn.execute(_UNLINK_OWNER, rid, uid)
            await conn.execute(_LINK_ONE, rid, former)

    async def link_participants(self, appointment_id: str, user_ids: Collection[str]) -> None:
        """Link the participants (CRM users) to the appointment; its owner stays its owner."""
        rid = parse_uuid(appointment_id)
        ids = [u for u in (parse_uuid(x) for x in user_ids) if u is not None]
        if rid is None or not ids:
            return
        await self._pool.execute(_LINK, rid, ids)
