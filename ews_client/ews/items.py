"""GetItem, CreateItem, UpdateItem, DeleteItem: pure builders and parsers.

Batch operations answer one response message per id, in request order; a per-message error
is returned in place (the rest of the batch is good), not raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from ews_client.errors import ExchangeError, ProtocolError, TransientError
from ews_client.ews.calendar import OccurrenceInfo, occurrence_from_xml, read_occurrence_infos
from ews_client.ews.convert import ITEM_TAGS, item_from_xml
from ews_client.ews.ids import (
    FolderRef,
    OccurrenceRef,
    PropertyPath,
    add_folder_id,
    add_item_id,
    add_item_shape,
    add_path,
    read_item_ref,
)
from ews_client.ews.itemxml import FieldUpdate
from ews_client.ews.soap import envelope, message_error, response_messages
from ews_client.ews.xml import Element, m, new, sub, t
from ews_client.models import Item, ItemRef, ModifiedOccurrence

T = TypeVar("T")
AnyItemId = ItemRef | OccurrenceRef
DeleteType = Literal["HardDelete", "SoftDelete", "MoveToDeletedItems"]


@dataclass(frozen=True, slots=True)
class FetchedItem:
    """An item read in full; for a recurring master, the ids of its modified occurrences."""

    item: Item
    occurrences: tuple[OccurrenceInfo, ...] = ()


def build_get_item(mailbox: str, ids: Sequence[AnyItemId], props: Sequence[PropertyPath]) -> bytes:
    """GetItem with `IdOnly` + exactly the properties named (plain-text bodies)."""
    req = new(m("GetItem"))
    add_item_shape(req, m("ItemShape"), props, text_body=True)
    arr = sub(req, m("ItemIds"))
    for ref in ids:
        add_item_id(arr, ref)
    return envelope(req, mailbox)


def _items_of(msg: Element) -> list[Element]:
    items = next(msg.iterchildren(m("Items")), None)
    if items is None:
        raise ProtocolError("GetItem response message without Items")
    return [el for el in items if el.tag in ITEM_TAGS]


def parse_get_item(data: bytes) -> list[FetchedItem | ExchangeError]:
    """One entry per requested id: the item, or the error for that id."""
    out: list[FetchedItem | ExchangeError] = []
    for msg in response_messages(data, "GetItem"):
        err = message_error(msg)
        if err is not None:
            out.append(err)
            continue
        for el in _items_of(msg):
            occ = tuple(read_occurrence_infos(el)) if el.tag == t("CalendarItem") else ()
            out.append(FetchedItem(item_from_xml(el), occ))
    return out


def parse_get_occurrences(data: bytes) -> list[ModifiedOccurrence | ExchangeError]:
    """GetItem answer for occurrence ids: subject/location/notes of each exception."""
    out: list[ModifiedOccurrence | ExchangeError] = []
    for msg in response_messages(data, "GetItem"):
        err = message_error(msg)
        if err is not None:
            out.append(err)
            continue
        out.extend(occurrence_from_xml(el) for el in _items_of(msg))
    return out


def build_create_item(
    mailbox: str, folder: FolderRef, items: Sequence[Element], *, calendar: bool = False
) -> bytes:
    """CreateItem SaveOnly; calendar items never send invitations (CRM-owned copies)."""
    attrs = {"MessageDisposition": "SaveOnly"}
    if calendar:
        attrs["SendMeetingInvitations"] = "SendToNone"
    req = new(m("CreateItem"), **attrs)
    add_folder_id(sub(req, m("SavedItemFolderId")), folder)
    arr = sub(req, m("Items"))
    for item in items:
        arr.append(item)
    return envelope(req, mailbox)


def _refs(data: bytes, operation: str) -> list[ItemRef | ExchangeError]:
    out: list[ItemRef | ExchangeError] = []
    for msg in response_messages(data, operation):
        err = message_error(msg)
        if err is not None:
            out.append(err)
            continue
        items = next(msg.iterchildren(m("Items")), None)
        first = None if items is None or len(items) == 0 else items[0]
        item_id = None if first is None else next(first.iterchildren(t("ItemId")), None)
        out.append(read_item_ref(item_id))
    return out


def parse_create_item(data: bytes) -> list[ItemRef | ExchangeError]:
    """The new id + change key of each created item (or its error)."""
    return _refs(data, "CreateItem")


@dataclass(frozen=True, slots=True)
class ItemChange:
    ref: AnyItemId
    updates: tuple[FieldUpdate, ...]


def _add_update(parent: Element, upd: FieldUpdate) -> None:
    if upd.item is None:
        add_path(sub(parent, t("DeleteItemField")), upd.path)
        return
    el = sub(parent, t("SetItemField"))
    add_path(el, upd.path)
    el.append(upd.item)


def build_update_item(
    mailbox: str, changes: Sequence[ItemChange], *, calendar: bool = False
) -> bytes:
    """UpdateItem with AutoResolve: a stale change key fails instead of overwriting."""
    attrs = {"ConflictResolution": "AutoResolve", "MessageDisposition": "SaveOnly"}
    if calendar:
        attrs["SendMeetingInvitationsOrCancellations"] = "SendToNone"
    req = new(m("UpdateItem"), **attrs)
    arr = sub(req, m("ItemChanges"))
    for change in changes:
        ch = sub(arr, t("ItemChange"))
        add_item_id(ch, change.ref)
        ups = sub(ch, t("Updates"))
        for upd in change.updates:
            _add_update(ups, upd)
    return envelope(req, mailbox)


def parse_update_item(data: bytes) -> list[ItemRef | ExchangeError]:
    """The new change key of each updated item (or its error)."""
    return _refs(data, "UpdateItem")


def build_delete_item(
    mailbox: str,
    ids: Sequence[AnyItemId],
    *,
    delete_type: DeleteType = "HardDelete",
) -> bytes:
    """DeleteItem; no cancellations are sent and a task series goes as a whole."""
    req = new(
        m("DeleteItem"),
        DeleteType=delete_type,
        SendMeetingCancellations="SendToNone",
        AffectedTaskOccurrences="AllOccurrences",
    )
    arr = sub(req, m("ItemIds"))
    for ref in ids:
        add_item_id(arr, ref)
    return envelope(req, mailbox)


def parse_delete_item(data: bytes) -> list[ExchangeError | None]:
    """None per deleted id, or that id's error."""
    return [message_error(msg) for msg in response_messages(data, "DeleteItem")]


class BatchTooLarge(ExchangeError):
    """GetItem answered ErrorTimeoutExpired: ask again with fewer items
    (ews_client/PROTOCOL_NOTES.md, "SyncFolderItems"). Deliberately not a TransientError: the
    throttle would retry the same batch, where the caller must split it."""


def raise_retryable(results: Sequence[object]) -> None:
    """Per-message throttling inside a batch answer makes the whole request retryable."""
    for res in results:
        if isinstance(res, TransientError):
            if res.code == "ErrorTimeoutExpired":
                raise BatchTooLarge("GetItem timed out: fewer items", code="ErrorTimeoutExpired")
            raise res


def successes(results: Sequence[T | ExchangeError]) -> list[T]:
    """The results of a batch in which every entry must have succeeded."""
    out = []
    for res in results:
        if isinstance(res, ExchangeError):
            raise res
        out.append(res)
    return out
