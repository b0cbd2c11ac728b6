"""CRM changes -> express jobs: batching, the cursor's transaction, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sync_service.crm.port import PendingChanges
from sync_service.crm.postgres import PostgresCrm
from sync_service.dispatcher.crm_feed import CrmFeed
from tests.dispatcher.conftest import add_mailboxes, add_server, open_jobs


async def _users(pool: asyncpg.Pool, *emails: str) -> list[str]:
    rows = await pool.fetch(
        "INSERT INTO crm.users (email) SELECT unnest($1::text[]) RETURNING id::text", list(emails)
    )
    return [r["id"] for r in rows]


async def _step_until(feed: CrmFeed, pool: asyncpg.Pool, want: set[int]) -> None:
    """The change log hands out a change once every older transaction in the cluster ended;
    on a shared test server that can take a moment, so read until the jobs are there."""
    async with asyncio.timeout(20):
        while set(await open_jobs(pool)) != want:
            await feed.step()
            await asyncio.sleep(0.05)


async def test_burst_for_one_user_is_one_job_and_cursor_advances(pool: asyncpg.Pool) -> None:
    alice, bob, carol = await _users(pool, "a@x.example", "b@x.example", "c@x.example")
    server = await add_server(pool)
    ids = await add_mailboxes(
        pool, server, ["a@x.example", "b@x.example", "c@x.example"], user_ids=[alice, bob, carol]
    )
    await pool.execute("UPDATE sync.mailboxes SET state = 'disabled' WHERE id = $1", ids[2])
    feed = CrmFeed(pool, PostgresCrm(pool))
    first = await feed.step()  # a first leader starts at the current position
    assert first.committed and first.mailboxes == ()
    await pool.execute(
        "INSERT INTO crm.contacts (owner_id, last_name) "
        "SELECT $1::uuid, 'n' || g FROM generate_series(1, 10000) AS g",
        alice,
    )
    for n in range(5):  # and a few more, in transactions of their own
        await pool.execute(
            "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1::uuid, $2)", alice, f"t{n}"
        )
    await pool.execute("INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'x')", bob)
    await pool.execute("INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'y')", carol)
    await _step_until(feed, pool, {ids[0], ids[1]})
    jobs = await pool.fetch(
        "SELECT mailbox_id, kind, source, priority, oldest_change_at FROM sync.jobs"
    )
    assert len(jobs) == 2  # 10,005 changes for alice: one job
    assert {(r["kind"], r["source"], r["priority"]) for r in jobs} == {("express", "crm", 5)}
    assert all(r["oldest_change_at"] is not None for r in jobs)
    cursor = await pool.fetchval("SELECT crm_cursor FROM sync.dispatcher")
    assert cursor >= await pool.fetchval("SELECT max(xid::text::bigint) + 1 FROM crm.change_log")
    # nothing new: nothing queued, the cursor stays
    await pool.execute("UPDATE sync.jobs SET status = 'done', finished_at = now()")
    step = await feed.step()
    assert step.mailboxes == () and await open_jobs(pool) == {}


class _RivalMovesCursor(PostgresCrm):
    """Another leader advances the cursor while this one is between its read and its commit."""

    async def pending_users(
        self, after_seq: int, up_to: int | None = None
    ) -> dict[str, PendingChanges]:
        found = await super().pending_users(after_seq, up_to)
        await self._pool.execute("UPDATE sync.dispatcher SET crm_cursor = crm_cursor + 1")
        return found


async def test_a_deposed_leader_neither_moves_the_cursor_nor_queues(pool: asyncpg.Pool) -> None:
    [alice] = await _users(pool, "a@x.example")
    server = await add_server(pool)
    await add_mailboxes(pool, server, ["a@x.example"], user_ids=[alice])
    await CrmFeed(pool, PostgresCrm(pool)).step()
    before = await pool.fetchval("SELECT crm_cursor FROM sync.dispatcher")
    await pool.execute("INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'x')", alice)
    feed = CrmFeed(pool, _RivalMovesCursor(pool))
    async with asyncio.timeout(20):
        while await PostgresCrm(pool).current_seq() <= before:
            await asyncio.sleep(0.05)
    with pytest.raises(asyncpg.exceptions.SerializationError):
        await feed.step()
    assert await pool.fetchval("SELECT crm_cursor FROM sync.dispatcher") == before + 1
    assert await open_jobs(pool) == {}  # rolled back with the cursor update


async def test_notification_wakes_the_feed_before_the_poll(pool: asyncpg.Pool) -> None:
    [alice] = await _users(pool, "a@x.example")
    server = await add_server(pool)
    [box] = await add_mailboxes(pool, server, ["a@x.example"], user_ids=[alice])
    feed = CrmFeed(pool, PostgresCrm(pool))
    task = asyncio.create_task(feed.run(poll_seconds=60))
    try:
        async with asyncio.timeout(10):
            while await pool.fetchval("SELECT crm_cursor FROM sync.dispatcher") is None:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the feed now waits for a notification (or 60 s)
        await pool.execute("INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'z')", alice)
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(15):
            while await open_jobs(pool) != {box: ("express", "crm")}:
                await asyncio.sleep(0.05)
        assert loop.time() - started < 15
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
