from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from sync_service.db.queue import JobQueue, PassKind, Priority
from sync_service.db.store import NewServer, Store


async def _mailboxes(pool: asyncpg.Pool, n: int) -> list[int]:
    store = Store(pool)
    server = await store.add_server(
        NewServer(
            "ex1",
            "ews",
            "https://ex1.example/EWS/Exchange.asmx",
            "basic",
            username="svc",
            secret_env="EX1_PASSWORD",
        )
    )
    ids = []
    async with pool.acquire() as conn:
        for i in range(n):
            mb, _ = await store.upsert_mailbox(
                conn,
                f"u{i}",
                f"user{i}@example.com",
                server.id,
                None,
                ("two-way", "two-way", "two-way"),
            )
            ids.append(mb.id)
    return ids


@pytest.fixture
def queue(pool: asyncpg.Pool) -> JobQueue:
    return JobQueue(pool, lease=timedelta(seconds=30))


async def test_requests_coalesce_into_one_job_keeping_the_strongest_kind(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    [mb] = await _mailboxes(pool, 1)
    first, created = await queue.enqueue(mb, PassKind.EXPRESS)
    assert created
    again, created = await queue.enqueue(mb, PassKind.COMPLETE, priority=Priority.OPERATOR)
    assert (again, created) == (first, False)
    weaker, _ = await queue.enqueue(mb, PassKind.EXPRESS)
    assert weaker == first
    [job] = await queue.claim("engine-a", 10)
    assert (job.id, job.kind, job.priority) == (first, PassKind.COMPLETE, Priority.OPERATOR)


async def test_request_during_a_running_pass_queues_a_rerun(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    [mb] = await _mailboxes(pool, 1)
    await queue.enqueue(mb, PassKind.EXPRESS)
    [job] = await queue.claim("engine-a", 10)
    await queue.enqueue(mb, PassKind.EXPRESS, source="crm")
    assert await queue.claim("engine-b", 10) == []  # still one unfinished job
    assert await queue.finish(job.id, "engine-a", failed=False, outcome="ok") == "queued"
    [rerun] = await queue.claim("engine-b", 10)
    assert rerun.id == job.id and rerun.kind == PassKind.EXPRESS
    assert await queue.finish(rerun.id, "engine-b", failed=False, outcome="ok") == "done"
    assert await queue.claim("engine-a", 10) == []


async def test_operator_requests_are_claimed_first(pool: asyncpg.Pool, queue: JobQueue) -> None:
    a, b = await _mailboxes(pool, 2)
    await queue.enqueue(a, PassKind.EXPRESS)
    await queue.enqueue(b, PassKind.EXPRESS, priority=Priority.OPERATOR)
    [job] = await queue.claim("engine-a", 1)
    assert job.mailbox_id == b


async def test_two_connections_never_claim_the_same_job(pool: asyncpg.Pool) -> None:
    ids = await _mailboxes(pool, 40)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    for mb in ids:
        await queue.enqueue(mb, PassKind.EXPRESS)
    # Two engines race, each with its own connection, claiming small batches.
    claims: dict[str, list[int]] = {"a": [], "b": []}

    async def drain(name: str) -> None:
        while jobs := await queue.claim(name, 3):
            claims[name].extend(j.id for j in jobs)
            await asyncio.sleep(0)

    await asyncio.gather(drain("a"), drain("b"))
    assert len(claims["a"]) + len(claims["b"]) == 40
    assert not set(claims["a"]) & set(claims["b"])


async def test_reaper_returns_jobs_of_dead_engines(pool: asyncpg.Pool) -> None:
    [mb] = await _mailboxes(pool, 1)
    short = JobQueue(pool, lease=timedelta(milliseconds=10))
    await short.enqueue(mb, PassKind.INITIAL)
    [job] = await short.claim("dead-engine", 1)
    await asyncio.sleep(0.05)
    assert await short.reap() == [mb]
    assert await short.renew_many([job.id], "dead-engine") == set()  # the lease is lost
    [again] = await short.claim("live-engine", 1)
    assert again.id == job.id and again.attempts == 2
    # The dead engine can no longer finish a job it does not hold.
    assert await short.finish(job.id, "dead-engine", failed=False, outcome="ok") is None


async def test_jobs_of_inactive_mailboxes_wait(pool: asyncpg.Pool, queue: JobQueue) -> None:
    a, b = await _mailboxes(pool, 2)
    store = Store(pool)
    await store.set_mailbox_state(a, "disabled", "test")
    await store.set_mailbox_state(b, "needs_recovery", "marker mismatch")
    await queue.enqueue(a, PassKind.EXPRESS)
    await queue.enqueue(b, PassKind.EXPRESS)
    assert await queue.claim("engine-a", 10) == []
    await queue.enqueue(b, PassKind.RECOVER, priority=Priority.OPERATOR)
    [job] = await queue.claim("engine-a", 10)
    assert (job.mailbox_id, job.kind) == (b, PassKind.RECOVER)


async def test_retry_later_delays_the_same_job(pool: asyncpg.Pool, queue: JobQueue) -> None:
    [mb] = await _mailboxes(pool, 1)
    await queue.enqueue(mb, PassKind.EXPRESS)
    [job] = await queue.claim("engine-a", 1)
    await queue.retry_later(job.id, "engine-a", timedelta(hours=1), "transient")
    assert await queue.claim("engine-a", 1) == []
    depth = await queue.depth()
    assert (depth.queued, depth.running) == (1, 0)


async def test_consecutive_transient_failures_disable_the_mailbox(pool: asyncpg.Pool) -> None:
    [mb] = await _mailboxes(pool, 1)
    store = Store(pool)
    assert await store.pass_failed(mb, "TransientError: timeout", 3) == "active"
    assert await store.pass_failed(mb, "TransientError: timeout", 3) == "active"
    assert await store.pass_failed(mb, "TransientError: reset", 3) == "disabled"
    mailbox = await store.mailbox(mb)
    assert mailbox is not None and mailbox.failure_count == 3
    assert mailbox.state_reason == "3 consecutive transient failures; last: TransientError: reset"
