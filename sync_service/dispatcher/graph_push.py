"""Graph change notifications for every active mailbox of the Graph servers (leader only).

The subscriptions point at this deployment's notification URL; whichever replica receives a
notification queues the express job (see `Service.graph_changed`). Mailboxes without a live
subscription stay on the express sweep (`covered`).

Lifecycle notifications reach the managers through the receiver (`graph_notifications`); as
a fallback for those that reach another replica, or are never sent (To Do subscriptions get
no `subscriptionRemoved`), every `reconcile_every`-th refresh compares each server's
subscriptions with what Graph lists (`GET /subscriptions`) and re-creates the missing ones.

Each subscription watches one entity's folder, so a notification names its entity: the
receiving replica records it (`GraphChanges`) and the express job of a burst covers the
entities notified (`enqueue_change`).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from ews_client import EntityKind, ExchangeError, GraphClient
from sync_service.config import Settings
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.queue import Entities, JobQueue, PassKind, Priority
from sync_service.db.store import MailboxState, Server, Store
from sync_service.dispatcher.graph_notifications import NOTIFICATION_PATH, SubscriptionManager
from sync_service.runtime.backends import build_backend

log = logging.getLogger("sync_service.dispatcher.graph")


@dataclass(frozen=True, slots=True)
class Change:
    """The notifications of one mailbox since its last job: the first one's time and the
    entities named (None: every entity)."""

    first_at: datetime
    entities: Entities


@dataclass(slots=True)
class GraphChanges:
    """Notifications recorded inside their requests (never waiting), taken by the enqueuer.

    Keyed by mailbox: a burst coalesces, and the record cannot outgrow the mailboxes.
    """

    pending: dict[str, Change] = field(default_factory=dict)

    def record(self, mailbox: str, entity: EntityKind | None, at: datetime) -> None:
        known = self.pending.get(mailbox)
        named = None if entity is None else frozenset({entity})
        if known is None:
            self.pending[mailbox] = Change(at, named)
            return
        merged = None if known.entities is None or named is None else known.entities | named
        self.pending[mailbox] = Change(known.first_at, merged)

    def take(self) -> dict[str, Change]:
        taken, self.pending = self.pending, {}
        return taken

    def __len__(self) -> int:
        return len(self.pending)


async def enqueue_change(queue: JobQueue, store: Store, email: str, change: Change) -> bool:
    """The express job of one mailbox's notifications, covering the entities they named;
    False when the mailbox is gone or not active (nothing to queue)."""
    mailbox = await store.mailbox_by_email(email)
    if mailbox is None or mailbox.state != MailboxState.ACTIVE:
        return False
    await queue.enqueue(
        mailbox.id,
        PassKind.EXPRESS,
        priority=Priority.PUSH,
        source="push",
        oldest_change_at=change.first_at,
        entities=change.entities,
    )
    await store.mark_pushed(mailbox.id)
    return True


class GraphPushManager:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        refresh_seconds: float = 60.0,
        reconcile_every: int = 10,
    ):
        self.pool = pool
        self.settings = settings
        self.refresh_seconds = refresh_seconds
        self.reconcile_every = reconcile_every
        self._refreshes = 0
        self.managers: dict[int, tuple[Server, SubscriptionManager]] = {}
        self._covered: frozenset[int] = frozenset()
        self._state = DispatcherState(pool)

    def covered(self) -> frozenset[int]:
        return self._covered

    @property
    def enabled(self) -> bool:
        return bool(self.settings.push.graph_notification_url)

    async def run(self) -> None:
        async with AsyncExitStack() as clients:
            try:
                while True:
                    await self.refresh(clients)
                    await asyncio.sleep(self.refresh_seconds)
            finally:
                await self._remove_all()

    async def refresh(self, clients: AsyncExitStack) -> None:
        rows = await self._state.graph_mailboxes()
        servers = {s.id: s for s in await self._state.enabled_servers() if s.backend == "graph"}
        covered = set()
        self._refreshes += 1
        reconcile = self._refreshes % self.reconcile_every == 0
        for sid, server in servers.items():
            manager = await self._manager(clients, server)
            if manager is None:
                continue
            if reconcile:
                await self._reconcile(server, manager)
            boxes = {r.email: r.id for r in rows if r.server_id == sid}
            for email, exc in await manager.refresh(boxes):
                log.warning("no Graph subscription", extra={"mailbox": email, "error": str(exc)})
            covered |= {mid for email, mid in boxes.items() if manager.covered(email)}
        self._covered = frozenset(covered)

    @staticmethod
    async def _reconcile(server: Server, manager: SubscriptionManager) -> None:
        try:
            await manager.reconcile()
        except ExchangeError as exc:  # the listing failed: the next round tries again
            log.warning("subscriptions not reconciled",
                        extra={"server": server.name, "error": str(exc)})  # fmt: skip

    async def _manager(self, clients: AsyncExitStack, server: Server) -> SubscriptionManager | None:
        known = self.managers.get(server.id)
        if known is not None and known[0] == server:
            return known[1]
        state = self.settings.push.resolved_client_state()
        assert state is not None and self.settings.push.graph_notification_url
        try:
            client = build_backend(server, self.settings)
            assert isinstance(client, GraphClient)
            opened = await clients.enter_async_context(client)
        except Exception as exc:  # a bad server must not stop the others
            log.warning(
                "no Graph push for server", extra={"server": server.name, "error": str(exc)}
            )
            return None
        url = self.settings.push.graph_notification_url + NOTIFICATION_PATH
        manager = SubscriptionManager(opened, url, state.get_secret_value())
        self.managers[server.id] = (server, manager)
        return manager

    async def _remove_all(self) -> None:
        """Leaving leadership: drop our subscriptions (bounded), the next leader makes its own."""
        for _, manager in self.managers.values():
            for mailbox in list(manager.registry.by_mailbox):
                try:
                    async with asyncio.timeout(3):
                        await manager.remove(mailbox)
                except Exception:
                    break  # best effort on the way out: unrenewed subscriptions expire anyway
        self.managers.clear()
