"""The schedule tick: express sweeps, daily complete passes, auto-recovery and retention.

One `tick(now)` does everything that is due at `now`; the loop calls it with the injected clock
and tests call it directly with any instant (ten simulated minutes take no real time).

A server no schedule covers (`sync.schedules`) is swept as a whole every `express_interval`.
Once a schedule covers it, each mailbox's entities are swept at their own cadence
(`schedule.express_interval`), and one job asks for the entities due together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from ews_client import EntityKind
from sync_service.config import Settings
from sync_service.crm.port import CrmPort
from sync_service.db.dispatcher_state import DispatcherState, PurgedTable, ScheduledMailbox
from sync_service.db.pool import Conn
from sync_service.db.queue import Entities, JobRequest, PassKind, Priority, enqueue_in
from sync_service.db.schedules import EntityMailbox, ScheduleRow, ScheduleStore
from sync_service.db.store import Server
from sync_service.dispatcher import schedule
from sync_service.dispatcher.schedule import CompleteSchedule, MailboxTimes

log = logging.getLogger("sync_service.dispatcher")
RETAINED: tuple[PurgedTable, ...] = ("runs", "item_errors", "jobs", "audit")
LOG_PURGE_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class TickReport:
    express: tuple[int, ...] = ()
    complete: tuple[int, ...] = ()
    recover: tuple[int, ...] = ()
    purged: dict[str, int] = field(default_factory=dict)
    # The entities of each express job asked for (None: every entity).
    scopes: dict[int, Entities] = field(default_factory=dict)


def _times(mailbox: ScheduledMailbox) -> MailboxTimes:
    return MailboxTimes(mailbox.id, mailbox.server_group, mailbox.last_express_at)


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
        crm: CrmPort | None = None,
    ) -> None:
        self.pool = pool
        self.crm = crm
        self.settings = settings
        self.covered = covered
        self.groups = groups
        self._state = DispatcherState(pool)
        self._schedules = ScheduleStore(pool)
        self._swept: dict[int, datetime] = {}
        self._swept_entities: dict[int, dict[EntityKind, datetime]] = {}

    async def tick(self, now: datetime) -> TickReport:
        express: dict[int, Entities] = {}
        complete: list[int] = []
        servers = await self._state.enabled_servers()
        rules = await self._schedules.rules()
        covered = frozenset(self.covered())
        for server in servers:
            mine = [r for r in rules if r.server_id in (None, server.id)]
            try:
                e, c = await self._server_tick(server, now, covered, mine)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                # One misconfigured server (e.g. an unknown time zone) must not stop the others.
                log.error("schedule skipped", extra={"server": server.name, "error": str(exc)})
                continue
            express |= e
            complete += c
        recover = await self._auto_recover() if self.settings.schedule.auto_recover else []
        purged = await self.retention(now)
        return TickReport(tuple(express), tuple(complete), tuple(recover), purged, express)

    async def _server_tick(
        self,
        server: Server,
        now: datetime,
        covered: frozenset[int],
        rules: list[ScheduleRow],
    ) -> tuple[dict[int, Entities], list[int]]:
        groups = None if self.groups is None else sorted(self.groups)
        async with self.pool.acquire() as conn, conn.transaction():
            if rules:
                express, initialized = await self._entity_sweep(
                    conn, server, now, covered, rules, groups
                )
            else:
                express, initialized = await self._server_sweep(conn, server, now, covered, groups)
            through = await self._state.complete_through(conn, server.id)
            sched = complete_schedule(server, self.settings)
            # A mailbox without its initial pass gets that one (an express request becomes
            # initial), never a complete pass that would skip the matching.
            complete = (
                []
                if through is None
                else [i for i in initialized if schedule.complete_due(sched, i, through, now)]
            )
            if through is None or now > through:
                # The first tick of a new server starts its schedule now: no back-filling.
                await self._state.set_complete_through(conn, server.id, now)
            requests = [
                JobRequest(i, PassKind.COMPLETE, Priority.SCHEDULE, "schedule") for i in complete
            ]
            done = set(complete)  # a complete pass covers the express one
            requests += [
                JobRequest(i, PassKind.EXPRESS, Priority.SCHEDULE, "schedule", entities=scope)
                for i, scope in express.items()
                if i not in done
            ]
            await enqueue_in(conn, requests)
        return {i: scope for i, scope in express.items() if i not in done}, complete

    async def _server_sweep(
        self,
        conn: Conn,
        server: Server,
        now: datetime,
        covered: frozenset[int],
        groups: list[str] | None,
    ) -> tuple[dict[int, Entities], list[int]]:
        """No schedule covers the server: each mailbox as a whole, every express_interval.
        (Express requests by mailbox, and the mailboxes whose initial pass is done.)"""
        rows = await self._state.scheduled_mailboxes(conn, server.id, groups)
        express: dict[int, Entities] = {
            m.id: None
            for m in map(_times, rows)
            if schedule.express_due(
                m,
                now,
                server.express_interval,
                covered=m.id in covered,
                last_swept_at=self._swept.get(m.id),
            )
        }
        for i in express:
            self._swept[i] = now
        return express, [r.id for r in rows if r.initial_done]

    async def _entity_sweep(
        self,
        conn: Conn,
        server: Server,
        now: datetime,
        covered: frozenset[int],
        rules: list[ScheduleRow],
        groups: list[str] | None,
    ) -> tuple[dict[int, Entities], list[int]]:
        """Schedules cover the server: each entity of each mailbox at its own cadence."""
        boxes = await self._schedules.mailboxes(conn, server.id, groups)
        express: dict[int, Entities] = {}
        for box in boxes:
            if box.id in covered:  # push and the CRM feed bring its changes
                continue
            due, active = self._due(box, server, rules, now)
            if due:
                express[box.id] = None if due == frozenset(active) else due
                swept = self._swept_entities.setdefault(box.id, {})
                swept.update(dict.fromkeys(due, now))
        return express, [b.id for b in boxes if b.initial_done]

    def _due(
        self, box: EntityMailbox, server: Server, rules: list[ScheduleRow], now: datetime
    ) -> tuple[frozenset[EntityKind], tuple[EntityKind, ...]]:
        active = schedule.active_entities(*box.modes)
        intervals = {
            e: schedule.express_interval(rules, server.express_interval, server.id, box.group, e)
            for e in active
        }
        swept = self._swept_entities.get(box.id, {})
        return schedule.due_entities(active, box.last_pass_at, intervals, now, swept), active

    async def _auto_recover(self) -> list[int]:
        """SYNC_AUTO_RECOVER: a mailbox found restored is recovered without an operator."""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = await self._state.needing_recovery(conn)
            await enqueue_in(
                conn,
                [JobRequest(i, PassKind.RECOVER, Priority.SCHEDULE, "auto-recover") for i in ids],
            )
        return ids

    async def retention(self, now: datetime, *, force: bool = False) -> dict[str, int]:
        """Once a day: drop runs, item errors, finished jobs and audit rows strictly older than
        the setting, and the CRM changes older than it that every reader is past."""
        async with self.pool.acquire() as conn, conn.transaction():
            last = await self._state.last_retention(conn)
            if not force and not schedule.retention_due(last, now):
                return {}
            cutoff = schedule.retention_cutoff(now, self.settings.retention.retention_days)
            purged: dict[str, int] = {}
            for table in RETAINED:
                purged[table] = await self._state.purge(conn, table, cutoff)
            await self._state.set_retention(conn, now)
        if self.crm is not None:
            purged["change_log"] = await self._purge_change_log(cutoff)
        log.info("retention purge", extra={"purged": purged, "cutoff": cutoff.isoformat()})
        return purged

    async def _purge_change_log(self, cutoff: datetime) -> int:
        """CRM changes older than `cutoff` that every mailbox and the feed have read, in
        batches of their own transactions (writers of the CRM never wait on a long delete).
        A change some mailbox has not read yet is kept however old it is."""
        assert self.crm is not None
        below = await self._state.log_read_from()
        if below is None:  # nobody reads the log yet: it is read from the tables
            below = await self.crm.current_seq()
        total = 0
        while (n := await self.crm.purge_changes(below, cutoff, LOG_PURGE_BATCH)) > 0:
            total += n
            if n < LOG_PURGE_BATCH:
                break
        return total
