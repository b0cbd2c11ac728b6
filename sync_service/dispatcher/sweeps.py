"""The schedule tick: express sweeps, daily complete passes, auto-recovery and retention.

One `tick(now)` does everything that is due at `now`; the loop calls it with the injected clock
and tests call it directly with any instant (ten simulated minutes take no real time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from sync_service.config import Settings
from sync_service.db.pool import Conn
from sync_service.db.queries import load_queries
from sync_service.db.queue import JobRequest, PassKind, Priority, enqueue_args
from sync_service.db.store import Server
from sync_service.dispatcher import schedule
from sync_service.dispatcher.schedule import CompleteSchedule, MailboxTimes

log = logging.getLogger("sync_service.dispatcher")


@dataclass(frozen=True, slots=True)
class TickReport:
    express: tuple[int, ...] = ()
    complete: tuple[int, ...] = ()
    recover: tuple[int, ...] = ()
    purged: dict[str, int] = field(default_factory=dict)


async def enqueue_many(conn: Conn, requests: Sequence[JobRequest]) -> None:
    """Queue (or coalesce) every request on `conn`, inside the caller's transaction if any."""
    if not requests:
        return
    await conn.executemany(load_queries()["job_enqueue"], map(enqueue_args, requests))


def _times(row: asyncpg.Record) -> MailboxTimes:
    return MailboxTimes(row["id"], row["server_group"], row["last_express_at"])


def complete_schedule(server: Server, settings: Settings) -> CompleteSchedule:
    window = timedelta(seconds=settings.schedule.complete_window)
    return CompleteSchedule(ZoneInfo(server.time_zone), server.complete_at, window)


class Sweeper:
    """Schedules per server. `covered()` names the mailboxes a healthy push stream watches."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        covered: Callable[[], Collection[int]] = frozenset,
        *,
        groups: Collection[str] | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.covered = covered
        self.groups = groups
        self._q = load_queries()
        self._swept: dict[int, datetime] = {}

    async def tick(self, now: datetime) -> TickReport:
        express: list[int] = []
        complete: list[int] = []
        rows = await self.pool.fetch(self._q["dispatcher_enabled_servers"])
        servers = [server_of(r) for r in rows]
        covered = frozenset(self.covered())
        for server in servers:
            try:
                e, c = await self._server_tick(server, now, covered)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                # One misconfigured server (e.g. an unknown time zone) must not stop the others.
                log.error("schedule skipped", extra={"server": server.name, "error": str(exc)})
                continue
            express += e
            complete += c
        recover = await self._auto_recover() if self.settings.schedule.auto_recover else []
        purged = await self.retention(now)
        return TickReport(tuple(express), tuple(complete), tuple(recover), purged)

    async def _server_tick(
        self, server: Server, now: datetime, covered: frozenset[int]
    ) -> tuple[list[int], list[int]]:
        groups = None if self.groups is None else sorted(self.groups)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(self._q["dispatcher_schedule_mailboxes"], server.id, groups)
            mailboxes = [_times(r) for r in rows]
            express = [
                m.id
                for m in mailboxes
                if schedule.express_due(
                    m,
                    now,
                    server.express_interval,
                    covered=m.id in covered,
                    last_swept_at=self._swept.get(m.id),
                )
            ]
            through = await conn.fetchval(self._q["dispatcher_complete_through"], server.id)
            sched = complete_schedule(server, self.settings)
            # A mailbox without its initial pass gets that one (an express request becomes
            # initial), never a complete pass that would skip the matching.
            matched = {r["id"] for r in rows if r["initial_done"]}
            complete = (
                []
                if through is None
                else [
                    m.id
                    for m in mailboxes
                    if m.id in matched and schedule.complete_due(sched, m.id, through, now)
                ]
            )
            if through is None or now > through:
                # The first tick of a new server starts its schedule now: no back-filling.
                await conn.execute(self._q["dispatcher_set_complete_through"], server.id, now)
            requests = [
                JobRequest(i, PassKind.COMPLETE, Priority.SCHEDULE, "schedule") for i in complete
            ]
            done = set(complete)  # a complete pass covers the express one
            requests += [
                JobRequest(i, PassKind.EXPRESS, Priority.SCHEDULE, "schedule")
                for i in express
                if i not in done
            ]
            await enqueue_many(conn, requests)
        for i in express:
            self._swept[i] = now
        return [i for i in express if i not in done], complete

    async def _auto_recover(self) -> list[int]:
        """SYNC_AUTO_RECOVER: a mailbox found restored is recovered without an operator."""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(self._q["dispatcher_needs_recovery"])]
            await enqueue_many(
                conn,
                [JobRequest(i, PassKind.RECOVER, Priority.SCHEDULE, "auto-recover") for i in ids],
            )
        return ids

    async def retention(self, now: datetime, *, force: bool = False) -> dict[str, int]:
        """Once a day: drop runs, item errors and finished jobs strictly older than the setting."""
        async with self.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval(self._q["dispatcher_last_retention"])
            if not force and not schedule.retention_due(last, now):
                return {}
            cutoff = schedule.retention_cutoff(now, self.settings.retention.retention_days)
            purged = {}
            for table in ("runs", "item_errors", "jobs"):
                status = await conn.execute(self._q[f"dispatcher_purge_{table}"], cutoff)
                purged[table] = int(status.rsplit(" ", 1)[1])
            await conn.execute(self._q["dispatcher_set_retention"], now)
        log.info("retention purge", extra={"purged": purged, "cutoff": cutoff.isoformat()})
        return purged


def server_of(row: asyncpg.Record) -> Server:
    names = {f.name for f in fields(Server)}
    values: dict[str, Any] = {k: v for k, v in dict(row).items() if k in names}
    return Server(**values)


async def request_passes(
    pool: asyncpg.Pool,
    kind: PassKind,
    *,
    server_id: int | None = None,
    groups: Collection[str] | None = None,
    priority: int = Priority.OPERATOR,
    source: str = "operator",
) -> list[int]:
    """An operator's request for a server (None: every server), limited to `groups` if given.

    Only mailboxes in those groups are touched (pure filter over one query's rows).
    """
    q = load_queries()
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            q["dispatcher_schedule_mailboxes"], server_id, None if groups is None else list(groups)
        )
        chosen = [m.id for m in schedule.limit_to_groups(map(_times, rows), groups)]
        await enqueue_many(conn, [JobRequest(i, kind, priority, source) for i in chosen])
    return chosen
