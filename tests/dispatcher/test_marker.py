"""The last-synchronization marker: a mailbox restored from a backup is recovered, not wiped."""

from __future__ import annotations

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness

EMAIL = "restored@sim.example"
WRITES = ("CreateItem", "UpdateItem", "DeleteItem")


async def test_restored_mailbox_goes_to_needs_recovery_and_recover_reconciles(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool) as h:
        user, mailbox = await h.add_user(EMAIL)

        async def crm_names() -> list[str]:
            rows = await pool.fetch(
                "SELECT last_name FROM crm.contacts WHERE owner_id = $1 ORDER BY 1", user
            )
            return [r["last_name"] for r in rows]

        async def mailbox_names() -> list[str]:
            return sorted(i["fields"]["Surname"] for i in await h.items(EMAIL, "contacts"))

        async def crm_add(name: str) -> None:
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'A', $2)",
                user,
                name,
            )

        await crm_add("Alpha")
        assert await h.sync(EMAIL, PassKind.INITIAL) == Done("ok")
        await h.owner("POST", f"/mailboxes/{EMAIL}/snapshot", {"name": "backup"})
        # further syncs after the backup, in both directions
        await crm_add("Bravo")
        assert await h.sync(EMAIL) == Done("ok")
        await h.owner(
            "POST",
            f"/mailboxes/{EMAIL}/items",
            {"folder": "contacts", "fields": {"GivenName": "O", "Surname": "Charlie"}},
        )
        assert await h.sync(EMAIL) == Done("ok")
        assert await crm_names() == await mailbox_names() == ["Alpha", "Bravo", "Charlie"]
        generation = await pool.fetchval(
            "SELECT marker_generation FROM sync.mailboxes WHERE id = $1", mailbox.id
        )
        assert generation == 3

        restored = await h.owner("POST", f"/mailboxes/{EMAIL}/restore", {"name": "backup"})
        assert restored["items"] >= 1
        assert await mailbox_names() == ["Alpha"]
        writes_before = {k: h.sim.sim.requests[k] for k in WRITES}
        result = await h.sync(EMAIL)
        assert result != Done("ok")
        row = await pool.fetchrow(
            "SELECT state, state_reason FROM sync.mailboxes WHERE id = $1", mailbox.id
        )
        assert row["state"] == "needs_recovery", row
        assert "marker" in (row["state_reason"] or "")
        # nothing deleted (or written) on either side
        assert {k: h.sim.sim.requests[k] for k in WRITES} == writes_before
        assert await crm_names() == ["Alpha", "Bravo", "Charlie"]
        assert await mailbox_names() == ["Alpha"]
        # no ordinary pass touches it: an express job waits in the queue
        await h.queue.enqueue(mailbox.id, PassKind.EXPRESS, source="test")
        assert await h.queue.claim("e2e", 10) == []
        await pool.execute("DELETE FROM sync.jobs WHERE status = 'queued'")

        assert await h.sync(EMAIL, PassKind.RECOVER) == Done("ok")
        assert await crm_names() == await mailbox_names() == ["Alpha", "Bravo", "Charlie"]
        state = await pool.fetchval("SELECT state FROM sync.mailboxes WHERE id = $1", mailbox.id)
        assert state == "active"
        assert h.sim.sim.requests["DeleteItem"] == writes_before["DeleteItem"]
        # and ordinary passes run again
        assert await h.sync(EMAIL) == Done("ok")
