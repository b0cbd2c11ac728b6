"""Exchange Online: an Outlook edit reaches the CRM through a Graph change notification."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.process.app import Service
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness
from tests.service_process import free_port

BOX = "online@sim.example"
PUSH_JOBS = "SELECT count(*) FROM sync.jobs WHERE source = 'push'"


@asynccontextmanager
async def pushing_service(h: Harness, pool: asyncpg.Pool) -> AsyncIterator[int]:
    """The whole service, with Graph change notifications to its API and no schedule that
    could do the work instead, until its three subscriptions stand; yields the API's port."""
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
        async with asyncio.timeout(30):
            while len(h.sim.graph.notifier.subscriptions) < 3:  # contacts, events, tasks
                await asyncio.sleep(0.1)
        yield port
    finally:
        service.stop.set()
        await asyncio.wait_for(task, 30)


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
        async with pushing_service(h, pool):
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
            scopes = await pool.fetch("SELECT entities FROM sync.jobs WHERE source = 'push'")
            assert {tuple(r["entities"] or ("every",)) for r in scopes} == {("contact",)}


async def _lifecycle(h: Harness, sub_id: str, event: str) -> None:
    """Make the simulator send one lifecycle notification, as Graph would."""
    await h.owner("POST", f"/graph/subscriptions/{sub_id}/lifecycle", {"event": event})


async def test_lifecycle_notifications_reach_the_service(pool: asyncpg.Pool) -> None:
    """reauthorizationRequired -> renewed, missed -> an express pass, subscriptionRemoved ->
    a new subscription, all through the service's own receiver and the simulator."""
    async with harness(pool, backend="graph") as h:
        await h.add_user(BOX)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        async with pushing_service(h, pool) as port:
            assert h.sim.graph is not None
            notifier = h.sim.graph.notifier
            url = f"http://127.0.0.1:{port}/api/v1/graph/notifications"
            assert {s.lifecycle_url for s in notifier.subscriptions.values()} == {url}
            [contacts] = [s for s in notifier.subscriptions.values() if s.folder == "contacts"]
            await _lifecycle(h, contacts.id, "reauthorizationRequired")
            async with asyncio.timeout(10):
                while notifier.counters["renewed"] < 1 or contacts.paused:
                    await asyncio.sleep(0.05)
            await _lifecycle(h, contacts.id, "missed")
            async with asyncio.timeout(10):
                while not await pool.fetchval(PUSH_JOBS):
                    await asyncio.sleep(0.05)
            await _lifecycle(h, contacts.id, "subscriptionRemoved")
            async with asyncio.timeout(10):
                while not [s for s in notifier.subscriptions.values()
                           if s.folder == "contacts" and s.id != contacts.id]:  # fmt: skip
                    await asyncio.sleep(0.05)
            assert len(notifier.subscriptions) == 3
            assert notifier.counters["lifecycle_delivered"] == 3
