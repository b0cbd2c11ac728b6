"""Exchange Online: an Outlook edit reaches the CRM through a Graph change notification."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.process.app import Service
from sync_service.runtime.worker import Done
from tests.e2e.harness import e2e_settings, harness
from tests.service_process import free_port

BOX = "online@sim.example"


async def test_outlook_edit_reaches_crm_through_a_change_notification(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, backend="graph") as h:
        user, _ = await h.add_user(BOX)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'N', 'Note')",
            user,
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        port = free_port()
        settings = e2e_settings(
            {
                "SYNC_API_BIND": f"127.0.0.1:{port}",
                "SYNC_API_TOKEN": "push-test-token",
                "SYNC_GRAPH_NOTIFICATION_URL": f"http://127.0.0.1:{port}",
                "SYNC_GRAPH_CLIENT_STATE": "push-test-state",
                # No schedule may do the work: sweeps and polling far apart.
                "SYNC_EXPRESS_INTERVAL": "1d",
            }
        )
        await pool.execute("UPDATE sync.servers SET express_interval = '1 day'")
        service = Service(settings, pool)
        task = asyncio.create_task(service.run())
        try:
            assert h.sim.graph is not None
            notifier = h.sim.graph.notifier
            async with asyncio.timeout(30):
                while len(notifier.subscriptions) < 3:  # contacts, events, tasks
                    await asyncio.sleep(0.1)
            [item] = await h.items(BOX, "contacts")
            edited = time.monotonic()
            await h.owner(
                "PATCH", f"/mailboxes/{BOX}/items/{item['id']}", {"fields": {"JobTitle": "Pushed"}}
            )
            async with asyncio.timeout(5):
                while (
                    await pool.fetchval(
                        "SELECT job_title FROM crm.contacts WHERE owner_id = $1", user
                    )
                    != "Pushed"
                ):
                    await asyncio.sleep(0.05)
            took = time.monotonic() - edited
            sources = {r["source"] for r in await pool.fetch("SELECT source FROM sync.jobs")}
            assert "push" in sources and not sources & {"schedule", "sweep"}, sources
            assert took < 5
        finally:
            service.stop.set()
            await asyncio.wait_for(task, 30)
