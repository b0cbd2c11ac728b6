"""Change notifications: `POST /subscriptions` with the validation handshake, renewal by
PATCH, DELETE, expiry, and a notifier task that POSTs each change to the subscriber.

Handshake (Graph): the service POSTs to `notificationUrl?validationToken=...`; the endpoint
must answer 200 with the token as text/plain within 10 s, else the subscription is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
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


@dataclass(slots=True)
class GraphSubscription:
    id: str
    mailbox: str
    folder: str  # contacts | calendar | tasks
    resource: str
    notification_url: str
    client_state: str
    expires: datetime

    def json(self) -> Json:
        return {
            "id": self.id,
            "resource": self.resource,
            "changeType": "created,updated,deleted",
            "notificationUrl": self.notification_url,
            "clientState": self.client_state,
            "expirationDateTime": self.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class Notifier:
    """Owns the subscriptions and the outgoing HTTP; `run()` is the app's background task."""

    def __init__(self, policy: GraphPolicy) -> None:
        self.policy = policy
        self.subscriptions: dict[str, GraphSubscription] = {}
        self.counters: Counter[str] = Counter()
        self._queue: asyncio.Queue[tuple[GraphSubscription, Json]] = asyncio.Queue()
        self._watched: set[int] = set()
        self._session: aiohttp.ClientSession | None = None
        self.ssl: Any = None  # the subscribers' TLS trust (tests: their CA), None = default

    def _expiry(self, text: Any) -> datetime:
        try:
            when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError as exc:
            raise bad_request("expirationDateTime is not a date-time") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if when <= now or when > now + timedelta(minutes=self.policy.max_subscription_minutes):
            raise bad_request("expirationDateTime is out of range", "InvalidRequest")
        return when

    async def create(self, box: Mailbox, folder: str, resource: str, body: Json) -> Json:
        url = str(body.get("notificationUrl") or "")
        if not url.startswith(("https://", "http://")):
            raise bad_request("notificationUrl must be an http(s) URL", "InvalidRequest")
        sub = GraphSubscription(
            secrets.token_hex(16), box.address, folder, resource, url,
            str(body.get("clientState") or ""), self._expiry(body.get("expirationDateTime")),
        )  # fmt: skip
        await self._validate(url)
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

    def renew(self, sub_id: str, body: Json) -> Json:
        sub = self._get(sub_id)
        sub.expires = self._expiry(body.get("expirationDateTime"))
        self.counters["renewed"] += 1
        return sub.json()

    def delete(self, sub_id: str) -> None:
        self._get(sub_id)
        del self.subscriptions[sub_id]

    def _get(self, sub_id: str) -> GraphSubscription:
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.expires <= datetime.now(UTC):
            self.subscriptions.pop(sub_id, None)
            raise GraphError(404, "ResourceNotFound", "The subscription was not found.")
        return sub

    def _watch(self, box: Mailbox) -> None:
        if id(box) not in self._watched:
            self._watched.add(id(box))
            box.listeners.append(self._on_change)

    def _on_change(self, box: Mailbox, kind: str, item_id: str, folder_id: str) -> None:
        folder = box.folders[folder_id].name
        change = {"Created": "created", "Modified": "updated", "Deleted": "deleted"}[kind]
        now = datetime.now(UTC)
        for sub in list(self.subscriptions.values()):
            if sub.mailbox == box.address and sub.folder == folder and sub.expires > now:
                self._queue.put_nowait((sub, _notification(sub, change, graph_id(item_id))))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.policy.validation_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        return self._session

    async def run(self) -> None:
        """Deliver notifications one by one; a subscriber that fails loses that one (Graph
        retries for a while, then drops: the client's sweep catches up)."""
        while True:
            sub, note = await self._queue.get()
            try:
                async with self._http().post(
                    sub.notification_url, json={"value": [note]}, ssl=self.ssl
                ) as resp:
                    ok = 200 <= resp.status < 300
                self.counters["delivered" if ok else "rejected"] += 1
            except (TimeoutError, aiohttp.ClientError, OSError):
                self.counters["failed"] += 1

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None


def _notification(sub: GraphSubscription, change: str, item_id: str) -> Json:
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": sub.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clientState": sub.client_state,
        "changeType": change,
        "resource": f"{sub.resource}/{item_id}",
        "tenantId": "sim-tenant",
        "resourceData": {
            "@odata.type": RESOURCE_TYPES[sub.folder],
            "@odata.id": f"{sub.resource}/{item_id}",
            "id": item_id,
        },
    }
