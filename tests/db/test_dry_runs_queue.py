"""A dry run and a real pass of one mailbox are separate jobs, and never run at the same time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from sync_service.db.queue import JobQueue, PassKind, Priority
from tests.db.test_queue import _mailboxes


@pytest.fixture
def queue(pool: asyncpg.Pool) -> JobQueue:
    return JobQueue(pool, lease=timedelta(seconds=30))


async def _open(pool: asyncpg.Pool) -> list[tuple[bool, str, str]]:
    rows = await pool.fetch(
        "SELECT dry_run, kind, status FROM sync.jobs WHERE status IN ('queued', 'running')"
        " ORDER BY id"
    )
    return [(r["dry_run"], r["kind"], r["status"]) for r in rows]


async def test_dry_runs_and_real_passes_coalesce_only_with_their_own_sort(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    [mb] = await _mailboxes(pool, 1)
    real, _ = await queue.enqueue(mb, PassKind.EXPRESS)
    dry, created = await queue.enqueue(mb, PassKind.COMPLETE, dry_run=True)
    assert created and dry != real
    assert await queue.enqueue(mb, PassKind.INITIAL, dry_run=True) == (dry, False)
    assert await queue.enqueue(mb, PassKind.EXPRESS) == (real, False)
    assert await _open(pool) == [(False, "express", "queued"), (True, "initial", "queued")]


async def test_one_pass_of_a_mailbox_at_a_time_the_other_waits(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    mb, other = await _mailboxes(pool, 2)
    real, _ = await queue.enqueue(mb, PassKind.EXPRESS)
    dry, _ = await queue.enqueue(mb, PassKind.EXPRESS, dry_run=True, priority=Priority.OPERATOR)
    await queue.enqueue(other, PassKind.EXPRESS)
    # One claim sees both jobs of the mailbox: it takes the first in claim order only.
    jobs = await queue.claim("engine-a", 10)
    assert sorted((j.mailbox_id, j.id) for j in jobs) == sorted([(mb, dry), (other, jobs[1].id)])
    assert await queue.claim("engine-b", 10) == []  # the real pass waits for the dry run
    # A request meanwhile coalesces into the job of its own sort, here as a rerun.
    assert await queue.enqueue(mb, PassKind.EXPRESS, dry_run=True) == (dry, False)
    assert await queue.finish(dry, "engine-a", failed=False, outcome="ok") == "queued"
    [next_job] = await queue.claim("engine-b", 10)
    assert (next_job.id, next_job.dry_run) == (dry, True)  # the rerun: still a dry run
    assert await queue.finish(dry, "engine-b", failed=False, outcome="ok") == "done"
    [last] = await queue.claim("engine-b", 10)
    assert (last.id, last.dry_run) == (real, False)


async def test_a_claim_that_races_another_to_a_mailbox_is_refused_and_tried_again(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    """The claim skips a mailbox whose pass runs; when it could not see that pass yet (another
    claim took a job of the mailbox that was not due when this one looked), the index that
    allows one running job per mailbox refuses it and the claim tries again."""
    [mb] = await _mailboxes(pool, 1)
    real, _ = await queue.enqueue(mb, PassKind.EXPRESS)
    dry, _ = await queue.enqueue(mb, PassKind.EXPRESS, dry_run=True)
    await pool.execute(
        "UPDATE sync.jobs SET run_after = now() + interval '1 hour' WHERE id = $1", real
    )
    async with pool.acquire() as other:
        transaction = other.transaction()
        await transaction.start()
        # Another engine's claim of the real pass, not yet committed.
        await other.execute(
            "UPDATE sync.jobs SET status = 'running', lease_owner = 'engine-b',"
            " lease_expires_at = now() + interval '30 seconds' WHERE id = $1",
            real,
        )
        claiming = asyncio.create_task(queue.claim("engine-a", 10))
        await asyncio.sleep(0.3)  # the claim took the dry run and waits on the index
        assert not claiming.done()
        await transaction.commit()
        assert await claiming == []
    assert await _open(pool) == [(False, "express", "running"), (True, "express", "queued")]
    held = await pool.fetch("SELECT id, lease_owner FROM sync.jobs WHERE status = 'running'")
    assert [(r["id"], r["lease_owner"]) for r in held] == [(real, "engine-b")]
    assert dry != real


async def test_the_database_refuses_two_running_jobs_of_one_mailbox(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    [mb] = await _mailboxes(pool, 1)
    await queue.enqueue(mb, PassKind.EXPRESS)
    await queue.enqueue(mb, PassKind.EXPRESS, dry_run=True)
    with pytest.raises(asyncpg.UniqueViolationError, match="jobs_one_running_per_mailbox"):
        await pool.execute("UPDATE sync.jobs SET status = 'running' WHERE mailbox_id = $1", mb)
