"""The job queue: at most one unfinished real pass and one unfinished dry run per mailbox,
one pass of a mailbox running at a time, claimed with SKIP LOCKED and a lease.

A job covers some entities of its mailbox (`Entities`; None: every one). Requests that coalesce
into one job merge their entity sets, as they merge their kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

import asyncpg

from ews_client import EntityKind
from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries
from sync_service.planning.actions import PassKind

__all__ = [
    "Entities",
    "Job",
    "JobQueue",
    "JobRequest",
    "PassKind",
    "Priority",
    "QueueDepth",
    "RunClose",
    "enqueue_in",
    "entity_scope",
]


# Claims in a row that may lose a race to one mailbox before the error is the caller's.
CLAIM_ATTEMPTS = 5


# The entities a job, a run or a schedule covers; None: every entity of the mailbox.
Entities = frozenset[EntityKind] | None


def entity_scope(entities: Iterable[EntityKind | str] | None) -> Entities:
    """An entity set in its one spelling: None for none given or for all of them."""
    if entities is None:
        return None
    found = frozenset(EntityKind(e) for e in entities)
    return None if not found or found == frozenset(EntityKind) else found


def entity_array(entities: Entities) -> list[str] | None:
    """An entity set as the database stores it: sorted names, NULL for every entity."""
    scope = entity_scope(entities)
    return None if scope is None else sorted(e.value for e in scope)


class Priority(IntEnum):
    SCHEDULE = 0
    PUSH = 5
    OPERATOR = 10


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    mailbox_id: int
    kind: PassKind
    dry_run: bool
    forced: bool
    attempts: int
    priority: int
    source: str
    oldest_change_at: datetime | None
    requested_at: datetime
    entities: Entities = None


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Jobs waiting, held under a live lease, and held by an engine that stopped renewing."""

    queued: int
    running: int
    oldest_queued_seconds: float
    stalled: int = 0


@dataclass(frozen=True, slots=True)
class RunClose:
    """How a job handed back ends the run its engine left open: outcome and error."""

    outcome: str
    error: str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A pass asked for one mailbox, queued with many others in one round trip."""

    mailbox_id: int
    kind: PassKind
    priority: int
    source: str
    oldest_change_at: datetime | None = None
    dry_run: bool = False
    entities: Entities = None


def enqueue_args(r: JobRequest) -> tuple[object, ...]:
    """The parameters of `job_enqueue` for one request (due now, not forced)."""
    return (r.mailbox_id, r.kind.value, int(r.priority), None, r.source, r.dry_run, False,
            r.oldest_change_at, entity_array(r.entities))  # fmt: skip


async def enqueue_in(conn: Conn, requests: Sequence[JobRequest]) -> None:
    """Queue (or coalesce) every request on `conn`, inside the caller's transaction if any."""
    if requests:
        await conn.executemany(load_queries()["job_enqueue"], map(enqueue_args, requests))


class JobQueue:
    """The jobs table (`sql/jobs.sql`): enqueue, claim with a lease, finish, reap."""

    def __init__(self, pool: asyncpg.Pool, lease: timedelta) -> None:
        self._pool = pool
        self._lease = lease
        self._q = load_queries()

    async def enqueue(
        self,
        mailbox_id: int,
        kind: PassKind,
        *,
        priority: int = Priority.SCHEDULE,
        run_after: datetime | None = None,
        source: str = "schedule",
        dry_run: bool = False,
        forced: bool = False,
        oldest_change_at: datetime | None = None,
        entities: Entities = None,
    ) -> tuple[int, bool]:
        """(job id, whether a new job was created rather than coalesced); `entities`: what
        the pass covers (None: every entity)."""
        row = await self._pool.fetchrow(
            self._q["job_enqueue"],
            mailbox_id,
            kind.value,
            int(priority),
            run_after,
            source,
            dry_run,
            forced,
            oldest_change_at,
            entity_array(entities),
        )
        assert row is not None
        return int(row["id"]), bool(row["inserted"])

    async def enqueue_for(self, requests: Sequence[JobRequest]) -> list[tuple[int, bool]]:
        """`enqueue` for many mailboxes in one pipelined round trip, in their order."""
        rows = await self._pool.fetchmany(self._q["job_enqueue"], map(enqueue_args, requests))
        return [(int(row["id"]), bool(row["inserted"])) for row in rows]

    async def claim(self, engine: str, limit: int) -> list[Job]:
        """Up to `limit` due jobs, at most one per mailbox and none of a mailbox whose pass
        runs. A claim that raced another to one mailbox (refused by the index that allows
        one running job per mailbox) is tried again: it then sees the other's job running."""
        for _ in range(CLAIM_ATTEMPTS - 1):
            try:
                return await self._claim(engine, limit)
            except asyncpg.UniqueViolationError:
                continue
        return await self._claim(engine, limit)

    async def _claim(self, engine: str, limit: int) -> list[Job]:
        rows = await self._pool.fetch(self._q["job_claim"], engine, limit, self._lease)
        return [_job(r) for r in rows]

    async def renew_many(self, job_ids: list[int], engine: str) -> set[int]:
        """Renew several leases at once; returns the ids still held."""
        rows = await self._pool.fetch(self._q["job_renew_many"], job_ids, engine, self._lease)
        return {int(r["id"]) for r in rows}

    async def finish(self, job_id: int, engine: str, *, failed: bool, outcome: str) -> str | None:
        """Mark the job done or failed; returns the new status ('queued' when a rerun waits).

        A run of the job that this engine left open ends with it (failed, `outcome` its error).
        """
        status: str | None = await self._pool.fetchval(
            self._q["job_finish"], job_id, engine, "failed" if failed else "done", outcome
        )
        return status

    async def retry_later(
        self,
        job_id: int,
        engine: str,
        delay: timedelta,
        outcome: str,
        run_end: RunClose | None = None,
    ) -> bool:
        """Queue the job again after `delay`; False when this engine no longer holds it.

        A run of the job that this engine left open ends in the same statement, as `run_end`
        says (by default: transient, `outcome` its error).
        """
        end = run_end or RunClose("transient", outcome)
        held = await self._pool.fetchval(
            self._q["job_retry_later"], job_id, engine, delay, outcome, end.outcome, end.error
        )
        return bool(held)

    async def reap(self) -> list[int]:
        """Return the jobs of engines whose lease expired to the queue; their mailbox ids.

        The runs those engines left open end as lost in the same statement.
        """
        rows = await self._pool.fetch(self._q["job_reap"])
        return [int(r["mailbox_id"]) for r in rows]

    async def depth(self) -> QueueDepth:
        """Jobs waiting and running, and how long the oldest waiting one has waited."""
        row = await self._pool.fetchrow(self._q["job_queue_depth"])
        assert row is not None
        return QueueDepth(
            int(row["queued"]),
            int(row["running"]),
            float(row["oldest_queued_seconds"]),
            int(row["stalled"]),
        )


def _job(row: asyncpg.Record) -> Job:
    return Job(
        id=row["id"],
        mailbox_id=row["mailbox_id"],
        kind=PassKind(row["kind"]),
        dry_run=row["dry_run"],
        forced=row["forced"],
        attempts=row["attempts"],
        priority=row["priority"],
        source=row["source"],
        oldest_change_at=row["oldest_change_at"],
        requested_at=row["requested_at"],
        entities=entity_scope(row["entities"]),
    )
