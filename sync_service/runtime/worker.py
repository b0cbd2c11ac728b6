"""Engine workers: claim jobs, run each pass under a time budget, record the result, release.

One worker runs many passes at once (SYNC_MAX_CONCURRENT_MAILBOXES); every pass is a task of
the worker's TaskGroup, and one pass's failure never touches another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sync_service import metrics
from sync_service.db.queue import Job, JobQueue, RunClose

log = logging.getLogger("sync_service.runtime.worker")
CLAIM_BATCH = 100  # jobs per claim statement
REFILL_DELAY = 0.02  # seconds to gather ended passes before claiming their slots again
TIMED_OUT_DELAY = timedelta(seconds=60)  # a pass over its time budget runs again after this
CANCELLED = RunClose("cancelled", "the service stopped before the pass ended")


@dataclass(frozen=True, slots=True)
class Done:
    """The pass ended (well or not): the job is finished."""

    outcome: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient failure: the same job runs again after `delay`."""

    delay: timedelta
    reason: str


JobResult = Done | RetryLater
RunPass = Callable[[Job], Awaitable[JobResult]]


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        engine: str,
        run_pass: RunPass,
        *,
        capacity: int,
        lease_seconds: float,
        pass_timeout: float,
        poll_seconds: float = 0.25,
        grace_seconds: float = 20.0,
    ) -> None:
        self.queue = queue
        self.engine = engine
        self.run_pass = run_pass
        self.capacity = capacity
        self.lease_seconds = lease_seconds
        self.pass_timeout = pass_timeout
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.running: dict[int, asyncio.Task[None]] = {}
        self.alive = False
        self._freed = asyncio.Event()  # set whenever a pass ends

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until `stop`; then let running passes end within the grace time."""
        self.alive = True
        try:
            async with asyncio.TaskGroup() as group:
                renewer = group.create_task(self._renew_leases(), name="lease-renewer")
                reaper = group.create_task(self._reap(stop), name="lease-reaper")
                await self._claim_loop(group, stop)
                await self._drain()
                renewer.cancel()
                reaper.cancel()
        finally:
            self.alive = False

    async def _claim_loop(self, group: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._freed.clear()  # before claiming: a pass ending from here on wakes us
            free = self.capacity - len(self.running)
            want = min(free, CLAIM_BATCH)
            jobs = await self.queue.claim(self.engine, want) if want > 0 else []
            for job in jobs:
                task = group.create_task(self._execute(job), name=f"pass-{job.id}")
                self.running[job.id] = task
            metrics.ACTIVE_PASSES.set(len(self.running))
            if want == 0 or len(jobs) == want:
                if free > want:
                    continue  # more may be due and there is room: claim again at once
                # Every slot is busy and more may be due: claim as soon as passes end (a few
                # at a time rather than one claim per ended pass); `stop` is seen within a poll.
                await _wait(self._freed, self.poll_seconds)
                await _wait(stop, REFILL_DELAY)
            else:
                await _wait(stop, self.poll_seconds)  # nothing more is due: poll

    async def _drain(self) -> None:
        if not self.running:
            return
        log.info("stopping: waiting for running passes", extra={"passes": len(self.running)})
        _, pending = await asyncio.wait(list(self.running.values()), timeout=self.grace_seconds)
        for task in pending:  # cancelled passes hand their job back (see _execute)
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _execute(self, job: Job) -> None:
        try:
            async with asyncio.timeout(self.pass_timeout):
                result = await self.run_pass(job)
            await self._record(job, result)
        except TimeoutError:
            budget = RunClose("timed_out", f"the pass ran past its {self.pass_timeout:g}s budget")
            await self.queue.retry_later(
                job.id, self.engine, TIMED_OUT_DELAY, "pass time budget exceeded", budget
            )
        except asyncio.CancelledError:
            # Shutdown (the drain time ran out) or a lost lease: give the job back at once,
            # shielded from the cancel; the run ends as cancelled in the same statement. When
            # the lease was lost the job is no longer ours and whoever reaped it ended the run.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.queue.retry_later(
                        job.id, self.engine, timedelta(0), "interrupted", CANCELLED
                    )
                )
            raise
        except Exception:
            # A bug in a pass must not kill the worker: the job is failed and logged (and a run
            # the pass left open ends as failed with it).
            log.exception("pass crashed", extra={"job": job.id})
            await self.queue.finish(job.id, self.engine, failed=True, outcome="crashed")
        finally:
            self.running.pop(job.id, None)
            self._freed.set()
            metrics.ACTIVE_PASSES.set(len(self.running))

    async def _record(self, job: Job, result: JobResult) -> None:
        if isinstance(result, RetryLater):
            await self.queue.retry_later(job.id, self.engine, result.delay, result.reason)
        else:
            await self.queue.finish(
                job.id, self.engine, failed=result.failed, outcome=result.outcome
            )

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self.running)
            if not ids:
                continue
            held = await self.queue.renew_many(ids, self.engine)
            for job_id in set(ids) - held:
                task = self.running.get(job_id)
                if task is None:
                    continue  # finished while the renewal ran: not lost
                log.warning("lease lost; stopping the pass", extra={"job": job_id})
                task.cancel()

    async def _reap(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            reaped = await self.queue.reap()
            if reaped:
                log.info("reaped jobs of dead engines", extra={"count": len(reaped)})
            await asyncio.sleep(self.lease_seconds / 2)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
