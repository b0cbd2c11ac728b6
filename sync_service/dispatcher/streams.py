"""EWS streaming subscriptions of one server: subscribe, group, stream, recover.

Protocol rules this follows (ews_client/PROTOCOL_NOTES.md, "Notifications"):
- "GetStreamingEvents ... carrying up to 200 subscription ids per connection": groups of at
  most `MAX_IDS_PER_CONNECTION` subscriptions share one long-lived connection.
- "ConnectionTimeout 1..30 minutes": each connection asks for `timeout_minutes` (30 by
  default) and is reopened at once when the server closes it; a subscription lives as long
  as a connection keeps reading it, so reopening is also what renews it.
- "Subscriptions are charged to the target mailbox (EWSMaxSubscriptions 20)": one
  subscription per mailbox covers all its watched folders, and a replaced one is
  unsubscribed first, so a mailbox never holds more than one of ours.
- "hanging-connection limit (10)": each connection is anchored on a different mailbox (its
  first member), so no anchor ever holds more than one of our hanging connections.
- "ErrorSubscriptionNotFound ... resubscribe and run an express pass to catch up;
  ErrorMissedNotificationEvents likewise": and so after any broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ews_client import (
    EntityKind,
    EwsClient,
    ExchangeError,
    ItemNotFoundError,
    StreamBatch,
    folder_for,
)
from sync_service.dispatcher.schedule import entities_of

log = logging.getLogger("sync_service.dispatcher.push")
MAX_IDS_PER_CONNECTION = 200
SUBSCRIBE_CONCURRENCY = 16
_CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "copied"})


@dataclass(frozen=True, slots=True)
class Watch:
    """What one mailbox's subscription must cover."""

    mailbox_id: int
    email: str
    entities: tuple[EntityKind, ...]


@dataclass(slots=True)
class _Group:
    members: list[int] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    healthy: bool = False


# A change of a mailbox and the entities whose folders it touched (None: not known, every one).
OnEvent = Callable[[int, frozenset[EntityKind] | None], None]
OnCatchUp = Callable[[Iterable[int]], None]


class ServerStreams:
    """Subscriptions and streaming connections of one server (client already open)."""

    def __init__(
        self,
        client: EwsClient,
        on_event: OnEvent,
        on_catch_up: OnCatchUp,
        *,
        timeout_minutes: int = 30,
        group_size: int = MAX_IDS_PER_CONNECTION,
    ) -> None:
        self.client = client
        self.on_event = on_event
        self.on_catch_up = on_catch_up
        self.timeout_minutes = timeout_minutes
        self.group_size = min(group_size, MAX_IDS_PER_CONNECTION)
        self.subs: dict[int, tuple[Watch, str]] = {}
        # Each subscribed mailbox's watched folders: folder id -> entity (events name the
        # folder by id: ParentFolderId); empty when they could not be read.
        self.folders: dict[int, dict[str, EntityKind]] = {}
        self.groups: list[_Group] = []
        self._gate = asyncio.Semaphore(SUBSCRIBE_CONCURRENCY)

    # -- what is watched ---------------------------------------------------------------------

    def covered(self) -> set[int]:
        """Mailboxes whose connection is open and read: push brings their changes."""
        return {m for g in self.groups if g.healthy for m in g.members if m in self.subs}

    async def reconcile(self, desired: dict[int, Watch]) -> None:
        """Subscribe new mailboxes, drop gone or disabled ones, follow changed modes."""
        stale = [m for m, (w, _) in self.subs.items() if desired.get(m) != w]
        dirty: set[int] = set()
        for m in stale:
            await self._unsubscribe(m)
            dirty |= self._leave(m)
        added = [w for m, w in desired.items() if m not in self.subs and w.entities]
        async with asyncio.TaskGroup() as tg:
            for watch in added:
                tg.create_task(self._subscribe(watch))
        for watch in added:
            if watch.mailbox_id in self.subs:
                dirty.add(self._join(watch.mailbox_id))
        for index in sorted(dirty):
            self._restart(self.groups[index])
        self.groups = [g for g in self.groups if g.members]

    async def close(self, *, unsubscribe_within: float = 0.0) -> None:
        """Stop every connection; optionally free the subscriptions (best effort, bounded).

        Exchange expires an unread subscription by itself, but until then it counts against
        the mailbox's 20, and the next leader subscribes anew.
        """
        tasks = [g.task for g in self.groups if g.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.groups.clear()
        if unsubscribe_within > 0 and self.subs:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(unsubscribe_within), asyncio.TaskGroup() as tg:
                    for mailbox_id in list(self.subs):
                        tg.create_task(self._unsubscribe(mailbox_id))

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe(self, watch: Watch) -> bool:
        folders = [folder_for(e, watch.email) for e in watch.entities]
        async with self._gate:
            try:
                sub_id = await self.client.subscribe(watch.email, folders)
            except ExchangeError as exc:
                # Not covered: the express sweep polls it until a later refresh succeeds.
                log.warning("subscribe failed", extra={"mailbox": watch.email, "error": str(exc)})
                return False
        self.subs[watch.mailbox_id] = (watch, sub_id)
        self.folders[watch.mailbox_id] = await self._folder_ids(watch, folders)
        return True

    async def _folder_ids(self, watch: Watch, folders: list[Any]) -> dict[str, EntityKind]:
        """One GetFolder for every watched folder; on failure events cover every entity."""
        async with self._gate:
            try:
                infos = await self.client.get_folder(watch.email, folders)
            except ExchangeError:
                return {}
        return {info.folder.id: e for info, e in zip(infos, watch.entities, strict=False)}

    async def _unsubscribe(self, mailbox_id: int) -> None:
        watch, sub_id = self.subs.pop(mailbox_id)
        self.folders.pop(mailbox_id, None)
        # Already gone (expired, or forgotten by the server): nothing left to free.
        async with self._gate:
            with contextlib.suppress(ExchangeError):
                await self.client.unsubscribe(watch.email, sub_id)

    async def _resubscribe(self, mailbox_ids: Iterable[int]) -> None:
        watches = [self.subs.pop(m)[0] for m in list(mailbox_ids) if m in self.subs]
        async with asyncio.TaskGroup() as tg:
            for watch in watches:
                tg.create_task(self._subscribe(watch))

    # -- groups ------------------------------------------------------------------------------

    def _leave(self, mailbox_id: int) -> set[int]:
        for index, group in enumerate(self.groups):
            if mailbox_id in group.members:
                group.members.remove(mailbox_id)
                return {index}
        return set()

    def _join(self, mailbox_id: int) -> int:
        for index, group in enumerate(self.groups):
            if mailbox_id in group.members:  # resubscribed after a refusal: same connection
                return index
        for index, group in enumerate(self.groups):
            if len(group.members) < self.group_size:
                group.members.append(mailbox_id)
                return index
        self.groups.append(_Group([mailbox_id]))
        return len(self.groups) - 1

    def _restart(self, group: _Group) -> None:
        """Reopen the group's connection with its current subscriptions.

        Events that arrive meanwhile wait on the subscriptions at the server, so a restart
        loses nothing.
        """
        if group.task is not None:
            group.task.cancel()
        group.healthy = False
        if group.members:
            group.task = asyncio.create_task(self._stream(group), name="push-stream")

    # -- one connection ------------------------------------------------------------------------

    async def _stream(self, group: _Group) -> None:
        backoff = 1.0
        while True:
            ids = {self.subs[m][1]: m for m in group.members if m in self.subs}
            if not ids:
                return
            anchor = self.subs[next(iter(ids.values()))][0].email
            outcome = _Outcome.FAILED  # a stream that ends without `Closed` was broken
            try:
                async for batch in self.client.streaming_events(
                    list(ids), anchor_mailbox=anchor, timeout_minutes=self.timeout_minutes
                ):
                    outcome = await self._handle(group, ids, batch)
                    if outcome != _Outcome.OPEN:
                        break
                    backoff = 1.0
            except ExchangeError as exc:
                # A broken connection: events may have been lost with it.
                log.warning("stream broken", extra={"anchor": anchor, "error": str(exc)})
                self.on_catch_up(ids.values())
                outcome = _Outcome.FAILED
            group.healthy = False
            if outcome == _Outcome.FAILED:  # do not hammer a server that keeps failing
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            # Closed at ConnectionTimeout: reopen at once, which also keeps the
            # subscriptions alive.

    async def _handle(self, group: _Group, ids: dict[str, int], batch: StreamBatch) -> _Outcome:
        """Deliver one envelope; anything but OPEN ends this connection."""
        for note in batch.notifications:
            mailbox = ids.get(note.subscription_id)
            changes = [e for e in note.events if e.kind in _CHANGE_EVENTS]
            if mailbox is not None and changes:
                folders = self.folders.get(mailbox, {})
                self.on_event(mailbox, entities_of((e.parent_folder_id for e in changes), folders))
        dead = [ids[s] for s in batch.error_subscription_ids if s in ids]
        lost = any(isinstance(e, ItemNotFoundError) for e in batch.errors)
        missed = any(e.code == "ErrorMissedNotificationEvents" for e in batch.errors)
        if lost and not dead:
            dead = list(ids.values())
        if dead or missed or batch.errors:
            log.info("resubscribing", extra={"mailboxes": len(dead), "missed": missed})
            await self._resubscribe(dead)
            self.on_catch_up(dead if dead else ids.values())
            # Resubscribed: reopen at once. Any other error (or a refused subscribe): back off.
            recovered = dead and all(m in self.subs for m in dead)
            return _Outcome.CLOSED if recovered else _Outcome.FAILED
        group.healthy = not batch.closed
        return _Outcome.CLOSED if batch.closed else _Outcome.OPEN


class _Outcome(Enum):
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"
