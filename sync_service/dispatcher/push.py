"""Exchange changes -> express jobs: streaming subscriptions for every active EWS mailbox.

New, disabled or re-configured mailboxes are picked up by a periodic refresh; events are
debounced per mailbox so that a burst becomes one job (source "push", Priority.PUSH). The job
covers the entities whose folders the burst's events named (`schedule.entities_of`); an event
of a folder not known, and a catch-up after a broken stream, cover every entity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import asyncpg

from ews_client import EwsClient
from sync_service.config import Settings
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.queue import Entities, JobRequest, PassKind, Priority, enqueue_in
from sync_service.db.store import Server
from sync_service.dispatcher.debounce import Debouncer
from sync_service.dispatcher.schedule import watched_entities
from sync_service.dispatcher.streams import ServerStreams, Watch
from sync_service.runtime.backends import build_backend

log = logging.getLogger("sync_service.dispatcher.push")
Clock = Callable[[], datetime]
UNSUBSCRIBE_SECONDS = 3.0  # on the way out, free subscriptions for at most this long


def merge_scopes(known: Entities, new: Entities) -> Entities:
    """What a burst covers once one more event's entities are in (None, every entity,
    absorbs; a burst starts from the empty set)."""
    return None if known is None or new is None else known | new


class PushManager:
    """All servers' streams of this (leading) dispatcher; `covered()` feeds the sweeps."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        refresh_seconds: float = 30.0,
        timeout_minutes: int = 30,
        debouncer: Debouncer | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.timeout_minutes = timeout_minutes
        self.debouncer = debouncer or Debouncer()
        self.streams: dict[int, tuple[Server, ServerStreams]] = {}
        self._scopes: dict[int, Entities] = {}  # what each waiting burst's events named
        self._catch_up: set[int] = set()
        self._wake = asyncio.Event()
        self._state = DispatcherState(pool)

    def covered(self) -> frozenset[int]:
        return frozenset(m for _, s in self.streams.values() for m in s.covered())

    def _on_event(self, mailbox_id: int, entities: Entities = None) -> None:
        """A change in a watched folder of the mailbox; `entities`: those it concerns (None:
        not known, every entity)."""
        self.debouncer.record(mailbox_id, self.clock())
        known = self._scopes.get(mailbox_id, frozenset())
        self._scopes[mailbox_id] = merge_scopes(known, entities)
        self._wake.set()

    def _on_catch_up(self, mailbox_ids: Iterable[int]) -> None:
        self._catch_up.update(mailbox_ids)
        self._wake.set()

    async def run(self) -> None:
        # `clients` closes the Exchange clients only after the streams were stopped and
        # their subscriptions freed, which still needs the clients.
        async with AsyncExitStack() as clients:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._flush_loop(), name="push-flush")
                    while True:
                        await self.refresh(clients)
                        await asyncio.sleep(self.refresh_seconds)
            finally:
                await self._close_all()

    async def refresh(self, stack: AsyncExitStack) -> None:
        """Bring every server's subscriptions in line with the database."""
        servers = {s.id: s for s in await self._state.enabled_servers() if s.backend == "ews"}
        wanted: dict[int, dict[int, Watch]] = {sid: {} for sid in servers}
        for box in await self._state.push_mailboxes():
            entities = watched_entities(*box.modes)
            wanted.setdefault(box.server_id, {})[box.id] = Watch(box.id, box.email, entities)
        for sid in list(self.streams):
            known, streams = self.streams[sid]
            if servers.get(sid) != known:  # disabled, removed or re-configured: start over
                await streams.close(unsubscribe_within=UNSUBSCRIBE_SECONDS)
                del self.streams[sid]
        for sid, server in servers.items():
            if sid not in self.streams:
                try:
                    backend = build_backend(server, self.settings)
                    if not isinstance(backend, EwsClient):  # streaming is an EWS operation
                        continue
                    client = await stack.enter_async_context(backend)
                except Exception as exc:  # a bad server must not stop the others
                    log.warning(
                        "no push for server", extra={"server": server.name, "error": str(exc)}
                    )
                    continue
                self.streams[sid] = (
                    server,
                    ServerStreams(
                        client,
                        self._on_event,
                        self._on_catch_up,
                        timeout_minutes=self.timeout_minutes,
                    ),
                )
            await self.streams[sid][1].reconcile(wanted.get(sid, {}))

    async def flush(self) -> list[int]:
        """Queue the debounced bursts and the catch-up passes; the mailbox ids queued."""
        now = self.clock()
        bursts = self.debouncer.release(now)
        catch_up, self._catch_up = self._catch_up, set()
        requests = [
            JobRequest(
                b.mailbox_id,
                PassKind.EXPRESS,
                Priority.PUSH,
                "push",
                b.first_at,
                entities=self._scopes.pop(b.mailbox_id, None),
            )
            for b in bursts
        ]
        requests += [
            JobRequest(m, PassKind.EXPRESS, Priority.PUSH, "push-catch-up")
            for m in sorted(catch_up)
        ]
        if not requests:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            await enqueue_in(conn, requests)
            if bursts:
                await self._state.mark_pushed(conn, [b.mailbox_id for b in bursts], now)
        return [r.mailbox_id for r in requests]

    async def _flush_loop(self) -> None:
        while True:
            if not len(self.debouncer) and not self._catch_up:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(0.1)
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("push flush failed", extra={"error": str(exc)})

    async def close(self) -> None:
        """Stop every stream and free the subscriptions (bounded); `run` does it on exit."""
        await self._close_all()

    async def _close_all(self) -> None:
        for _, streams in self.streams.values():
            await streams.close(unsubscribe_within=UNSUBSCRIBE_SECONDS)
        self.streams.clear()
