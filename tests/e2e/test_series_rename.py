"""A series renamed in the CRM: every occurrence the CRM holds shows what Outlook shows, on
both backends (issue 16). An occurrence moved in Outlook keeps the series' subject there, so
the rename reaches it in Outlook; the CRM's copy of that occurrence follows, and the sync then
writes nothing more."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg

from ews_client import EntityKind, ExchangeBackend
from ews_client.models import Appointment, ModifiedOccurrence
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

BOX = "series@sim.example"
START = (datetime.now(UTC) + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
DAILY = {
    "kind": "daily",
    "interval": 1,
    "days_of_week": [],
    "day_of_month": None,
    "month": None,
    "week_index": None,
    "start_date": START.date().isoformat(),
    "end_date": None,
    "occurrences": 10,
}


async def client_of(h: Harness) -> ExchangeBackend:
    mailbox = await h.store.mailbox_by_email(BOX)
    assert mailbox is not None
    server = await h.store.server(mailbox.server_id)
    assert server is not None
    return await h.runner.backends.get(server)


async def outlook(client: ExchangeBackend) -> Appointment:
    [master] = await client.list_items(BOX, EntityKind.APPOINTMENT)
    assert isinstance(master, Appointment)
    return master


async def test_a_crm_rename_reaches_the_occurrences_the_crm_holds(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        crm_id = await pool.fetchval(
            "INSERT INTO crm.appointments (owner_id, subject, location, starts_at, ends_at, "
            "recurrence) VALUES ($1, 'Standup', 'Room 1', $2, $3, $4) RETURNING id",
            user,
            START,
            START + timedelta(minutes=30),
            DAILY,
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert await h.sync(BOX) == Done("ok")
        # The owner moves the third occurrence in Outlook: its times only.
        client = await client_of(h)
        master = await outlook(client)
        moved = START + timedelta(days=2)
        occurrence = ModifiedOccurrence(
            moved, moved + timedelta(hours=2), moved + timedelta(hours=3)
        )
        with_move = replace(master, modified_occurrences=(occurrence,))
        await client.update_item(BOX, master.ref, with_move, frozenset({"modified_occurrences"}))
        assert await h.sync(BOX) == Done("ok")

        await pool.execute(
            "UPDATE crm.appointments SET subject = 'Daily standup', location = 'Room 2' "
            "WHERE id = $1",
            crm_id,
        )
        assert await h.sync(BOX) == Done("ok")
        shown = await outlook(client)
        assert (shown.subject, shown.location) == ("Daily standup", "Room 2")
        row = await pool.fetchrow(
            "SELECT subject, modified_occurrences FROM crm.appointments WHERE id = $1", crm_id
        )
        assert row is not None and row["subject"] == "Daily standup"
        held = {
            o["original_start"]: (o["subject"], o["location"]) for o in row["modified_occurrences"]
        }
        seen = {o.original_start.isoformat(): (o.subject, o.location)
                for o in shown.modified_occurrences}  # fmt: skip
        assert len(held) == 1 and held == seen
        if backend == "ews":  # EWS reads each exception's subject and location back
            assert seen == {moved.isoformat(): ("Daily standup", "Room 2")}

        settled = (await pool.fetchval("SELECT version FROM crm.appointments"),
                   await pool.fetchval("SELECT count(*) FROM sync.audit"))  # fmt: skip
        assert await h.sync(BOX) == Done("ok")
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        again = (await pool.fetchval("SELECT version FROM crm.appointments"),
                 await pool.fetchval("SELECT count(*) FROM sync.audit"))  # fmt: skip
        assert again == settled
