"""Streaming subscriptions: events queued per subscription, drained by GetStreamingEvents."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from . import calendar as cal
from .store import Mailbox, now_utc
from .xmlutil import sub, t

_EVENT_TYPES = {"Created": "CreatedEvent", "Modified": "ModifiedEvent", "Deleted": "DeletedEvent"}


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # CreatedEvent | ModifiedEvent | DeletedEvent
    item_id: str
    folder_id: str
    change_key: str
    when: datetime
    watermark: int


@dataclass(slots=True)
class Subscription:
    id: str
    mailbox: str
    folder_ids: frozenset[str]
    event_types: frozenset[str]
    events: list[Event] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    watermark: int = 0


@dataclass(slots=True)
class Hub:
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    generation: int = 0  # bumped by "break all streaming connections"
    broken: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self, box: Mailbox, folders: frozenset[str], types: frozenset[str]) -> str:
        sub_id = secrets.token_urlsafe(24)
        self.subscriptions[sub_id] = Subscription(sub_id, box.address, folders, types)
        if self.on_change not in box.listeners:
            box.listeners.append(self.on_change)
        return sub_id

    def count(self, mailbox: str) -> int:
        return sum(1 for s in self.subscriptions.values() if s.mailbox == mailbox)

    def on_change(self, box: Mailbox, kind: str, item_id: str, folder_id: str) -> None:
        event_type = _EVENT_TYPES[kind]
        item = box.items.get(item_id)
        ck = item.change_key if item is not None else ""
        for s in self.subscriptions.values():
            wanted = folder_id in s.folder_ids and event_type in s.event_types
            if s.mailbox == box.address and wanted:
                s.watermark += 1
                s.events.append(Event(event_type, item_id, folder_id, ck, now_utc(), s.watermark))
                s.wakeup.set()

    def break_all(self, forget: bool) -> None:
        self.generation += 1
        self.broken.set()
        self.broken = asyncio.Event()
        if forget:
            self.subscriptions.clear()


def notification(s: Subscription, events: list[Event]) -> etree._Element:
    node = etree.Element(t("Notification"))
    sub(node, t("SubscriptionId"), s.id)
    sub(node, t("PreviousWatermark"), _watermark(events[0].watermark - 1))
    sub(node, t("MoreEvents"), "false")
    for event in events:
        ev = sub(node, t(event.kind))
        sub(ev, t("Watermark"), _watermark(event.watermark))
        sub(ev, t("TimeStamp"), cal.format_datetime(event.when))
        attrs = {"Id": event.item_id}
        if event.change_key:
            attrs["ChangeKey"] = event.change_key
        sub(ev, t("ItemId"), **attrs)
        sub(ev, t("ParentFolderId"), Id=event.folder_id)
    return node


def _watermark(n: int) -> str:
    return f"AQAAA{n:08d}"
