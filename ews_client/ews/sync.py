"""SyncFolderItems: pure builder and parser of one page of changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ews_client.errors import ExchangeError, ProtocolError
from ews_client.ews.convert import item_from_xml
from ews_client.ews.ids import (
    FolderRef,
    PropertyPath,
    add_folder_id,
    add_item_shape,
    read_item_ref,
)
from ews_client.ews.soap import envelope, single_message
from ews_client.ews.summary import listed_in_full
from ews_client.ews.xml import Element, m, new, parse_bool, sub, t
from ews_client.models import Item, ItemRef

ChangeKind = Literal["create", "update", "delete", "read_flag"]
_KINDS: dict[str, ChangeKind] = {
    t("Create"): "create",
    t("Update"): "update",
    t("Delete"): "delete",
    t("ReadFlagChange"): "read_flag",
}
MAX_CHANGES = 512  # MaxSyncChangesReturnedType: 1..512


@dataclass(frozen=True, slots=True)
class SyncChange:
    kind: ChangeKind
    ref: ItemRef
    listed: Item | None = None  # the whole item, when the page carried all of it


@dataclass(frozen=True, slots=True)
class SyncPage:
    sync_state: str
    includes_last: bool
    changes: tuple[SyncChange, ...]


def build_sync_folder_items(
    mailbox: str,
    folder: FolderRef,
    sync_state: str | None,
    max_changes: int = MAX_CHANGES,
    props: Sequence[PropertyPath] = (),
) -> bytes:
    """Children in schema order: ItemShape, SyncFolderId, SyncState (omitted on the first
    sync), MaxChangesReturned. IdOnly plus `props`: what a listing can return
    (ews_client/ews/summary.py; never a body, ews_client/PROTOCOL_NOTES.md, "SyncFolderItems")."""
    if not 1 <= max_changes <= MAX_CHANGES:
        raise ValueError("MaxChangesReturned must be within 1..512")
    req = new(m("SyncFolderItems"))
    add_item_shape(req, m("ItemShape"), props)
    add_folder_id(sub(req, m("SyncFolderId")), folder)
    if sync_state:
        sub(req, m("SyncState"), sync_state)
    sub(req, m("MaxChangesReturned"), str(max_changes))
    return envelope(req, mailbox)


def parse_sync_folder_items(data: bytes) -> SyncPage:
    msg = single_message(data, "SyncFolderItems")
    state = msg.findtext(m("SyncState"))
    last = msg.findtext(m("IncludesLastItemInRange"))
    if state is None or last is None:
        raise ProtocolError("SyncFolderItems response without SyncState/IncludesLastItemInRange")
    changes = []
    container = msg.find(m("Changes"))
    for ch in [] if container is None else container:
        kind = _KINDS.get(ch.tag)
        if kind is None:
            raise ProtocolError(f"unexpected sync change {ch.tag}")
        # Create/Update hold an item element with its ItemId; Delete/ReadFlagChange hold ItemId.
        id_el = ch.find(t("ItemId"))
        item_el = ch[0] if id_el is None and len(ch) else None
        if item_el is not None:
            id_el = item_el.find(t("ItemId"))
        changes.append(SyncChange(kind, read_item_ref(id_el), _listed(kind, item_el)))
    return SyncPage(state, parse_bool(last), tuple(changes))


def _listed(kind: ChangeKind, el: Element | None) -> Item | None:
    """The item a page carried whole, or None: it is then read with GetItem, which also
    answers for an item the page could not be read from (one item never fails the page)."""
    if kind not in ("create", "update") or el is None or not listed_in_full(el):
        return None
    try:
        return item_from_xml(el)
    except (ExchangeError, ValueError):
        return None


def coalesce(changes: list[SyncChange]) -> tuple[list[ItemRef], list[str]]:
    """Net effect of a run of pages: ids to fetch (created/updated, still present) and ids
    deleted. A later change of an id replaces an earlier one; read-flag changes are ignored."""
    last: dict[str, SyncChange] = {}
    for change in changes:
        if change.kind == "read_flag":
            continue
        last.pop(change.ref.id, None)  # keep the dict in order of the latest change
        last[change.ref.id] = change
    upserts = [c.ref for c in last.values() if c.kind != "delete"]
    deletes = [c.ref.id for c in last.values() if c.kind == "delete"]
    return upserts, deletes
