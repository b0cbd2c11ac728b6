"""A lease that ran out under a running pass (an event loop too busy to renew it in time) and
was claimed anew by the same engine: the old pass is stopped, one pass of the mailbox runs,
and the new claim's run is left alone (found by bench_replicas: with a 4 s lease and 250
passes per engine, two passes of one mailbox created the same CRM task twice)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from sync_service.db.links import LinkStore
from sync_service.db.queue import Job, JobQueue, PassKind
from sync_service.runtime.worker import Done, JobResult, Worker
from tests.db.test_queue import _mailboxes


async def test_a_job_claimed_again_under_its_running_pass_stops_the_old_pass(
    pool: asyncpg.Pool,
) -> None:
    (mailbox,) = await _mailboxes(pool, 1)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    await queue.enqueue(mailbox, PassKind.EXPRESS)
    links = LinkStore(pool)
    running = peak = 0
    started: list[int] = []
    cancelled: list[int] = []
    second = asyncio.Event()

    async def run_pass(job: Job) -> JobResult:
        nonlocal running, peak
        begun = await links.begin_run(job.mailbox_id, job.id, job.kind.value, False, "engine-a")
        assert begun is not None
        started.append(begun.run_id)
        running += 1
        peak = max(peak, running)
        try:
            if len(started) == 2:
                second.set()
                await asyncio.sleep(0.3)
                return Done("ok")
            await asyncio.sleep(3600)  # the first pass would run on
            return Done("ok")
        except asyncio.CancelledError:
            cancelled.append(begun.run_id)
            raise
        finally:
            running -= 1

    worker = Worker(queue, "engine-a", run_pass, capacity=4, lease_seconds=30,
                    pass_timeout=60, poll_seconds=0.02)  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(10):
        while not started:
            await asyncio.sleep(0.02)
        # The lease runs out unrenewed and a reaper queues the job again (the run: lost).
        await pool.execute("UPDATE sync.jobs SET lease_expires_at = now() - interval '1 second'")
        assert await queue.reap() == [mailbox]
        await second.wait()
        while await pool.fetchval("SELECT status FROM sync.jobs") != "done":
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert cancelled == [started[0]] and peak == 1
    runs = await pool.fetch("SELECT id, outcome FROM sync.runs ORDER BY id")
    # The old pass's run ended as lost by the reaper; the new claim's run ended ok (not
    # cancelled by the old pass handing back a job that was no longer its own).
    assert [(r["id"], r["outcome"]) for r in runs] == [(started[0], "lost"), (started[1], "ok")]
