"""kill -9 at random moments of an initial pass of 20 mailboxes loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path

import asyncpg

from ews_client.simulator.config import LatencyConfig, SimulatorConfig
from sync_service.db.queue import PassKind
from tests.e2e.harness import SECRET_DIR, SECRET_ENV, Harness, harness
from tests.service_process import ServiceProcess, free_port, service_env

MAILBOXES = 20
PER_SIDE = 8  # CRM-only and Exchange-only items per mailbox, plus 4 on both sides


async def _seed(h: Harness) -> list[str]:
    emails = []
    for n in range(MAILBOXES):
        email = f"crash{n:02d}@sim.example"
        user, _ = await h.add_user(email)
        for i in range(PER_SIDE):
            await h.pool.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
                "VALUES ($1, 'Crm', $2, $3)",
                user,
                f"C{i}",
                f"c{i}.{n}@example.com",
            )
            await h.owner(
                "POST",
                f"/mailboxes/{email}/items",
                {
                    "folder": "contacts",
                    "fields": {
                        "GivenName": "Ex",
                        "Surname": f"E{i}",
                        "EmailAddresses": {"EmailAddress1": f"e{i}.{n}@example.com"},
                    },
                },
            )
        for i in range(4):  # on both sides already: matched, not duplicated
            await h.pool.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
                "VALUES ($1, 'Both', $2, $3)",
                user,
                f"B{i}",
                f"b{i}.{n}@example.com",
            )
            await h.owner(
                "POST",
                f"/mailboxes/{email}/items",
                {
                    "folder": "contacts",
                    "fields": {
                        "GivenName": "Both",
                        "Surname": f"B{i}",
                        "EmailAddresses": {"EmailAddress1": f"b{i}.{n}@example.com"},
                    },
                },
            )
        mailbox = await h.store.mailbox_by_email(email)
        assert mailbox is not None
        await h.queue.enqueue(mailbox.id, PassKind.INITIAL)
        emails.append(email)
    return emails


async def _queue_empty(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval(
        "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
    )


async def test_sigkill_during_initial_passes_loses_and_duplicates_nothing(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path, backend: str
) -> None:
    # Slow enough (per-request latency, two passes at a time) that five kills land mid-work:
    # writes go in batches, so a fast simulator would let the passes end first.
    config = SimulatorConfig(latency=LatencyConfig(base_s=0.08, per_item_s=0.002))
    async with harness(pool, config, backend=backend) as h:
        emails = await _seed(h)
        env = service_env(
            SYNC_DATABASE_URL=db_url,
            SYNC_API_BIND=f"127.0.0.1:{free_port()}",
            SYNC_ROLES="engine,api",
            SYNC_JOB_LEASE="2s",
            SYNC_MAX_CONCURRENT_MAILBOXES="2",
            SYNC_SECRET_DIR=SECRET_DIR,  # the simulator's CA file (Graph over TLS)
            **{SECRET_ENV: os.environ[SECRET_ENV]},
        )
        rng = random.Random(20261123)
        kills = 0
        while kills < 5:
            name = f"crash-{kills}"
            service = ServiceProcess({**env, "SYNC_ENGINE_NAME": name}, tmp_path / f"{name}.log")
            # Kill at a random moment once this process is inside a pass (whatever the load
            # of the machine makes its start-up cost).
            async with asyncio.timeout(90):
                while not await pool.fetchval(
                    "SELECT count(*) FROM sync.runs WHERE engine = $1 AND outcome IS NULL", name
                ):
                    await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            service.kill()
            kills += 1
            if await _queue_empty(pool):
                break
        assert kills == 5, "the passes ended before five kills; make them slower"
        final = ServiceProcess(env, tmp_path / "final.log")
        try:
            # Ready first: the queue may already be empty, and a stop must find it serving.
            await asyncio.to_thread(final.wait_ready)
            async with asyncio.timeout(120):
                while not await _queue_empty(pool):
                    await asyncio.sleep(0.5)
        finally:
            assert final.terminate() == 0, final.output()

        engines = await pool.fetchval("SELECT count(DISTINCT engine) FROM sync.runs")
        # The passes a kill cut short were ended as lost by the engine that reaped their jobs.
        interrupted = await pool.fetchval("SELECT count(*) FROM sync.runs WHERE outcome = 'lost'")
        print(f"passes started by {engines} processes, {interrupted} cut short by a kill")
        assert interrupted >= 3, "the kills must land inside passes"
        assert not await pool.fetchval(
            "SELECT count(*) FROM sync.runs WHERE outcome IS NULL OR finished_at IS NULL"
        )
        failed = await pool.fetch(
            "SELECT outcome, error FROM sync.runs WHERE outcome NOT IN ('ok', 'lost')"
        )
        assert all(r["outcome"] in ("transient",) for r in failed), failed
        # Counted as they were linked, by the killed passes and the ones that replayed them:
        # every item created on either side exactly once.
        creates = await pool.fetch(
            "SELECT d.key AS direction, sum((d.value ->> 'create')::int) AS n FROM sync.runs r, "
            "jsonb_each(r.counts -> 'contact') d GROUP BY 1"
        )
        assert {r["direction"]: r["n"] for r in creates} == {
            "crm_to_exchange": MAILBOXES * PER_SIDE,
            "exchange_to_crm": MAILBOXES * PER_SIDE,
        }
        for n, email in enumerate(emails):
            surnames = [i["fields"]["Surname"] for i in await h.items(email, "contacts")]
            mailbox = await h.store.mailbox_by_email(email)
            assert mailbox is not None and mailbox.state == "active", email
            crm = await pool.fetch(
                "SELECT c.last_name FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
                "WHERE u.email = $1",
                email,
            )
            crm_names = [r["last_name"] for r in crm]
            expected = sorted(
                [f"C{i}" for i in range(PER_SIDE)]
                + [f"E{i}" for i in range(PER_SIDE)]
                + [f"B{i}" for i in range(4)]
            )
            assert sorted(surnames) == expected, (email, Counter(surnames))
            assert sorted(crm_names) == expected, (email, Counter(crm_names))
            assert await h.links(email) == len(expected), n
