"""A stand-in engine for `--wait` tests: claims jobs with the real queue and records a run."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from sync_service.db.pool import create_pool
from sync_service.db.queue import JobQueue

COUNTS = {"contact": {"crm_to_exchange": {"create": 2}, "exchange_to_crm": {"update": 1}}}


async def _work(url: str, outcome: str, stop: threading.Event, delay: float) -> None:
    pool = await create_pool(url, 2)
    queue = JobQueue(pool, timedelta(seconds=30))
    try:
        while not stop.is_set():
            for job in await queue.claim("fake-engine", 10):
                await asyncio.sleep(delay)
                await pool.execute(
                    "INSERT INTO sync.runs (mailbox_id, job_id, kind, dry_run, engine, started_at,"
                    " finished_at, outcome, counts, requests, throttled)"
                    " VALUES ($1, $2, $3, $4, 'fake-engine', now() - interval '2 seconds', now(),"
                    " $5, $6, 7, 1)",
                    job.mailbox_id,
                    job.id,
                    job.kind.value,
                    job.dry_run,
                    outcome,
                    COUNTS,
                )
                await queue.finish(
                    job.id, "fake-engine", failed=outcome == "failed", outcome=outcome
                )
            await asyncio.sleep(0.05)
    finally:
        await pool.close()


class FakeWorker:
    def __init__(self, url: str, outcome: str = "ok", delay: float = 0.3) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=lambda: asyncio.run(_work(url, outcome, self.stop, delay)), daemon=True
        )

    def __enter__(self) -> FakeWorker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)
