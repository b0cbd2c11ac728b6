"""The push path: an Outlook-side edit reaches the CRM through streaming, no schedule involved."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from sync_service.db.queue import PassKind
from sync_service.dispatcher import run_dispatcher
from sync_service.runtime.worker import Done, Worker
from tests.dispatcher.conftest import make_settings
from tests.e2e.harness import Harness, harness

EMAIL = "push@sim.example"


@asynccontextmanager
async def dispatching(h: Harness) -> AsyncIterator[None]:
    """The dispatcher (leader at once: alone) and a worker, in this process."""
    stop = asyncio.Event()
    worker = Worker(
        h.queue, "w", h.runner, capacity=8, lease_seconds=30, pass_timeout=60, poll_seconds=0.05
    )
    tasks = [
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(run_dispatcher(h.pool, make_settings(), stop, name="d1")),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_outlook_edit_reaches_crm_by_push_also_after_a_broken_stream(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    # A "minute" of ConnectionTimeout lasts 50 ms: every stream closes after 1.5 s and must
    # be reopened (which is also what keeps its subscriptions alive).
    config = SimulatorConfig(heartbeat_s=0.5, stream_minute_s=0.05)
    async with harness(pool, config) as h:
        user, _ = await h.add_user(EMAIL)
        # keep the daily complete passes half a day away, whatever the time of the run
        await pool.execute(
            "UPDATE sync.servers "
            "SET complete_at = (now() AT TIME ZONE 'UTC' + interval '12 hours')::time"
        )
        assert await h.sync(EMAIL, PassKind.INITIAL) == Done("ok")
        streams_before = 0

        async def streaming() -> bool:
            counters = h.sim.sim.counters()
            requests = counters["requests"]
            assert isinstance(requests, dict)
            return (
                counters["subscriptions"] == 1
                and requests.get("GetStreamingEvents", 0) > streams_before
            )

        async def crm_has(name: str) -> bool:
            found = await pool.fetchval(
                "SELECT count(*) FROM crm.contacts WHERE owner_id = $1 AND last_name = $2",
                user,
                name,
            )
            return bool(found)

        async def idle() -> bool:
            return not await pool.fetchval(
                "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
            )

        async with dispatching(h):
            await _until(streaming, 10, "a subscription and an open stream")
            streams_before = h.sim.sim.requests["GetStreamingEvents"]
            await _until(streaming, 10, "the stream reopened after its ConnectionTimeout")
            assert h.sim.sim.counters()["subscriptions"] == 1  # the same subscription
            await asyncio.sleep(0.3)
            sync_requests = h.sim.sim.requests["SyncFolderItems"]
            await h.owner(
                "POST",
                f"/mailboxes/{EMAIL}/items",
                {"folder": "contacts", "fields": {"GivenName": "P", "Surname": "One"}},
            )
            first = await _until(lambda: crm_has("One"), 5, "the push-driven pass")
            assert h.sim.sim.requests["SyncFolderItems"] > sync_requests
            sources = await pool.fetch("SELECT DISTINCT source FROM sync.jobs")
            assert {r["source"] for r in sources} == {"test", "push"}  # no schedule involved
            assert await pool.fetchval("SELECT last_push_at FROM sync.mailboxes") is not None

            # A burst of edits (twenty notifications within the debounce) is one pass.
            await _until(idle, 10, "an idle queue")
            runs_before = await pool.fetchval("SELECT count(*) FROM sync.runs")
            for n in range(20):
                await h.owner(
                    "POST",
                    f"/mailboxes/{EMAIL}/items",
                    {"folder": "contacts", "fields": {"GivenName": "B", "Surname": f"Burst{n}"}},
                )
            await _until(lambda: crm_has("Burst19"), 5, "the burst")
            await asyncio.sleep(1.5)  # time for any echo notification to come back
            await _until(idle, 10, "an idle queue")
            burst_runs = await pool.fetchval("SELECT count(*) FROM sync.runs") - runs_before
            # one pass for the twenty notifications, plus at most one for the notifications
            # of that pass's own writes (the CRM id it stamps on the new items)
            assert burst_runs <= 2, burst_runs

            # The simulator breaks every stream and forgets the subscriptions.
            await _until(idle, 10, "an idle queue")
            streams_before = h.sim.sim.requests["GetStreamingEvents"]
            await h.owner("POST", "/streams/break", {"forget": True})
            await _until(streaming, 10, "a new subscription and stream")
            await _until(idle, 10, "the catch-up pass")
            await asyncio.sleep(0.3)
            await h.owner(
                "POST",
                f"/mailboxes/{EMAIL}/items",
                {"folder": "contacts", "fields": {"GivenName": "P", "Surname": "Two"}},
            )
            second = await _until(lambda: crm_has("Two"), 5, "the push-driven pass after break")
            rows = await pool.fetch("SELECT source, count(*) n FROM sync.jobs GROUP BY source")
            by_source = {r["source"]: r["n"] for r in rows}
            assert by_source.get("push-catch-up", 0) >= 1, by_source
            assert "schedule" not in by_source and "crm" not in by_source, by_source
        assert h.sim.sim.counters()["subscriptions"] == 0  # a clean stop frees them
        failures = [
            r
            for r in caplog.records
            if r.name.startswith("sync_service.dispatcher") and r.levelno >= logging.ERROR
        ]
        assert failures == []
        print(f"push: {first:.2f}s, after the break: {second:.2f}s")
