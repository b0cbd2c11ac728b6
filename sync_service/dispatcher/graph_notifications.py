"""Graph change notifications for the service's HTTP API, and the subscriptions behind them.

The receiver (`add_routes(app, on_change, client_state=...)`):
- answers the validation handshake: `POST ?validationToken=...` -> 200, the token echoed as
  text/plain (Graph refuses the subscription otherwise, and waits at most 10 s);
- checks each notification's `clientState` in constant time (a mismatch is not ours: dropped);
- maps the notification to a mailbox (by subscription id, else by its `resource`) and hands
  `(mailbox, entity)` to `on_change`, a plain callback that must only record it (queue an
  express job): nothing is awaited inside the request, and the answer is 202 at once, well
  within Graph's 3 seconds.
The path must be reachable without the API's bearer token (Graph cannot send it): the app
owner lists `NOTIFICATION_PATH` among the public paths.

`SubscriptionManager` creates one subscription per mailbox and entity, renews each before it
expires, re-creates lost ones, and removes them with the mailbox. While a mailbox has no live
subscription (`covered()` is False) the dispatcher keeps sweeping it on its express schedule.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from aiohttp import web

from ews_client import EntityKind, ExchangeError, GraphClient, ItemNotFoundError, Subscription

log = logging.getLogger("sync_service.dispatcher.graph_notifications")
NOTIFICATION_PATH = "/api/v1/graph/notifications"
MAX_BODY_BYTES = 1024 * 1024
OnChange = Callable[[str, EntityKind | None], None]
_RESOURCE = re.compile(r"^/?users/([^/]+)/(contacts|events|todo/lists/[^/]+/tasks)", re.I)
_ENTITY = {"contacts": EntityKind.CONTACT, "events": EntityKind.APPOINTMENT}


@dataclass(slots=True)
class Registry:
    """Subscription id -> (mailbox, entity); shared by the manager and the receiver."""

    by_id: dict[str, tuple[str, EntityKind]] = field(default_factory=dict)
    by_mailbox: dict[str, dict[EntityKind, Subscription]] = field(default_factory=dict)

    def add(self, mailbox: str, entity: EntityKind, sub: Subscription) -> None:
        self.by_id[sub.id] = (mailbox, entity)
        self.by_mailbox.setdefault(mailbox, {})[entity] = sub

    def drop(self, mailbox: str, entity: EntityKind) -> Subscription | None:
        sub = self.by_mailbox.get(mailbox, {}).pop(entity, None)
        if sub is not None:
            self.by_id.pop(sub.id, None)
        return sub


def resource_target(resource: str) -> tuple[str, EntityKind] | None:
    """(mailbox, entity) named by a notification's resource ("Users/{id}/Contacts/{item}")."""
    found = _RESOURCE.match(resource)
    if found is None:
        return None
    entity = _ENTITY.get(found.group(2).lower(), EntityKind.TASK)
    return unquote(found.group(1)).lower(), entity


class Receiver:
    def __init__(self, on_change: OnChange, client_state: str, registry: Registry) -> None:
        self._on_change = on_change
        self._state = client_state.encode()
        self._registry = registry
        self.rejected = 0  # notifications with a wrong clientState

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("validationToken")
        if token is not None:
            # "The endpoint must echo validationToken" as text/plain, 200, within 10 s.
            return web.Response(text=token, content_type="text/plain")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.Response(status=413)
        try:
            body = json.loads(await request.content.read(MAX_BODY_BYTES + 1))
            notes = body["value"]
            if not isinstance(notes, list):
                raise TypeError("value is not a list")
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="not a notification collection")
        for note in notes:
            self._one(note)
        return web.Response(status=202)

    def _one(self, note: object) -> None:
        if not isinstance(note, dict):
            return
        state = str(note.get("clientState") or "").encode()
        if not hmac.compare_digest(state, self._state):
            self.rejected += 1
            return
        target = self._registry.by_id.get(str(note.get("subscriptionId")))
        if target is None:
            target = resource_target(str(note.get("resource") or ""))
        if target is None:
            return
        if note.get("lifecycleEvent") == "subscriptionRemoved":
            # Graph dropped it: forget it so that the manager's next `ensure` re-creates it;
            # meanwhile the mailbox is not `covered()` and stays on the express sweep.
            self._registry.drop(target[0], target[1])
        # A change, or a lifecycle event ("missed", "subscriptionRemoved"): either way an
        # express pass catches up.
        self._on_change(target[0], target[1])


def add_routes(
    app: web.Application,
    on_change: OnChange,
    *,
    client_state: str,
    registry: Registry | None = None,
    path: str = NOTIFICATION_PATH,
) -> Receiver:
    """Mount the receiver on the service's aiohttp app; returns it (for its counters)."""
    receiver = Receiver(on_change, client_state, registry or Registry())
    app.router.add_post(path, receiver.handle)
    return receiver


class SubscriptionManager:
    """Keeps one live subscription per mailbox and entity (run `refresh` periodically)."""

    def __init__(
        self,
        client: GraphClient,
        notification_url: str,
        client_state: str,
        *,
        registry: Registry | None = None,
        entities: Iterable[EntityKind] = tuple(EntityKind),
        lifetime: timedelta = timedelta(days=2),
        renew_before: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.registry = registry or Registry()
        self._url = notification_url
        self._state = client_state
        self._entities = tuple(entities)
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._clock = clock

    def covered(self, mailbox: str) -> bool:
        """Every entity has a live subscription (else: keep the express sweep)."""
        subs = self.registry.by_mailbox.get(mailbox, {})
        now = self._clock()
        return all(e in subs and subs[e].expires > now for e in self._entities)

    async def ensure(self, mailbox: str) -> None:
        """Create what is missing and renew what expires soon; lost ones are re-created."""
        subs = self.registry.by_mailbox.get(mailbox, {})
        for entity in self._entities:
            sub = subs.get(entity)
            if sub is None or sub.expires <= self._clock():
                await self._create(mailbox, entity)
            elif sub.expires - self._clock() < self._renew_before:
                await self._renew(mailbox, entity, sub)

    async def _create(self, mailbox: str, entity: EntityKind) -> None:
        self.registry.drop(mailbox, entity)
        sub = await self.client.subscribe(mailbox, entity, self._url, self._state, self._lifetime)
        self.registry.add(mailbox, entity, sub)

    async def _renew(self, mailbox: str, entity: EntityKind, sub: Subscription) -> None:
        try:
            expires = await self.client.renew(mailbox, sub.id, self._lifetime)
        except ItemNotFoundError:
            log.info("subscription lost, re-creating", extra={"mailbox": mailbox})
            await self._create(mailbox, entity)
            return
        self.registry.add(mailbox, entity, Subscription(sub.id, sub.resource, expires))

    async def refresh(self, mailboxes: Iterable[str]) -> list[tuple[str, ExchangeError]]:
        """`ensure` every mailbox; failures are returned (the mailbox stays on the sweep)."""
        failed = []
        for mailbox in mailboxes:
            try:
                await self.ensure(mailbox)
            except ExchangeError as exc:
                failed.append((mailbox, exc))
        return failed

    async def remove(self, mailbox: str) -> None:
        for entity in self._entities:
            sub = self.registry.drop(mailbox, entity)
            if sub is not None:
                await self.client.unsubscribe(mailbox, sub.id)
