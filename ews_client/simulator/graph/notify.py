"""Change notifications: `POST /subscriptions` with the validation handshake, list, get,
renewal by PATCH, reauthorization, DELETE, expiry, lifecycle notifications, and a notifier
task that POSTs each notification to the subscriber.

What Graph does and this double follows (ews_client/PROTOCOL_NOTES.md, "Subscriptions"):
- the handshake: Graph POSTs to `notificationUrl?validationToken=...` (and to the
  `lifecycleNotificationUrl` too when one is given); the endpoint must answer 200 with the
  token as text/plain within 10 s, else the subscription is refused;
- `changeType` is a comma-separated set of created / updated / deleted: only those changes
  are notified, any other value is refused;
- each resource has a maximum lifetime (Outlook contacts and events 10,080 minutes, To Do
  tasks 4,230): a later `expirationDateTime` is refused, not shortened;
- at most 1,000 live subscriptions per mailbox, for all applications together;
- lifecycle notifications go to the `lifecycleNotificationUrl`: `reauthorizationRequired`
  (for every resource; here when a subscription nears its expiry or when a test asks) pauses
  delivery until the subscription is renewed or reauthorized, and changes made meanwhile are
  lost; `subscriptionRemoved` (Outlook contacts and events only) comes with the subscription
  gone; `missed` (Outlook contacts and events only) follows a change notification that could
  not be delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from ..config import GraphPolicy
from ..store import Mailbox
from .errors import GraphError, bad_request
from .ids import graph_id

Json = dict[str, Any]
RESOURCE_TYPES = {"contacts": "#Microsoft.Graph.Contact", "calendar": "#Microsoft.Graph.Event",
                  "tasks": "#Microsoft.Graph.TodoTask"}  # fmt: skip
CHANGE_TYPES = ("created", "updated", "deleted")
_CHANGE_OF = {"Created": "created", "Modified": "updated", "Deleted": "deleted"}
# Maximum subscription lifetime per resource, in minutes.
MAX_MINUTES = {"contacts": 10_080, "calendar": 10_080, "tasks": 4_230}
MAX_PER_MAILBOX = 1000
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
# subscriptionRemoved and missed exist for Outlook messages, events and contacts only.
OUTLOOK_ONLY = frozenset({"subscriptionRemoved", "missed"})
OUTLOOK_FOLDERS = frozenset({"contacts", "calendar"})
CAP_MESSAGE = ("Operation: Create; Exception: [Status Code: Forbidden; "
               "Reason: Maximum number of subscriptions has been reached]")  # fmt: skip


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class GraphSubscription:
    id: str
    mailbox: str
    folder: str  # contacts | calendar | tasks
    resource: str
    notification_url: str
    client_state: str
    expires: datetime
    change_types: tuple[str, ...] = CHANGE_TYPES
    lifecycle_url: str | None = None
    application_id: str = ""
    paused: bool = False  # a reauthorizationRequired went unanswered: nothing is delivered
    challenged: bool = False  # the expiry's reauthorizationRequired was sent

    def json(self) -> Json:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": ",".join(self.change_types),
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "clientState": self.client_state or None,
            "expirationDateTime": _stamp(self.expires),
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
        }


def parse_change_types(value: Any) -> tuple[str, ...]:
    parts = [p.strip() for p in str(value or "").split(",") if p.strip()]
    wrong = [p for p in parts if p not in CHANGE_TYPES]
    if not parts or wrong:
        shown = ", ".join(wrong) or "(none)"
        raise bad_request(f"changeType must list created, updated or deleted; got {shown}",
                          "InvalidRequest")  # fmt: skip
    return tuple(c for c in CHANGE_TYPES if c in parts)


class Notifier:
    """Owns the subscriptions and the outgoing HTTP; `run()` is the app's background task."""

    def __init__(self, policy: GraphPolicy) -> None:
        self.policy = policy
        self.subscriptions: dict[str, GraphSubscription] = {}
        self.counters: Counter[str] = Counter()
        self.lifecycle_sent: list[tuple[str, str]] = []  # (subscription id, event)
        # How long before its expiry a subscription gets its reauthorizationRequired.
        self.reauthorize_before = timedelta(minutes=15)
        self.sweep_s = 0.5
        self._queue: asyncio.Queue[tuple[GraphSubscription, str, Json]] = asyncio.Queue()
        self._watched: set[int] = set()
        self._session: aiohttp.ClientSession | None = None
        self.ssl: Any = None  # the subscribers' TLS trust (tests: their CA), None = default

    def _expiry(self, text: Any, folder: str) -> datetime:
        try:
            when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError as exc:
            raise bad_request("expirationDateTime is not a date-time") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        limit = min(MAX_MINUTES[folder], self.policy.max_subscription_minutes)
        if when <= now:
            raise bad_request("Subscription expiration must be in the future.", "ExtensionError")
        if when > now + timedelta(minutes=limit):
            raise bad_request(f"Subscription expiration can only be {limit} minutes in the future.",
                              "ExtensionError")  # fmt: skip
        return when

    def live(self, mailbox: str | None = None) -> list[GraphSubscription]:
        now = datetime.now(UTC)
        return [s for s in self.subscriptions.values()
                if s.expires > now and (mailbox is None or s.mailbox == mailbox)]  # fmt: skip

    async def create(self, box: Mailbox, folder: str, resource: str, body: Json) -> Json:
        url = _url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        lifecycle_url = _url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
        expires = self._expiry(body.get("expirationDateTime"), folder)
        sub = GraphSubscription(
            str(uuid.uuid4()), box.address, folder, resource, url,
            str(body.get("clientState") or ""), expires,
            parse_change_types(body.get("changeType")), lifecycle_url, self.policy.client_id,
        )  # fmt: skip
        if len(self.live(box.address)) >= MAX_PER_MAILBOX:
            self.counters["over_cap"] += 1
            raise GraphError(403, "ExtensionError", CAP_MESSAGE)
        await self._validate(url)
        if lifecycle_url is not None and lifecycle_url != url:
            await self._validate(lifecycle_url)
        self.subscriptions[sub.id] = sub
        self._watch(box)
        self.counters["created"] += 1
        return sub.json()

    async def _validate(self, url: str) -> None:
        token = secrets.token_urlsafe(24)
        sep = "&" if "?" in url else "?"
        try:
            async with asyncio.timeout(self.policy.validation_timeout_s):
                async with self._http().post(
                    f"{url}{sep}validationToken={quote(token)}",
                    data=b"",
                    headers={"Content-Type": "text/plain"},
                    ssl=self.ssl,
                ) as resp:
                    text = await resp.text()
                    ok = resp.status == 200 and text == token
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.counters["validation_failed"] += 1
            raise bad_request(f"validation request failed: {type(exc).__name__}",
                              "ValidationError") from exc  # fmt: skip
        if not ok:
            self.counters["validation_failed"] += 1
            raise bad_request("the endpoint did not echo validationToken", "ValidationError")

    def get(self, sub_id: str) -> Json:
        return self._get(sub_id).json()

    def listing(self) -> list[Json]:
        return [s.json() for s in self.live()]

    def renew(self, sub_id: str, body: Json) -> Json:
        """PATCH: a new expiry, which also reauthorizes (delivery resumes)."""
        sub = self._get(sub_id)
        sub.expires = self._expiry(body.get("expirationDateTime"), sub.folder)
        sub.paused = sub.challenged = False
        self.counters["renewed"] += 1
        return sub.json()

    def reauthorize(self, sub_id: str) -> None:
        """`POST /subscriptions/{id}/reauthorize`: delivery resumes, the expiry stays."""
        self._get(sub_id).paused = False
        self.counters["reauthorized"] += 1

    def delete(self, sub_id: str) -> None:
        self._get(sub_id)
        del self.subscriptions[sub_id]

    def _get(self, sub_id: str) -> GraphSubscription:
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.expires <= datetime.now(UTC):
            self.subscriptions.pop(sub_id, None)
            raise GraphError(404, "ResourceNotFound", "The subscription was not found.")
        return sub

    # -- lifecycle --------------------------------------------------------------------------------
    def lifecycle(self, sub_id: str, event: str) -> None:
        """Send one lifecycle notification as Graph would (tests trigger it by /_sim/)."""
        sub = self._get(sub_id)
        if event not in LIFECYCLE_EVENTS:
            raise bad_request(f"unknown lifecycle event {event!r}")
        if event in OUTLOOK_ONLY and sub.folder not in OUTLOOK_FOLDERS:
            raise bad_request(f"Graph sends no {event} for To Do subscriptions")
        if sub.lifecycle_url is None:
            raise bad_request("the subscription has no lifecycleNotificationUrl")
        if event == "reauthorizationRequired":
            sub.paused = True
        elif event == "subscriptionRemoved":
            del self.subscriptions[sub_id]
        self._send_lifecycle(sub, event)

    def _send_lifecycle(self, sub: GraphSubscription, event: str) -> None:
        if sub.lifecycle_url is None:
            return
        self.lifecycle_sent.append((sub.id, event))
        self.counters[f"lifecycle_{event}"] += 1
        self._queue.put_nowait((sub, sub.lifecycle_url, self._lifecycle_note(sub, event)))

    def sweep(self) -> None:
        """Expired subscriptions go; one nearing its end is challenged once."""
        now = datetime.now(UTC)
        for sub in list(self.subscriptions.values()):
            if sub.expires <= now:
                del self.subscriptions[sub.id]
                self.counters["expired"] += 1
            elif not sub.challenged and sub.expires - now <= self.reauthorize_before:
                sub.challenged = True
                if sub.lifecycle_url is not None:
                    sub.paused = True
                    self._send_lifecycle(sub, "reauthorizationRequired")

    def _lifecycle_note(self, sub: GraphSubscription, event: str) -> Json:
        return {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _stamp(sub.expires),
            "tenantId": self.policy.tenant,
            "clientState": sub.client_state or None,
            "lifecycleEvent": event,
        }

    # -- change notifications -----------------------------------------------------------------
    def _watch(self, box: Mailbox) -> None:
        if id(box) not in self._watched:
            self._watched.add(id(box))
            box.listeners.append(self._on_change)

    def _on_change(self, box: Mailbox, kind: str, item_id: str, folder_id: str) -> None:
        folder = box.folders[folder_id].name
        change = _CHANGE_OF[kind]
        for sub in self.live(box.address):
            if sub.folder != folder or change not in sub.change_types:
                continue
            if sub.paused:
                self.counters["lost_paused"] += 1  # Graph: changes while paused are lost
                continue
            note = _notification(sub, change, graph_id(item_id), self.policy.tenant)
            self._queue.put_nowait((sub, sub.notification_url, note))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.policy.validation_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        return self._session

    async def run(self) -> None:
        """Deliver notifications one by one and sweep expiries; a change notification that
        fails is lost, and the subscriber hears of it by a `missed` lifecycle notification."""
        sweeper = asyncio.create_task(self._sweep_loop(), name="graph-subscription-sweep")
        try:
            while True:
                sub, url, note = await self._queue.get()
                delivered = await self._deliver(url, note)
                if not delivered and "lifecycleEvent" not in note and self._can_miss(sub):
                    self._send_lifecycle(sub, "missed")
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    def _can_miss(self, sub: GraphSubscription) -> bool:
        return sub.folder in OUTLOOK_FOLDERS and sub.id in self.subscriptions

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            self.sweep()

    async def _deliver(self, url: str, note: Json) -> bool:
        kind = "lifecycle_" if "lifecycleEvent" in note else ""
        try:
            async with self._http().post(url, json={"value": [note]}, ssl=self.ssl) as resp:
                ok = 200 <= resp.status < 300
            self.counters[f"{kind}delivered" if ok else f"{kind}rejected"] += 1
            return ok
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.counters[f"{kind}failed"] += 1
            return False

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None


def _url(value: Any, name: str) -> str:
    url = str(value or "")
    # Graph wants https; plain http stays allowed here for receivers in tests.
    if not url.startswith(("https://", "http://")):
        raise bad_request(f"{name} must be an http(s) URL", "InvalidRequest")
    return url


def _notification(sub: GraphSubscription, change: str, item_id: str, tenant: str) -> Json:
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": _stamp(sub.expires),
        "clientState": sub.client_state or None,
        "changeType": change,
        "resource": f"{sub.resource}/{item_id}",
        "tenantId": tenant,
        "resourceData": {
            "@odata.type": RESOURCE_TYPES[sub.folder],
            "@odata.id": f"{sub.resource}/{item_id}",
            "id": item_id,
        },
    }
