"""One item the other side refuses is recorded and skipped; the rest of the pass goes on."""

from __future__ import annotations

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness

BOX = "errors@sim.example"


async def test_a_refused_item_is_recorded_skipped_and_retried_once_changed(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        # U+0001 is text the CRM holds but the mailbox store (XML 1.0 in EWS) cannot carry.
        bad = await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, last_name, notes) "
            "VALUES ($1, 'Broken', E'bell \\x01 inside') RETURNING id",
            user,
        )
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Fine')", user
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        names = [i["fields"]["Surname"] for i in await h.items(BOX, "contacts")]
        assert names == ["Fine"]
        errors = await pool.fetch("SELECT crm_id, direction, reason FROM sync.item_errors")
        assert [(str(e["crm_id"]), e["direction"]) for e in errors] == [
            (str(bad), "crm_to_exchange")
        ]
        # Unchanged: skipped, not refused again.
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 1
        # Changed: retried, and now it goes through.
        await pool.execute("UPDATE crm.contacts SET notes = 'bell outside' WHERE id = $1", bad)
        assert await h.sync(BOX) == Done("ok")
        assert sorted(i["fields"]["Surname"] for i in await h.items(BOX, "contacts")) == [
            "Broken",
            "Fine",
        ]


async def test_a_record_the_crm_refuses_does_not_hold_back_the_others(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await h.add_user(BOX)
        # The CRM's last_name holds at most 255 characters; Outlook lets the owner type more.
        for surname in ("x" * 300, "Short", "Shorter"):
            await h.owner(
                "POST",
                f"/mailboxes/{BOX}/items",
                {"folder": "contacts", "fields": {"Surname": surname}},
            )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        names = [
            r["last_name"]
            for r in await pool.fetch("SELECT last_name FROM crm.contacts ORDER BY last_name")
        ]
        assert names == ["Short", "Shorter"]
        [error] = await pool.fetch("SELECT direction, reason FROM sync.item_errors")
        assert error["direction"] == "exchange_to_crm" and "last_name" in error["reason"]
