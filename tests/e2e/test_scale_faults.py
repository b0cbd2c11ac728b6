"""200 mailboxes converge under default throttling and 5% injected faults of every kind."""

from __future__ import annotations

import asyncio

import asyncpg

from ews_client.simulator.config import FAULT_KINDS, FaultConfig, SimulatorConfig
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Worker
from tests.e2e.harness import harness

MAILBOXES = 200
FAULT_RATE = 0.05  # of all requests, spread evenly over the fault kinds


async def test_200_mailboxes_converge_with_faults_and_throttling(pool: asyncpg.Pool) -> None:
    share = FAULT_RATE / len(FAULT_KINDS)
    config = SimulatorConfig(
        faults=FaultConfig(probabilities=dict.fromkeys(FAULT_KINDS, share), slow_s=3.0, seed=7)
    )
    async with harness(pool, config, env={"SYNC_HTTP_TIMEOUT": "1s"}) as h:
        emails = []
        for n in range(MAILBOXES):
            email = f"load{n:03d}@sim.example"
            user, mailbox = await h.add_user(email)
            h.sim.sim.seed(h.sim.sim.mailboxes[email], 2)
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
                "SELECT $1, 'Crm', 'Person ' || g FROM generate_series(1, 3) g",
                user,
            )
            await pool.execute(
                "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, 'Follow up')", user
            )
            await h.queue.enqueue(mailbox.id, PassKind.INITIAL)
            emails.append(email)

        stop = asyncio.Event()
        worker = Worker(
            h.queue,
            "faults",
            h.runner,
            capacity=MAILBOXES,
            lease_seconds=30,
            pass_timeout=120,
            poll_seconds=0.1,
        )
        task = asyncio.create_task(worker.run(stop))
        try:
            async with asyncio.timeout(240):
                while await pool.fetchval(
                    "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
                ):
                    # Retries wait out their back-off; pull them forward to keep the test short.
                    await pool.execute(
                        "UPDATE sync.jobs SET run_after = now() WHERE status = 'queued'"
                    )
                    await asyncio.sleep(0.5)
        finally:
            stop.set()
            await task

        counters = h.sim.sim.counters()
        assert sum(counters["faults"].values()) > 0, "no fault was injected"
        states = await pool.fetch("SELECT state, count(*) AS n FROM sync.mailboxes GROUP BY 1")
        assert {r["state"]: r["n"] for r in states} == {"active": MAILBOXES}
        # Nothing lost, nothing duplicated: every mailbox holds exactly its CRM records, and
        # the CRM holds every seeded Exchange item once.
        for email in emails:
            contacts = await h.items(email, "contacts")
            crm = await pool.fetchval(
                "SELECT count(*) FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
                "WHERE u.email = $1",
                email,
            )
            names = [(i["fields"].get("GivenName"), i["fields"].get("Surname")) for i in contacts]
            assert len(contacts) == crm == 5, (email, names)
            assert len(set(names)) == 5, (email, names)
            tasks = await h.items(email, "tasks")
            crm_tasks = await pool.fetch(
                "SELECT t.subject FROM crm.tasks t JOIN crm.users u ON u.id = t.owner_id "
                "WHERE u.email = $1",
                email,
            )
            subjects = sorted(i["fields"].get("Subject", "") for i in tasks)
            assert len(tasks) == 3 and len(crm_tasks) == 3, (
                email,
                subjects,
                sorted(r["subject"] for r in crm_tasks),
                await pool.fetch(
                    "SELECT kind, outcome, error, counts FROM sync.runs r JOIN "
                    "sync.mailboxes m ON m.id = r.mailbox_id WHERE m.email = $1",
                    email,
                ),
                await pool.fetch("SELECT reason FROM sync.item_errors"),
            )
        assert (await worker.queue.depth()).queued == 0
