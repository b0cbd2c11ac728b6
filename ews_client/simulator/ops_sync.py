"""SyncFolderItems: changes of one folder since an opaque sync state, paged."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from lxml import etree

from . import soap, syncstate
from .context import Ctx, OpError, resolve_folder
from .paths import PathError, Shape, parse_shape
from .render import render_item
from .store import Folder
from .xmlutil import kids, m, sub, t

OP = "SyncFolderItems"
_INVALID = "Synchronization state data is corrupt or otherwise invalid."


def sync_folder_items(ctx: Ctx, req: etree._Element, secret: bytes) -> etree._Element:
    root, messages = soap.response_root(OP)
    try:
        _answer(ctx, req, secret, messages)
    except (OpError, PathError) as exc:
        soap.error(messages, OP, exc.code, str(exc))
    return root


def _answer(ctx: Ctx, req: etree._Element, secret: bytes, messages: etree._Element) -> None:
    folder_ref = req.find(f"{m('SyncFolderId')}/*")
    assert folder_ref is not None  # schema-validated: SyncFolderId is required
    try:
        folder = resolve_folder(ctx, folder_ref)
    except OpError as exc:
        raise OpError("ErrorSyncFolderNotFound", str(exc)) from exc
    state = _since(ctx, folder, req.findtext(m("SyncState")), secret)
    ignore = {i.get("Id") for i in kids(req, m("Ignore"))}
    limit = int(req.findtext(m("MaxChangesReturned")) or "1")
    changes = _changes(ctx, folder, state)
    wanted = [c for c in changes if c.item_id not in ignore]
    page = wanted[:limit]
    last = len(page) == len(wanted)
    reached = max(state.seq, folder.last_seq) if last else page[-1].seq
    given = _given(state.given, [c for c in changes if c.seq <= reached])
    shape = parse_shape(req.find(m("ItemShape")))
    msg = soap.success(messages, OP)
    new = syncstate.SyncState(ctx.box.address, folder.id, reached, ctx.box.epoch, given)
    sub(msg, m("SyncState"), syncstate.encode(new, secret))
    sub(msg, m("IncludesLastItemInRange"), "true" if last else "false")
    out = sub(msg, m("Changes"))
    for change in page:
        _emit(ctx, out, change, shape)
    ctx.items += len(page)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int  # the item's latest change in this folder
    item_id: str
    verb: str  # Create | Update | Delete
    number: int  # the item's number in a sync state's given set (its creation sequence)


def _since(ctx: Ctx, folder: Folder, token: str | None, secret: bytes) -> syncstate.SyncState:
    if token is None or not token.strip():
        return syncstate.SyncState(ctx.box.address, folder.id, 0, ctx.box.epoch)
    try:
        state = syncstate.decode(token, secret)
    except syncstate.InvalidState as exc:
        raise OpError("ErrorInvalidSyncStateData", _INVALID) from exc
    valid = (
        state.mailbox == ctx.box.address
        and state.folder_id == folder.id
        and state.epoch == ctx.box.epoch
        and state.seq <= ctx.box.seq
    )
    if not valid:
        raise OpError("ErrorInvalidSyncStateData", _INVALID)
    return state


def _changes(ctx: Ctx, folder: Folder, state: syncstate.SyncState) -> list[Change]:
    """Every item changed after the state, once, in the order of its latest change.

    A state's client knows every item whose latest change it has passed, and the items it
    was given: an item it knows is an Update, another a Create; a deletion is reported only
    for an item it was given (Exchange's sync state keeps the ids given), so a page never
    fills with deletions of items the client never saw."""
    if folder.last_seq <= state.seq:
        return []
    start = bisect_right(folder.log, (state.seq, "\uffff"))
    latest: dict[str, int] = {}
    for seq, item_id in folder.log[start:]:
        latest.pop(item_id, None)
        latest[item_id] = seq
    out = []
    for item_id, seq in latest.items():
        item = ctx.box.items.get(item_id)
        if item is not None:
            verb = "Update" if item.created_seq in state.given else "Create"
            out.append(Change(seq, item_id, verb, item.created_seq))
        elif folder.gone.get(item_id, -1) in state.given:
            out.append(Change(seq, item_id, "Delete", folder.gone[item_id]))
    return out


def _given(before: frozenset[int], covered: list[Change]) -> frozenset[int]:
    """The given set once the changes up to the new state are the client's."""
    given = set(before)
    for change in covered:
        if change.verb == "Delete":
            given.discard(change.number)
        else:
            given.add(change.number)
    return frozenset(given)


def _emit(ctx: Ctx, out: etree._Element, change: Change, shape: Shape) -> None:
    if change.verb == "Delete":
        sub(sub(out, t("Delete")), t("ItemId"), Id=change.item_id)
        return
    item = ctx.box.items[change.item_id]
    sub(out, t(change.verb)).append(render_item(ctx.box, item, shape, listing=True))
