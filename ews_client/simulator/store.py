"""In-memory mailboxes: folders, items as schema-ordered XML, change logs, hidden configs.

Items keep their client-settable properties as one `t:Contact` / `t:CalendarItem` / `t:Task`
element (compact: one Python object per item) and server-managed properties (id, change key,
times) as attributes. Every write bumps the mailbox's change sequence, which feeds change keys,
sync states and streaming notifications alike, whoever wrote (a client or the owner in Outlook).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

# Item element local name -> schema type (for property order) and the item class Exchange sets.
ITEM_TYPES = {"Contact": "ContactItemType", "CalendarItem": "CalendarItemType", "Task": "TaskType"}
ITEM_CLASSES = {"Contact": "IPM.Contact", "CalendarItem": "IPM.Appointment", "Task": "IPM.Task"}
# Distinguished folders a mailbox has: name -> (folder class, display name, parent).
FOLDER_LAYOUT = {
    "root": ("", "Root", ""),
    "msgfolderroot": ("", "Top of Information Store", "root"),
    "inbox": ("IPF.Note", "Inbox", "msgfolderroot"),
    "contacts": ("IPF.Contact", "Contacts", "msgfolderroot"),
    "calendar": ("IPF.Appointment", "Calendar", "msgfolderroot"),
    "tasks": ("IPF.Task", "Tasks", "msgfolderroot"),
}
# Which item element each folder class accepts.
FOLDER_ITEM_KIND = {"IPF.Contact": "Contact", "IPF.Appointment": "CalendarItem", "IPF.Task": "Task"}


def encode_id(prefix: str, *parts: object) -> str:
    raw = ".".join(str(p) for p in parts).encode()
    return prefix + base64.b64encode(raw).decode()


def decode_id(prefix: str, value: str) -> list[str] | None:
    if not value.startswith(prefix):
        return None
    try:
        return base64.b64decode(value[len(prefix) :], validate=True).decode().split(".")
    except (ValueError, UnicodeDecodeError):
        return None


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(slots=True)
class StoredItem:
    id: str
    folder_id: str
    kind: str  # Contact | CalendarItem | Task
    props: etree._Element  # the item element holding settable properties in schema order
    ext: dict[str, tuple[dict[str, str], str | tuple[str, ...]]]  # key -> (URI attrs, value)
    created_seq: int
    last_seq: int
    created: datetime
    modified: datetime
    # Calendar series: InstanceIndex -> overriding props; deleted instance indexes.
    exceptions: dict[int, etree._Element] = field(default_factory=dict)
    deleted_occurrences: set[int] = field(default_factory=set)

    @property
    def change_key(self) -> str:
        return encode_id("CQAAAB", self.last_seq)

    def clone(self) -> StoredItem:
        return StoredItem(
            self.id,
            self.folder_id,
            self.kind,
            copy.deepcopy(self.props),
            dict(self.ext),
            self.created_seq,
            self.last_seq,
            self.created,
            self.modified,
            {k: copy.deepcopy(v) for k, v in self.exceptions.items()},
            set(self.deleted_occurrences),
        )


@dataclass(slots=True)
class Folder:
    id: str
    name: str
    folder_class: str
    display_name: str
    parent_id: str
    items: dict[str, None] = field(default_factory=dict)  # ordered set of item ids
    log: list[tuple[int, str]] = field(default_factory=list)  # (seq, item id) per write
    gone: dict[str, int] = field(default_factory=dict)  # deleted item id -> created_seq

    @property
    def last_seq(self) -> int:
        return self.log[-1][0] if self.log else 0


@dataclass(slots=True)
class UserConfig:
    name: str
    item_id: str
    dictionary: etree._Element | None
    xml_data: str | None
    binary_data: str | None
    last_seq: int


@dataclass(slots=True)
class Snapshot:
    items: dict[str, StoredItem]
    folder_items: dict[str, dict[str, None]]
    configs: dict[tuple[str, str], UserConfig]
    named_props: dict[str, set[str]]


# An event listener: (mailbox, event kind Created|Modified|Deleted, item id, folder id).
Listener = Callable[["Mailbox", str, str, str], None]


@dataclass(slots=True)
class Mailbox:
    address: str
    number: int
    epoch: int = 1
    seq: int = 0
    counter: int = 0
    folders: dict[str, Folder] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)
    items: dict[str, StoredItem] = field(default_factory=dict)
    configs: dict[tuple[str, str], UserConfig] = field(default_factory=dict)
    named_props: dict[str, set[str]] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    @classmethod
    def create(cls, address: str, number: int) -> Mailbox:
        box = cls(address=address.lower(), number=number)
        for name, (folder_class, display, parent) in FOLDER_LAYOUT.items():
            fid = encode_id("AQMk", number, name)
            parent_id = encode_id("AQMk", number, parent) if parent else ""
            box.folders[fid] = Folder(fid, name, folder_class, display, parent_id)
            box.by_name[name] = fid
        return box

    def folder(self, name: str) -> Folder:
        return self.folders[self.by_name[name]]

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def new_item_id(self) -> str:
        self.counter += 1
        return encode_id("AAMk", self.number, self.counter, self.epoch)

    # -- writes: every one goes through here so change keys, logs and events agree --

    def add(self, folder: Folder, kind: str, props: etree._Element) -> StoredItem:
        seq, when = self.next_seq(), now_utc()
        item = StoredItem(self.new_item_id(), folder.id, kind, props, {}, seq, seq, when, when)
        self.items[item.id] = item
        folder.items[item.id] = None
        folder.log.append((seq, item.id))
        self._emit("Created", item.id, folder.id)
        return item

    def touch(self, item: StoredItem) -> None:
        item.last_seq, item.modified = self.next_seq(), now_utc()
        self.folders[item.folder_id].log.append((item.last_seq, item.id))
        self._emit("Modified", item.id, item.folder_id)

    def remove(self, item: StoredItem) -> None:
        folder = self.folders[item.folder_id]
        del self.items[item.id]
        folder.items.pop(item.id, None)
        folder.gone[item.id] = item.created_seq
        folder.log.append((self.next_seq(), item.id))
        self._emit("Deleted", item.id, folder.id)

    def _emit(self, kind: str, item_id: str, folder_id: str) -> None:
        for listener in self.listeners:
            listener(self, kind, item_id, folder_id)

    # -- snapshot / restore (a restore from backup: later sync states become invalid) --

    def snapshot(self) -> Snapshot:
        return Snapshot(
            {k: v.clone() for k, v in self.items.items()},
            {fid: dict(f.items) for fid, f in self.folders.items()},
            {k: copy.deepcopy(v) for k, v in self.configs.items()},
            {k: set(v) for k, v in self.named_props.items()},
        )

    def restore(self, snap: Snapshot) -> None:
        # Copy again so that one snapshot can be restored any number of times.
        self.items = {k: v.clone() for k, v in snap.items.items()}
        self.configs = {k: copy.deepcopy(v) for k, v in snap.configs.items()}
        self.named_props = {k: set(v) for k, v in snap.named_props.items()}
        for fid, folder in self.folders.items():
            folder.items = dict(snap.folder_items.get(fid, {}))
            # The change log holds what a synchronization from scratch lists: the restored items.
            folder.log[:] = sorted((self.items[i].last_seq, i) for i in folder.items)
            folder.gone.clear()
        # A new epoch invalidates every sync state handed out before the restore.
        self.epoch += 1
        self.seq += 1
