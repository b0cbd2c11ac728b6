"""Graph change notifications for the service's HTTP API, and the subscriptions behind them.

The receiver (`add_routes(app, on_change, client_state=...)`):
- answers the validation handshake: `POST ?validationToken=...` -> 200, the token echoed as
  text/plain with `X-Content-Type-Options: nosniff` (Graph refuses the subscription otherwise,
  and waits at most 10 s; nosniff keeps a browser from reading the echo as HTML);
- refuses with 400, naming the field, a body that is not a notification collection of JSON
  text: not JSON, nested too deeply, or a string that is not Unicode (a lone surrogate);
- checks each notification's `clientState` in constant time (a mismatch is not ours: dropped);
- maps the notification to a mailbox (by subscription id, else by its `resource`) and hands
  `(mailbox, entity)` to `on_change`, a plain callback that must only record it (queue an
  express job): nothing is awaited inside the request, and the answer is 202 at once, well
  within Graph's 3 seconds;
- handles Graph's lifecycle notifications, which arrive at the same URL (the subscriptions
  name it as their `lifecycleNotificationUrl`) and name only the subscription:
  `reauthorizationRequired` -> the subscription is renewed by PATCH (which reauthorizes it),
  `subscriptionRemoved` -> it is created again and an express pass catches up,
  `missed` -> an express pass for that mailbox catches up. The renewal and the re-creation run
  in the background, by the `SubscriptionManager` that made the subscription (found through
  `OWNERS`, this process's directory of subscription ids); a replica that does not own the
  subscription leaves it to the owner's reconciliation (`SubscriptionManager.reconcile`).
The path must be reachable without the API's bearer token (Graph cannot send it): the app
owner lists `NOTIFICATION_PATH` among the public paths.

`SubscriptionManager` creates one subscription per mailbox and entity, renews each before it
expires, re-creates lost ones, and removes them with the mailbox. While a mailbox has no live
subscription (`covered()` is False) the dispatcher keeps sweeping it on its express schedule.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from aiohttp import web

from ews_client import EntityKind, ExchangeError, GraphClient, ItemNotFoundError, Subscription

log = logging.getLogger("sync_service.dispatcher.graph_notifications")
NOTIFICATION_PATH = "/api/v1/graph/notifications"
MAX_BODY_BYTES = 1024 * 1024
OnChange = Callable[[str, EntityKind | None], None]
MAX_TOKEN = 1024  # a validationToken is an opaque string of Graph's, far shorter
MAILBOX_MAX = 320  # an SMTP address at its longest
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RESOURCE = re.compile(r"^/?users/([^/]+)/(contacts|events|todo/lists/[^/]+/tasks)", re.I)
_ENTITY = {"contacts": EntityKind.CONTACT, "events": EntityKind.APPOINTMENT}
REAUTHORIZE, REMOVED, MISSED = "reauthorizationRequired", "subscriptionRemoved", "missed"


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
    mailbox = unquote(found.group(1)).lower()
    if len(mailbox) > MAILBOX_MAX or _CONTROL.search(mailbox):
        return None  # no mailbox of ours: never handed on to be looked up or logged
    return mailbox, entity


class BadNotification(ValueError):
    """The body is not a notification collection; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_notifications(raw: bytes) -> list[object]:
    """The `value` list of a notification body, or BadNotification naming the culprit."""
    try:
        body = json.loads(raw)
    except RecursionError:  # e.g. 50,000 nested brackets
        raise BadNotification("body", "JSON nested too deeply") from None
    except ValueError as exc:  # not JSON, not UTF-8
        raise BadNotification("body", f"not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise BadNotification("value", "not a notification collection (a list under value)")
    _check_text(body)
    return list(body["value"])


# Where a value sits in a body: (key or index, the parent's crumb), None for the body itself.
Crumb = tuple[str | int, "Crumb"] | None


def _check_text(body: object) -> None:
    """Every string is Unicode text: JSON lets "\\ud800" through, which no encoder takes (the
    clientState comparison, a log line, the database would fail on it)."""
    # A loop, not recursion: the depth is the sender's to choose. The path of a value is built
    # only for the culprit, so that a deep and wide body costs no more than its size.
    pending: list[tuple[object, Crumb]] = [(body, None)]
    while pending:
        value, crumb = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key, crumb)
                pending.append((item, (key, crumb)))
        elif isinstance(value, list):
            pending.extend((item, (i, crumb)) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, crumb)


def _check_string(value: str, crumb: Crumb) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadNotification(_path(crumb), "not Unicode text (a lone surrogate)") from None


def _path(crumb: Crumb) -> str:
    """ "value[0].clientState" for the crumb of that string (cut to 200 characters)."""
    parts: list[str] = []
    while crumb is not None:
        key, crumb = crumb
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")[:200] or "body"


class Receiver:
    def __init__(self, on_change: OnChange, client_state: str, registry: Registry) -> None:
        self._on_change = on_change
        self._state = client_state.encode()
        self._registry = registry
        self.rejected = 0  # notifications with a wrong clientState
        self.lifecycle: Counter[str] = Counter()  # lifecycle notifications, by event
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("validationToken")
        if token is not None:
            return _echo(token)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.Response(status=413)
        raw = await request.read()  # the app bounds its size and, with its middleware, time
        if len(raw) > MAX_BODY_BYTES:
            return web.Response(status=413)
        try:
            notes = parse_notifications(raw)
        except BadNotification as exc:
            return web.Response(status=400, text=str(exc))
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
        sub_id = str(note.get("subscriptionId"))
        owner = OWNERS.get(sub_id)
        target = self._registry.by_id.get(sub_id)
        if target is None and owner is not None:
            target = owner.registry.by_id.get(sub_id)
        if target is None:
            target = resource_target(str(note.get("resource") or ""))
        event = note.get("lifecycleEvent")
        if event is not None:
            self.lifecycle[str(event)] += 1
            self._lifecycle(str(event), sub_id, target, owner)
        elif target is not None:
            self._on_change(target[0], target[1])

    def _lifecycle(
        self,
        event: str,
        sub_id: str,
        target: tuple[str, EntityKind] | None,
        owner: SubscriptionManager | None,
    ) -> None:
        if event == REAUTHORIZE:
            if owner is not None:
                self._background(owner.reauthorize(sub_id))
            return
        if target is None:
            log.info("lifecycle notification for an unknown subscription",
                     extra={"event": event, "subscription": sub_id})  # fmt: skip
            return
        if event == REMOVED:
            # Graph dropped it: forget it, so that the mailbox is not `covered()` (it stays on
            # the express sweep) until the owner has made a new one.
            self._registry.drop(target[0], target[1])
            if owner is not None:
                self._background(owner.recreate(target[0], target[1], sub_id))
        # Removed or missed: changes may have gone unnotified; an express pass catches up.
        self._on_change(target[0], target[1])

    def _background(self, work: Coroutine[object, object, None]) -> None:
        """Run `work` after the answer (Graph waits at most 3 s for it); a failure is logged,
        and the owner's periodic `ensure` / `reconcile` is the fallback."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("lifecycle action failed", extra={"error": str(task.exception())})

    async def drain(self) -> None:
        """Wait for the lifecycle actions under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _echo(token: str) -> web.Response:
    # "The endpoint must echo validationToken" as text/plain, 200, within 10 s. The token is
    # the caller's text sent back: nosniff keeps a browser from running it as a page.
    if len(token) > MAX_TOKEN:
        return web.Response(status=400, text=f"validationToken: at most {MAX_TOKEN} characters")
    response = web.Response(text=token, content_type="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


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
    """Keeps one live subscription per mailbox and entity (run `refresh` periodically).

    Subscriptions are made with the notification URL as their `lifecycleNotificationUrl` too
    (Graph allows the same endpoint, and the receiver tells the two kinds apart), so Graph's
    lifecycle notifications reach `reauthorize` and `recreate` through `OWNERS`.
    """

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
        lifecycle: bool = True,
    ) -> None:
        self.client = client
        self.registry = registry or Registry()
        self._url = notification_url
        self._lifecycle_url = notification_url if lifecycle else None
        self._state = client_state
        self._entities = tuple(entities)
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._clock = clock
        self._lock = asyncio.Lock()  # the refresh loop and lifecycle actions, one at a time

    def covered(self, mailbox: str) -> bool:
        """Every entity has a live subscription (else: keep the express sweep)."""
        subs = self.registry.by_mailbox.get(mailbox, {})
        now = self._clock()
        return all(e in subs and subs[e].expires > now for e in self._entities)

    async def ensure(self, mailbox: str) -> None:
        """Create what is missing and renew what expires soon; lost ones are re-created."""
        async with self._lock:
            subs = self.registry.by_mailbox.get(mailbox, {})
            for entity in self._entities:
                sub = subs.get(entity)
                if sub is None or sub.expires <= self._clock():
                    await self._create(mailbox, entity)
                elif sub.expires - self._clock() < self._renew_before:
                    await self._renew(mailbox, entity, sub)

    async def reauthorize(self, sub_id: str) -> None:
        """Answer `reauthorizationRequired`: a renewal by PATCH reauthorizes (and extends)."""
        async with self._lock:
            target = self.registry.by_id.get(sub_id)
            sub = self.registry.by_mailbox.get(target[0], {}).get(target[1]) if target else None
            if target is None or sub is None or sub.id != sub_id:
                return  # no longer ours: nothing to reauthorize
            await self._renew(target[0], target[1], sub)

    async def recreate(self, mailbox: str, entity: EntityKind, removed_id: str) -> None:
        """Answer `subscriptionRemoved`: a new subscription, unless one was made meanwhile."""
        async with self._lock:
            OWNERS.pop(removed_id, None)
            current = self.registry.by_mailbox.get(mailbox, {}).get(entity)
            if current is None or current.id == removed_id:
                await self._create(mailbox, entity)

    async def reconcile(self) -> int:
        """Re-create the subscriptions Graph no longer lists (removed without a lifecycle
        notification reaching us, e.g. To Do subscriptions, for which Graph sends none);
        returns how many were re-created."""
        live = await self.client.subscription_ids()
        lost = [(m, e, s.id) for m, subs in list(self.registry.by_mailbox.items())
                for e, s in list(subs.items()) if s.id not in live]  # fmt: skip
        for mailbox, entity, sub_id in lost:
            log.info("subscription gone, re-creating", extra={"mailbox": mailbox})
            await self.recreate(mailbox, entity, sub_id)
        return len(lost)

    async def _create(self, mailbox: str, entity: EntityKind) -> None:
        self._forget(mailbox, entity)
        sub = await self.client.subscribe(
            mailbox, entity, self._url, self._state, self._lifetime,
            lifecycle_url=self._lifecycle_url,
        )  # fmt: skip
        self.registry.add(mailbox, entity, sub)
        OWNERS[sub.id] = self

    def _forget(self, mailbox: str, entity: EntityKind) -> Subscription | None:
        sub = self.registry.drop(mailbox, entity)
        if sub is not None:
            OWNERS.pop(sub.id, None)
        return sub

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
            sub = self._forget(mailbox, entity)
            if sub is not None:
                await self.client.unsubscribe(mailbox, sub.id)


# Subscription id -> the manager (in this process) that made it: lifecycle notifications name
# only the subscription, and whichever receiver gets one hands it to its owner.
OWNERS: dict[str, SubscriptionManager] = {}
