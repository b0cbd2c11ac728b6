"""Idle efficiency over 1,000 mailboxes, ten minutes of simulated time driving the schedules."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg

from sync_service.dispatcher.push import PushManager
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.runtime.worker import Worker
from tests.dispatcher.conftest import add_mailboxes, make_settings
from tests.e2e.harness import harness

MAILBOXES = 1000
POLLED = 100  # the polling half runs real passes (about 25 a second here): a tenth of them
INTERVAL = timedelta(minutes=5)
TICK = timedelta(seconds=30)


async def test_idle_mailboxes_cost_nothing_with_push_and_one_sync_per_folder_without(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool) as h:
        await pool.execute(
            "UPDATE sync.servers SET rate_per_second = 5000, max_concurrency = 100, "
            "express_interval = $1, "
            # the daily complete passes start half a day away, whatever the time of the run
            "complete_at = (now() AT TIME ZONE 'UTC' + interval '12 hours')::time",
            INTERVAL,
        )
        emails = h.sim.sim.add_numbered(MAILBOXES)
        users = await pool.fetch(
            "INSERT INTO crm.users (email) SELECT unnest($1::text[]) RETURNING id::text", emails
        )
        ids = await add_mailboxes(pool, h.server, emails, user_ids=[u["id"] for u in users])
        # already synced and idle: the initial pass is done, the last pass was just now
        await pool.execute("UPDATE sync.mailboxes SET initial_done = true, last_express_at = now()")
        settings = make_settings()

        # -- with push --------------------------------------------------------------------
        pushes = PushManager(pool, settings, refresh_seconds=3600)
        task = asyncio.create_task(pushes.run())
        started = time.monotonic()
        try:
            async with asyncio.timeout(60):
                while len(pushes.covered()) < MAILBOXES:
                    await asyncio.sleep(0.1)
            subscribed = time.monotonic() - started
            before = Counter(h.sim.sim.requests)
            sweeper = Sweeper(pool, settings, pushes.covered)
            t0 = datetime.now(UTC)
            for k in range(int(timedelta(minutes=10) / TICK) + 1):
                report = await sweeper.tick(t0 + k * TICK)
                assert report.express == () and report.complete == ()
            await asyncio.sleep(0.5)
            issued = Counter(h.sim.sim.requests) - before
            assert issued == Counter(), issued  # not one request in ten minutes
            assert h.sim.sim.counters()["subscriptions"] == MAILBOXES  # one per mailbox
            streams = h.sim.sim.requests["GetStreamingEvents"]
            assert streams == MAILBOXES // 200  # 200 subscriptions per connection
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        # -- without push: the express sweep polls every interval ---------------------------
        await pool.execute(
            "UPDATE sync.mailboxes SET state = 'disabled' WHERE id > $1", ids[POLLED - 1]
        )
        stop = asyncio.Event()
        worker = Worker(
            h.queue,
            "w",
            h.runner,
            capacity=50,
            lease_seconds=60,
            pass_timeout=60,
            poll_seconds=0.05,
        )
        worker_task = asyncio.create_task(worker.run(stop))
        sweeper = Sweeper(pool, settings)  # nothing covered
        before = Counter(h.sim.sim.requests)
        t0 = datetime.now(UTC) + INTERVAL  # the first tick finds every mailbox due
        polls = 0
        try:
            for k in range(int(timedelta(minutes=10) / TICK)):
                report = await sweeper.tick(t0 + k * TICK)
                if report.express:
                    polls += 1
                    assert sorted(report.express) == ids[:POLLED]
                    async with asyncio.timeout(60):
                        while await pool.fetchval(
                            "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
                        ):
                            await asyncio.sleep(0.05)
        finally:
            stop.set()
            await worker_task
        issued = Counter(h.sim.sim.requests) - before
        assert polls == 2  # ten minutes, a five-minute interval
        # One SyncFolderItems per synced folder (contacts, calendar, tasks) and nothing else.
        assert issued == Counter({"SyncFolderItems": polls * POLLED * 3})
        print(f"subscribed {MAILBOXES} in {subscribed:.1f}s; polling requests: {dict(issued)}")
