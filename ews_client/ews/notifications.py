"""Subscribe (streaming), GetStreamingEvents, Unsubscribe: pure builders, parsers, and a
splitter for the long-lived streaming answer.

A GetStreamingEvents answer is one HTTP response that carries a sequence of SOAP envelopes,
each sent when events happen (or as a keep-alive); the last one reports
`ConnectionStatus` Closed. `EnvelopeSplitter` cuts the byte stream into those documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ews_client.errors import ExchangeError, ProtocolError
from ews_client.ews.ids import FolderRef, add_folder_id
from ews_client.ews.soap import envelope, message_error, response_messages, single_message
from ews_client.ews.xml import Element, m, new, parse_dt, sub, t

EventKind = Literal["created", "modified", "deleted", "moved", "copied", "new_mail", "status"]
_EVENTS: dict[str, EventKind] = {
    t("CreatedEvent"): "created",
    t("ModifiedEvent"): "modified",
    t("DeletedEvent"): "deleted",
    t("MovedEvent"): "moved",
    t("CopiedEvent"): "copied",
    t("NewMailEvent"): "new_mail",
    t("StatusEvent"): "status",
}
DEFAULT_EVENT_TYPES = ("CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent")


def build_subscribe(
    mailbox: str, folders: Sequence[FolderRef], event_types: Sequence[str] = DEFAULT_EVENT_TYPES
) -> bytes:
    req = new(m("Subscribe"))
    ssr = sub(req, m("StreamingSubscriptionRequest"))
    arr = sub(ssr, t("FolderIds"))
    for folder in folders:
        add_folder_id(arr, folder)
    types = sub(ssr, t("EventTypes"))
    for name in event_types:
        sub(types, t("EventType"), name)
    return envelope(req, mailbox)


def parse_subscribe(data: bytes) -> str:
    """The subscription id."""
    sid = single_message(data, "Subscribe").findtext(m("SubscriptionId"))
    if not sid:
        raise ProtocolError("Subscribe response without SubscriptionId")
    return sid


def build_unsubscribe(mailbox: str, subscription_id: str) -> bytes:
    req = new(m("Unsubscribe"))
    sub(req, m("SubscriptionId"), subscription_id)
    return envelope(req, mailbox)


def parse_unsubscribe(data: bytes) -> None:
    single_message(data, "Unsubscribe")


def build_get_streaming_events(
    mailbox: str | None, subscription_ids: Sequence[str], timeout_minutes: int = 30
) -> bytes:
    """One long-lived connection for up to 200 subscriptions (ConnectionTimeout 1..30 min)."""
    if not 1 <= len(subscription_ids) <= 200:
        raise ValueError("GetStreamingEvents carries 1..200 subscription ids")
    if not 1 <= timeout_minutes <= 30:
        raise ValueError("ConnectionTimeout must be within 1..30 minutes")
    req = new(m("GetStreamingEvents"))
    arr = sub(req, m("SubscriptionIds"))
    for sid in subscription_ids:
        sub(arr, t("SubscriptionId"), sid)
    sub(req, m("ConnectionTimeout"), str(timeout_minutes))
    return envelope(req, mailbox)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    item_id: str | None = None
    folder_id: str | None = None
    parent_folder_id: str | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    subscription_id: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """One envelope of the stream: notifications, dead subscriptions, whether it was the last."""

    notifications: tuple[Notification, ...] = ()
    error_subscription_ids: tuple[str, ...] = ()
    closed: bool = False
    errors: tuple[ExchangeError, ...] = field(default=())


def _event(el: Element, kind: EventKind) -> Event:
    item = el.find(t("ItemId"))
    folder = el.find(t("FolderId"))
    parent = el.find(t("ParentFolderId"))
    stamp = el.findtext(t("TimeStamp"))
    return Event(
        kind=kind,
        item_id=None if item is None else item.get("Id"),
        folder_id=None if folder is None else folder.get("Id"),
        parent_folder_id=None if parent is None else parent.get("Id"),
        timestamp=parse_dt(stamp) if stamp else None,
    )


def _notification(el: Element) -> Notification:
    sid = el.findtext(t("SubscriptionId"))
    if not sid:
        raise ProtocolError("notification without SubscriptionId")
    events = tuple(_event(ev, _EVENTS[ev.tag]) for ev in el if ev.tag in _EVENTS)
    return Notification(sid, events)


def parse_streaming_events(doc: bytes) -> StreamBatch:
    """Parse one envelope of a GetStreamingEvents stream."""
    notes: list[Notification] = []
    dead: list[str] = []
    errors: list[ExchangeError] = []
    closed = False
    for msg in response_messages(doc, "GetStreamingEvents"):
        err = message_error(msg)
        if err is not None:
            errors.append(err)
        container = msg.find(m("Notifications"))
        # NonEmptyArrayOfNotificationsType holds t:Notification elements.
        for el in [] if container is None else container:
            if el.tag in (t("Notification"), m("Notification")):
                notes.append(_notification(el))
        bad = msg.find(m("ErrorSubscriptionIds"))
        dead.extend(s.text or "" for s in ([] if bad is None else bad))
        closed = closed or msg.findtext(m("ConnectionStatus")) == "Closed"
    return StreamBatch(tuple(notes), tuple(dead), closed, tuple(errors))


_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?Envelope\s*>")


class EnvelopeSplitter:
    """Cut a byte stream into complete SOAP envelopes, with a cap on a pending document."""

    def __init__(self, max_document: int = 4 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_document

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf.extend(chunk)
        docs = []
        while match := _END.search(self._buf):
            docs.append(bytes(self._buf[: match.end()]).strip())
            del self._buf[: match.end()]
        if len(self._buf) > self._max:
            raise ProtocolError("streaming document exceeds the size cap")
        return docs

    def pending(self) -> bool:
        """True when bytes of an unfinished document remain (a truncated stream)."""
        return bool(bytes(self._buf).strip())
