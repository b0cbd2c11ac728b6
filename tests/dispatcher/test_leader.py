"""Leader election in one process: two candidates, the leader's connection is cut."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest

from sync_service import metrics
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.pool import create_pool
from sync_service.dispatcher import run_dispatcher
from tests.dispatcher.conftest import make_settings

LOCK_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def test_losing_the_lock_connection_steps_down_and_another_leads(
    pool: asyncpg.Pool, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sync_service.dispatcher")
    settings = make_settings(SYNC_DISPATCHER_POLL="0.5")
    stop = asyncio.Event()
    pools = [await create_pool(db_url, 4), await create_pool(db_url, 4)]
    tasks = [
        asyncio.create_task(run_dispatcher(p, settings, stop, name=f"d{n}", push=False))
        for n, p in enumerate(pools)
    ]
    try:
        async with asyncio.timeout(10):
            while (row := await pool.fetchrow("SELECT leader, leader_since FROM sync.dispatcher"))[
                "leader"
            ] is None:
                await asyncio.sleep(0.05)
            # The leader sets its gauge once claim_leadership's statement has answered; the
            # row can be seen a moment before that.
            while metrics.DISPATCHER_LEADER._value.get() != 1:
                await asyncio.sleep(0.01)
        assert metrics.DISPATCHER_LEADER._value.get() == 1
        [holder] = await pool.fetch(LOCK_HOLDER)  # exactly one candidate holds the lock
        cut = time.monotonic()
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", holder["pid"])
        async with asyncio.timeout(10):
            while not any("stepped down" in r.message for r in caplog.records):
                await asyncio.sleep(0.02)
        stepped_down = time.monotonic() - cut
        async with asyncio.timeout(10):
            while (await pool.fetchval("SELECT leader_since FROM sync.dispatcher")) == row[
                "leader_since"
            ]:
                await asyncio.sleep(0.05)
        took_over = time.monotonic() - cut
        assert stepped_down < 2.5 and took_over < 10, (stepped_down, took_over)
        assert len(await pool.fetch(LOCK_HOLDER)) == 1
        async with asyncio.timeout(5):  # the new leader's CRM feed starts its cursor
            while (status := await DispatcherState(pool).status()).crm_cursor is None:
                await asyncio.sleep(0.05)
        assert status.leader in {"d0", "d1"} and status.heartbeat_at is not None
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for p in pools:
            await p.close()
    assert metrics.DISPATCHER_LEADER._value.get() == 0
    assert await pool.fetch(LOCK_HOLDER) == []  # a clean stop frees the lock
