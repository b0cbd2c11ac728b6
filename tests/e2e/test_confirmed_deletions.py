"""A CRM record is deleted only once its Exchange item is really gone, on both backends.

A read can miss an item that is there (a full Graph listing pages by offset: a deletion while
it runs shifts the rest by one), and the planner then plans the record's deletion. The applier
looks the item up by its CRM id before it deletes: these tests hand it such a plan.
"""

from __future__ import annotations

import asyncpg

from ews_client import EntityKind
from sync_service.db.links import LinkStore
from sync_service.db.queue import PassKind
from sync_service.planning import MAPS, DeleteCrm, Plan, bind
from sync_service.runtime.applier import Applier, EntityOutcome
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

BOX = "dora@sim.example"
CONTACT = EntityKind.CONTACT


async def delete_record(h: Harness, crm_id: str, exchange_id: str) -> EntityOutcome:
    """Apply a plan holding only the deletion of the record, as a complete pass would."""
    mailbox = await h.store.mailbox_by_email(BOX)
    assert mailbox is not None
    backend = await h.runner.backends.get(h.server)
    records = await h.crm.get_records(CONTACT, [crm_id])
    applier = Applier(mailbox, backend, h.crm, LinkStore(h.pool), bind(MAPS[CONTACT]), records)
    plan = Plan(CONTACT, PassKind.COMPLETE, (DeleteCrm(crm_id, exchange_id, "Kept Contact"),))
    return await applier.apply(plan)


async def linked_contact(h: Harness, pool: asyncpg.Pool) -> tuple[str, str]:
    user, _ = await h.add_user(BOX)
    crm_id = str(
        await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
            "VALUES ($1, 'Kept', 'Contact') RETURNING id",
            user,
        )
    )
    assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
    exchange_id = await pool.fetchval(
        "SELECT exchange_id FROM sync.item_links WHERE crm_id = $1", crm_id
    )
    assert exchange_id
    return crm_id, str(exchange_id)


async def contacts(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM crm.contacts WHERE last_name = 'Contact'"))


async def test_a_record_whose_item_is_still_there_is_kept(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        crm_id, exchange_id = await linked_contact(h, pool)
        outcome = await delete_record(h, crm_id, exchange_id)
        assert outcome.skipped == 1 and outcome.counts == {}
        assert await contacts(pool) == 1
        assert await h.links(BOX) == 1
        # Nothing was lost on the next pass either: both sides still agree.
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert await contacts(pool) == 1
        assert len(await h.items(BOX, "contacts")) == 1


async def test_a_record_whose_item_is_gone_is_deleted(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        crm_id, exchange_id = await linked_contact(h, pool)
        [item] = await h.items(BOX, "contacts")
        await h.owner("DELETE", f"/mailboxes/{BOX}/items/{item['id']}")
        outcome = await delete_record(h, crm_id, exchange_id)
        assert outcome.counts == {"exchange_to_crm": {"delete": 1}}
        assert await contacts(pool) == 0
        assert await h.links(BOX) == 0
