from __future__ import annotations

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness


async def test_contacts_flow_both_ways_without_echo(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user("alice@sim.example")
        crm_id = await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name, email, company) "
            "VALUES ($1, 'Ada', 'Lovelace', 'ada@example.com', 'Analytical') RETURNING id",
            user,
        )
        result = await h.sync("alice@sim.example", PassKind.INITIAL)
        assert result == Done("ok"), result
        [item] = await h.items("alice@sim.example", "contacts")
        assert item["fields"]["Surname"] == "Lovelace"
        assert item["fields"]["CompanyName"] == "Analytical"

        # Outlook side: the owner creates a contact; an express pass brings it to the CRM.
        await h.owner(
            "POST",
            "/mailboxes/alice@sim.example/items",
            {
                "folder": "contacts",
                "fields": {
                    "GivenName": "Grace",
                    "Surname": "Hopper",
                    "EmailAddresses": {"EmailAddress1": "grace@example.com"},
                },
            },
        )
        assert await h.sync("alice@sim.example") == Done("ok")
        rows = await pool.fetch(
            "SELECT first_name, last_name, email FROM crm.contacts "
            "WHERE owner_id = $1 ORDER BY last_name",
            user,
        )
        assert [(r["first_name"], r["last_name"]) for r in rows] == [
            ("Grace", "Hopper"),
            ("Ada", "Lovelace"),
        ]

        # CRM update reaches the mailbox.
        await pool.execute("UPDATE crm.contacts SET job_title = 'Countess' WHERE id = $1", crm_id)
        assert await h.sync("alice@sim.example") == Done("ok")
        ada = [
            i
            for i in await h.items("alice@sim.example", "contacts")
            if i["fields"].get("Surname") == "Lovelace"
        ]
        assert ada[0]["fields"]["JobTitle"] == "Countess"

        # Outlook update reaches the CRM.
        await h.owner(
            "PATCH",
            f"/mailboxes/alice@sim.example/items/{ada[0]['id']}",
            {"fields": {"CompanyName": "Babbage & Co"}},
        )
        assert await h.sync("alice@sim.example") == Done("ok")
        assert (
            await pool.fetchval("SELECT company FROM crm.contacts WHERE id = $1", crm_id)
            == "Babbage & Co"
        )

        # No echo: another pass writes nothing on either side.
        before = h.sim.sim.counters()
        assert await h.sync("alice@sim.example") == Done("ok")
        after = h.sim.sim.counters()
        writes = ("CreateItem", "UpdateItem", "DeleteItem")
        assert {k: v for k, v in after["requests"].items() if k in writes} == {
            k: v for k, v in before["requests"].items() if k in writes
        }

        # Deletes both ways.
        await pool.execute("DELETE FROM crm.contacts WHERE id = $1", crm_id)
        assert await h.sync("alice@sim.example") == Done("ok")
        remaining = await h.items("alice@sim.example", "contacts")
        assert [i["fields"]["Surname"] for i in remaining] == ["Hopper"]
        await h.owner("DELETE", f"/mailboxes/alice@sim.example/items/{remaining[0]['id']}")
        assert await h.sync("alice@sim.example") == Done("ok")
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 0
        assert await h.links("alice@sim.example") == 0


async def test_the_pass_after_our_own_writes_reads_no_item(pool: asyncpg.Pool) -> None:
    """EWS reports the service's own creates back; their change keys say there is no news."""
    async with harness(pool) as h:
        user, _ = await h.add_user("own@sim.example")
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) "
            "SELECT $1, 'Mine ' || g FROM generate_series(1, 20) g",
            user,
        )
        assert await h.sync("own@sim.example", PassKind.INITIAL) == Done("ok")
        before = dict(h.sim.sim.counters()["requests"])
        assert await h.sync("own@sim.example") == Done("ok")
        after = dict(h.sim.sim.counters()["requests"])
        issued = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        assert issued == {"SyncFolderItems": 3}, issued


async def test_an_idle_pass_still_finishes_an_interrupted_create(
    pool: asyncpg.Pool, backend: str
) -> None:
    """Nothing changed on either side, but a link row says a create was never confirmed:
    the pass must plan (not take the idle shortcut), find the item by its CRM id and
    confirm the link, without creating it twice."""
    async with harness(pool, backend=backend) as h:
        user, mailbox = await h.add_user("intent@sim.example")
        crm_id = await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Halfway') RETURNING id",
            user,
        )
        assert await h.sync("intent@sim.example", PassKind.INITIAL) == Done("ok")
        assert await h.sync("intent@sim.example") == Done("ok")  # reads its own write back
        # As if the process died after CreateItem and before the link was confirmed.
        await pool.execute(
            "UPDATE sync.item_links SET pending = 'exchange', exchange_id = '', change_key = '' "
            "WHERE mailbox_id = $1 AND crm_id = $2",
            mailbox.id,
            str(crm_id),
        )
        assert await h.sync("intent@sim.example") == Done("ok")
        row = await pool.fetchrow(
            "SELECT pending, exchange_id FROM sync.item_links "
            "WHERE mailbox_id = $1 AND crm_id = $2",
            mailbox.id,
            str(crm_id),
        )
        assert row is not None and row["pending"] == "" and row["exchange_id"] != ""
        items = await h.items("intent@sim.example", "contacts")
        assert [i["fields"].get("Surname") for i in items] == ["Halfway"]
