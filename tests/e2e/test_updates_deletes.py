"""Updates and deletions of appointments and tasks, both ways, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness

BOX = "erin@sim.example"
SOON = (datetime.now(UTC) + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)


async def test_appointments_update_and_delete_both_ways(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        crm_id = await pool.fetchval(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at, location) "
            "VALUES ($1, 'Kick-off', $2, $3, 'Room A') RETURNING id",
            user,
            SOON,
            SOON + timedelta(hours=1),
        )
        await h.owner(
            "POST",
            f"/mailboxes/{BOX}/items",
            {
                "folder": "calendar",
                "fields": {
                    "Subject": "Outlook lunch",
                    "Start": (SOON + timedelta(days=1)).isoformat(),
                    "End": (SOON + timedelta(days=1, hours=1)).isoformat(),
                },
            },
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM crm.appointments WHERE subject = 'Outlook lunch'"
            )
            == 1
        )

        # CRM update -> mailbox
        await pool.execute("UPDATE crm.appointments SET location = 'Room B' WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        kickoff = next(
            i for i in await h.items(BOX, "calendar") if i["fields"]["Subject"] == "Kick-off"
        )
        assert kickoff["fields"]["Location"] == "Room B"

        # Outlook update -> CRM
        await h.owner(
            "PATCH",
            f"/mailboxes/{BOX}/items/{kickoff['id']}",
            {"fields": {"Subject": "Kick-off (moved)"}},
        )
        assert await h.sync(BOX) == Done("ok")
        assert (
            await pool.fetchval("SELECT subject FROM crm.appointments WHERE id = $1", crm_id)
            == "Kick-off (moved)"
        )

        # Outlook delete -> CRM, CRM delete -> mailbox
        lunch = next(
            i for i in await h.items(BOX, "calendar") if i["fields"]["Subject"] == "Outlook lunch"
        )
        await h.owner("DELETE", f"/mailboxes/{BOX}/items/{lunch['id']}")
        await pool.execute("DELETE FROM crm.appointments WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        assert await pool.fetchval("SELECT count(*) FROM crm.appointments") == 0
        assert await h.items(BOX, "calendar") == []
        assert await h.links(BOX) == 0


async def test_tasks_update_from_crm_and_delete_from_outlook(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        task_id = await pool.fetchval(
            "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, 'Renew licence') RETURNING id",
            user,
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        await pool.execute(
            "UPDATE crm.tasks SET subject = 'Renew licence now', status = 'completed', "
            "completed_at = now() WHERE id = $1",
            task_id,
        )
        assert await h.sync(BOX) == Done("ok")
        [item] = await h.items(BOX, "tasks")
        assert item["fields"]["Subject"] == "Renew licence now"
        assert item["fields"]["Status"] == "Completed"
        await h.owner("DELETE", f"/mailboxes/{BOX}/items/{item['id']}")
        assert await h.sync(BOX) == Done("ok")
        assert await pool.fetchval("SELECT count(*) FROM crm.tasks") == 0
