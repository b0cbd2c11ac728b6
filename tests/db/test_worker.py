from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from sync_service.db.links import LinkStore
from sync_service.db.queue import Job, JobQueue, PassKind
from sync_service.runtime.worker import Done, JobResult, RetryLater, Worker
from tests.db.test_queue import _mailboxes


async def _job_states(pool: asyncpg.Pool) -> dict[int, tuple[str, str | None]]:
    rows = await pool.fetch("SELECT mailbox_id, status, outcome FROM sync.jobs")
    return {r["mailbox_id"]: (r["status"], r["outcome"]) for r in rows}


async def test_passes_run_concurrently_and_one_crash_touches_no_other(
    pool: asyncpg.Pool,
) -> None:
    ids = await _mailboxes(pool, 12)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    for mb in ids:
        await queue.enqueue(mb, PassKind.EXPRESS)
    crashing, retrying = ids[0], ids[1]
    peak = 0
    active = 0
    done = asyncio.Event()
    finished: set[int] = set()

    async def run_pass(job: Job) -> JobResult:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.05)
            if job.mailbox_id == crashing:
                raise RuntimeError("bug in a pass")
            if job.mailbox_id == retrying:
                return RetryLater(timedelta(hours=1), "transient")
            return Done("ok")
        finally:
            active -= 1
            finished.add(job.mailbox_id)
            if len(finished) == len(ids):
                done.set()

    stop = asyncio.Event()
    worker = Worker(
        queue,
        "engine-a",
        run_pass,
        capacity=4,
        lease_seconds=30,
        pass_timeout=10,
        poll_seconds=0.02,
    )
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 10)
    states = await _job_states(pool)
    assert peak == 4
    assert states[crashing] == ("failed", "crashed")
    assert states[retrying] == ("queued", "transient")
    assert all(states[mb] == ("done", "ok") for mb in ids[2:])


async def _begun_pass(links: LinkStore, job: Job, engine: str, started: asyncio.Event) -> int:
    """Start a pass's run as the runner does, then tell the test it is running."""
    begun = await links.begin_run(job.mailbox_id, job.id, job.kind.value, False, engine)
    assert begun is not None
    started.set()
    return begun.run_id


async def test_stop_interrupts_long_passes_and_hands_their_jobs_back(
    pool: asyncpg.Pool,
) -> None:
    [mb] = await _mailboxes(pool, 1)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    links = LinkStore(pool)
    await queue.enqueue(mb, PassKind.COMPLETE)
    started = asyncio.Event()

    async def run_pass(job: Job) -> JobResult:
        await _begun_pass(links, job, "engine-a", started)
        await asyncio.sleep(3600)
        return Done("ok")

    stop = asyncio.Event()
    worker = Worker(
        queue,
        "engine-a",
        run_pass,
        capacity=2,
        lease_seconds=30,
        pass_timeout=7200,
        poll_seconds=0.02,
        grace_seconds=0.1,
    )
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert (await _job_states(pool))[mb] == ("queued", "interrupted")
    run = await pool.fetchrow("SELECT outcome, error, finished_at FROM sync.runs")
    assert run is not None and run["finished_at"] is not None
    assert (run["outcome"], run["error"]) == (
        "cancelled",
        "the service stopped before the pass ended",
    )
    [again] = await queue.claim("engine-b", 1)
    assert again.kind == PassKind.COMPLETE


async def test_a_pass_over_its_time_budget_ends_timed_out_and_runs_again_later(
    pool: asyncpg.Pool,
) -> None:
    [mb] = await _mailboxes(pool, 1)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    links = LinkStore(pool)
    await queue.enqueue(mb, PassKind.EXPRESS)
    started = asyncio.Event()

    async def run_pass(job: Job) -> JobResult:
        await _begun_pass(links, job, "engine-a", started)
        await asyncio.sleep(3600)
        return Done("ok")

    stop = asyncio.Event()
    worker = Worker(
        queue, "engine-a", run_pass, capacity=1, lease_seconds=30, pass_timeout=0.3,
        poll_seconds=0.02,
    )  # fmt: skip
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    async with asyncio.timeout(10):
        while (await _job_states(pool))[mb][0] == "running":
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert (await _job_states(pool))[mb] == ("queued", "pass time budget exceeded")
    run = await pool.fetchrow("SELECT outcome, error, finished_at FROM sync.runs")
    assert run is not None and run["finished_at"] is not None
    assert (run["outcome"], run["error"]) == ("timed_out", "the pass ran past its 0.3s budget")
    assert await queue.claim("engine-a", 1) == []  # not before the delay
