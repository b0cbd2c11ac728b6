"""Leader election and the leader's loops: exactly one active dispatcher per deployment.

Election is a session-level `pg_try_advisory_lock` on a connection held for the whole
leadership. PostgreSQL releases the lock when that session ends (process killed, network
gone), so another replica, retrying every `RETRY_SECONDS`, takes over within seconds. The
leader in turn checks its connection every `CHECK_SECONDS` and stops all its loops at the
first failure: it cannot know whether it still holds the lock, so it must assume it does not.

Timing under a network partition: the leader gives up after at most CHECK_SECONDS +
CHECK_TIMEOUT (4 s) without an answer, while the server frees the lock only once its TCP
keepalives (3 s idle + 3 probes 1 s apart) declare the session dead, some 6 s later; so the
old leader has stopped before a new one can start. The CRM cursor is moreover advanced only
from the value its transaction read, so even an overlap could not lose or skip changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from sync_service import metrics
from sync_service.config import Settings
from sync_service.crm.postgres import PostgresCrm
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.pool import Conn, keeps_session_state
from sync_service.dispatcher.crm_feed import CrmFeed
from sync_service.dispatcher.graph_push import GraphPushManager
from sync_service.dispatcher.push import PushManager
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.errors import ControlFlow

log = logging.getLogger("sync_service.dispatcher")
Clock = Callable[[], datetime]
# One lock for the whole deployment; an arbitrary constant ("SYNCDISP" in ASCII).
LOCK_KEY = 0x53594E4344495350
RETRY_SECONDS = 2.0
CHECK_SECONDS = 1.0
CHECK_TIMEOUT = 3.0
SCHEDULE_TICK_SECONDS = 5.0
# Ask the server to notice a vanished leader quickly too (the lock is freed only when the
# server ends the session): TCP keepalives after 3 s idle, then every second, 3 probes.
_KEEPALIVE = {
    "tcp_keepalives_idle": "3",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    # and data the server sends but the client never acknowledges: give up after 5 s
    "tcp_user_timeout": "5000",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LeadershipLost(ControlFlow):
    """The lock connection failed: this replica no longer knows it leads."""


_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, LeadershipLost)


def _first(group: BaseExceptionGroup[BaseException]) -> str:
    exc = group.exceptions[0]
    return str(exc) or type(exc).__name__


async def run_dispatcher(
    pool: asyncpg.Pool,
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock = _utcnow,
    name: str | None = None,
    push: bool = True,
    tick_seconds: float = SCHEDULE_TICK_SECONDS,
) -> None:
    """Campaign for leadership until `stop`; while leading, run every dispatcher loop."""
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    metrics.DISPATCHER_LEADER.set(0)
    while not stop.is_set():
        try:
            await _campaign(pool, settings, stop, clock, name, push, tick_seconds)
        except* _LOST as group:
            log.warning("dispatcher stepped down", extra={"reason": _first(group)})
        except* Exception as group:
            # A bug in one loop must not take the API and the engine down with it: step
            # down, say why, and campaign again.
            log.error("dispatcher failed", exc_info=group.exceptions[0])
        finally:
            metrics.DISPATCHER_LEADER.set(0)
        await _sleep_or_stop(stop, RETRY_SECONDS)


async def _campaign(
    pool: asyncpg.Pool,
    settings: Settings,
    stop: asyncio.Event,
    clock: Clock,
    name: str,
    push: bool,
    tick_seconds: float,
) -> None:
    state = DispatcherState(pool)
    async with pool.acquire() as conn:
        # The pool resets this connection on release (pg_advisory_unlock_all(), RESET ALL), so
        # neither the lock nor the keepalive settings outlive this block.
        keeps_session_state(conn)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            return
        for setting, value in _KEEPALIVE.items():
            await conn.execute("SELECT set_config($1, $2, false)", setting, value)
        await state.claim_leadership(conn, name)
        metrics.DISPATCHER_LEADER.set(1)
        log.info("dispatcher leading", extra={"engine": name})
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_guard(state, conn, stop, name), name="dispatcher-guard")
                tg.create_task(_lead(pool, settings, clock, push, tick_seconds), name="lead")
        except* _Stopped:
            pass
        finally:
            metrics.DISPATCHER_LEADER.set(0)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            pass  # the session is gone, and the lock with it


class _Stopped(ControlFlow):
    """`stop` was set: leave the leader's TaskGroup."""


async def _guard(state: DispatcherState, conn: Conn, stop: asyncio.Event, name: str) -> None:
    """Prove the lock connection alive every second; any failure ends the leadership."""
    while True:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await state.heartbeat(conn, name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise LeadershipLost(f"lock connection failed: {type(exc).__name__}") from exc
        if conn.is_closed():
            raise LeadershipLost("lock connection closed")
        if await _sleep_or_stop(stop, CHECK_SECONDS):
            raise _Stopped


async def _lead(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, push: bool, tick_seconds: float
) -> None:
    pushes = PushManager(pool, settings, clock=clock) if push else None
    graph = GraphPushManager(pool, settings) if push else None

    def covered() -> frozenset[int]:
        ews = pushes.covered() if pushes else frozenset()
        return ews | (graph.covered() if graph else frozenset())

    crm = PostgresCrm(pool)
    sweeper = Sweeper(pool, settings, covered, crm=crm)
    feed = CrmFeed(pool, crm)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(feed.run(settings.schedule.dispatcher_poll), name="crm-feed")
        tg.create_task(_tick_loop(sweeper, clock, tick_seconds), name="schedules")
        if pushes is not None:
            tg.create_task(pushes.run(), name="push")
        if graph is not None and graph.enabled:
            tg.create_task(graph.run(), name="graph-push")


async def _tick_loop(sweeper: Sweeper, clock: Clock, seconds: float) -> None:
    while True:
        try:
            await sweeper.tick(clock())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("schedule tick failed", extra={"error": str(exc)})
        await asyncio.sleep(seconds)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """True when `stop` was set."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True
