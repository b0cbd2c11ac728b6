"""Engine workers: claim jobs, run each pass under a time budget, record the result, release.

One worker runs many passes at once (SYNC_MAX_CONCURRENT_MAILBOXES); every pass is a task of
the worker's TaskGroup, and one pass's failure never touches another's.

The database may go away (a restart, a failover, a network cut) and come back: the worker
outlives it. Claims and reaps are tried again; a pass that failed for want of the database is
recorded as transient once the database answers again. A lease that cannot be renewed may run
out, and then another engine may take the job: so once the last renewal is two thirds of a
lease ago, the worker stops its passes itself (fenced) before anyone else can start them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from sync_service import metrics
from sync_service.db.queue import Job, JobQueue, RunClose

log = logging.getLogger("sync_service.runtime.worker")
CLAIM_BATCH = 100  # jobs per claim statement
REFILL_DELAY = 0.02  # seconds to gather ended passes before claiming their slots again
TIMED_OUT_DELAY = timedelta(seconds=60)  # a pass over its time budget runs again after this
CANCELLED = RunClose("cancelled", "the service stopped before the pass ended")
FENCED = RunClose("transient", "the database was unreachable: the job's lease could not be renewed")
RECORD_RETRY_SECONDS = 1.0  # between tries to record a pass's end while the database is away
# The database cannot answer now, but may later: a restart, a failover, a broken connection.
DATABASE_DOWN = (
    OSError,  # refused, reset, unreachable (TimeoutError included)
    asyncpg.InterfaceError,  # the connection closed under a query
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutting down, starting up, terminated by the admin
    asyncpg.InsufficientResourcesError,  # too many connections
)


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
        self._fenced: set[int] = set()  # jobs stopped because their lease may have run out
        self._recording: set[int] = set()  # jobs whose pass ended, its end not yet stored
        self._superseded: set[asyncio.Task[None]] = set()  # passes of a job claimed anew
        self._renewed_at = time.monotonic()  # of the last renewal the database confirmed
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until `stop`; then let running passes end within the grace time."""
        self.alive = True
        self._stop = stop
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
            try:
                jobs = await self.queue.claim(self.engine, want) if want > 0 else []
            except DATABASE_DOWN as exc:
                log.warning("claim failed; the database is unavailable", extra=_error(exc))
                await _wait(stop, RECORD_RETRY_SECONDS)
                continue
            for job in jobs:
                self._supersede(job.id)
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
            try:
                async with asyncio.timeout(self.pass_timeout):
                    result = await self.run_pass(job)
            except TimeoutError:
                budget = RunClose(
                    "timed_out", f"the pass ran past its {self.pass_timeout:g}s budget"
                )
                end = RetryLater(TIMED_OUT_DELAY, "pass time budget exceeded")
                await self._record_when_possible(job, end, budget)
                return
            except asyncio.CancelledError:
                if asyncio.current_task() in self._superseded:
                    raise  # the job is ours again, under a new claim: nothing to hand back
                if not self._unfenced(job):
                    await self._hand_back(job)
                    raise
                result, run_end = RetryLater(timedelta(0), "database unavailable"), FENCED
            except DATABASE_DOWN as exc:
                # The pass (or the runner recording it) lost the database: transient.
                reason = f"database unavailable: {type(exc).__name__}: {exc}"[:1000]
                result, run_end = (
                    RetryLater(timedelta(0), "database unavailable"),
                    RunClose("transient", reason),
                )
            except Exception:
                # A bug in a pass must not kill the worker: the job is failed and logged (and a
                # run the pass left open ends as failed with it).
                log.exception("pass crashed", extra={"job": job.id})
                result, run_end = Done("crashed", failed=True), None
            else:
                run_end = None
            await self._record_when_possible(job, result, run_end)
        finally:
            this = asyncio.current_task()
            self._superseded.discard(this)
            if self.running.get(job.id) is this:  # not a newer claim's pass of the same job
                self._fenced.discard(job.id)
                self.running.pop(job.id, None)
            self._freed.set()
            metrics.ACTIVE_PASSES.set(len(self.running))

    def _supersede(self, job_id: int) -> None:
        """A claim returned a job whose pass still runs here: its lease ran out (the event
        loop too busy to renew it in time), a reaper queued it again and this engine, the
        same lease owner by name, claimed it anew. Two passes of one mailbox must never run:
        the old one is cancelled, without handing back the job the new claim holds."""
        old = self.running.get(job_id)
        if old is not None and not old.done():
            log.warning("lease ran out under a running pass; stopping it", extra={"job": job_id})
            self._superseded.add(old)
            old.cancel()

    def _unfenced(self, job: Job) -> bool:
        """True when the cancel came from the lease fence only: it is taken back, and the pass
        ends as a transient failure instead (a stop's or a lost lease's cancel stays)."""
        task = asyncio.current_task()
        return job.id in self._fenced and task is not None and task.uncancel() == 0

    async def _hand_back(self, job: Job) -> None:
        # Shutdown (the drain time ran out) or a lost lease: give the job back at once,
        # shielded from the cancel; the run ends as cancelled in the same statement. When
        # the lease was lost the job is no longer ours and whoever reaped it ended the run.
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self.queue.retry_later(job.id, self.engine, timedelta(0), "interrupted", CANCELLED)
            )

    async def _record_when_possible(
        self, job: Job, result: JobResult, run_end: RunClose | None
    ) -> None:
        """Record the pass's end, trying again while the database is away (the job keeps its
        slot meanwhile). If the lease ran out first, whoever reaped the job ended the run and
        the recording changes nothing; so does giving up when the service stops."""
        self._recording.add(job.id)
        try:
            for attempt in itertools.count():
                try:
                    await self._record(job, result, run_end)
                    return
                except DATABASE_DOWN as exc:
                    if attempt == 0:  # one line per pass, not one per second of the outage
                        log.warning(
                            "pass end not recorded yet; the database is unavailable",
                            extra={"job": job.id, **_error(exc)},
                        )
                if self._stop.is_set():
                    return  # the lease runs out and a reaper ends the run as lost
                await asyncio.sleep(RECORD_RETRY_SECONDS)
        finally:
            self._recording.discard(job.id)

    async def _record(self, job: Job, result: JobResult, run_end: RunClose | None) -> None:
        if isinstance(result, RetryLater):
            await self.queue.retry_later(job.id, self.engine, result.delay, result.reason, run_end)
        else:
            await self.queue.finish(
                job.id, self.engine, failed=result.failed, outcome=result.outcome
            )

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self.running)
            if not ids:
                self._renewed_at = time.monotonic()
                continue
            try:
                held = await self.queue.renew_many(ids, self.engine)
            except DATABASE_DOWN as exc:
                log.warning("lease renewal failed", extra=_error(exc))
                self._fence_if_late()
                continue
            self._renewed_at = time.monotonic()
            for job_id in set(ids) - held:
                task = self.running.get(job_id)
                if task is None:
                    continue  # finished while the renewal ran: not lost
                log.warning("lease lost; stopping the pass", extra={"job": job_id})
                task.cancel()

    def _fence_if_late(self) -> None:
        """Stop every pass once its lease may run out before the next renewal: from then on
        a reaper may give the job to another engine, and a mailbox must never have two."""
        if time.monotonic() - self._renewed_at < self.lease_seconds * 2 / 3:
            return
        for job_id, task in self.running.items():
            # A pass being recorded writes nothing more to Exchange: it is left to finish.
            if job_id not in self._fenced and job_id not in self._recording:
                self._fenced.add(job_id)
                log.warning("lease not renewable; stopping the pass", extra={"job": job_id})
                task.cancel()

    async def _reap(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._fenced or self._recording:
                # Our own ended passes are about to be recorded (as transient) once the
                # database answers: reaping them first would end their runs as lost.
                await asyncio.sleep(RECORD_RETRY_SECONDS)
                continue
            try:
                reaped = await self.queue.reap()
            except DATABASE_DOWN as exc:
                log.warning("reaping failed; the database is unavailable", extra=_error(exc))
                reaped = []
            if reaped:
                log.info("reaped jobs of dead engines", extra={"count": len(reaped)})
            await asyncio.sleep(self.lease_seconds / 2)


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {exc}"[:500]}


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
