"""An EWS streaming notification queues a pass of the entities whose folders changed only."""

from __future__ import annotations

import asyncpg

from ews_client.simulator.config import SimulatorConfig
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.dispatcher.test_push import _until, dispatching
from tests.e2e.harness import harness

EMAIL = "push@sim.example"


async def test_a_push_pass_covers_the_folder_that_changed(pool: asyncpg.Pool) -> None:
    async with harness(pool, SimulatorConfig(heartbeat_s=0.5)) as h:
        _user, box = await h.add_user(EMAIL)
        await pool.execute(
            "UPDATE sync.servers "
            "SET complete_at = (now() AT TIME ZONE 'UTC' + interval '12 hours')::time"
        )
        assert await h.sync(EMAIL, PassKind.INITIAL) == Done("ok")

        async def streaming() -> bool:
            return h.sim.sim.counters()["subscriptions"] == 1

        async with dispatching(h):
            await _until(streaming, 20, "subscribed")
            await h.owner(
                "POST",
                f"/mailboxes/{EMAIL}/items",
                {"folder": "tasks", "fields": {"Subject": "Pushed task"}},
            )

            async def ran() -> bool:
                return bool(
                    await pool.fetchval(
                        "SELECT count(*) FROM sync.runs WHERE mailbox_id = $1 AND outcome = 'ok' "
                        "AND job_id IN (SELECT id FROM sync.jobs WHERE source = 'push')",
                        box.id,
                    )
                )

            await _until(ran, 30, "push pass")
        rows = await pool.fetch(
            "SELECT r.entities FROM sync.runs r JOIN sync.jobs j ON j.id = r.job_id "
            "WHERE j.source = 'push'"
        )
        assert [r["entities"] for r in rows] == [["task"]]
        assert (
            await pool.fetchval("SELECT count(*) FROM crm.tasks WHERE subject = 'Pushed task'") == 1
        )
