"""SyncFolderItems: changes of one folder since an opaque sync state, paged."""

from __future__ import annotations

from bisect import bisect_right

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
    since = _since(ctx, folder, req.findtext(m("SyncState")), secret)
    ignore = {i.get("Id") for i in kids(req, m("Ignore"))}
    limit = int(req.findtext(m("MaxChangesReturned")) or "1")
    changes = _changes(folder, since)
    page = [c for c in changes if c[1] not in ignore][:limit]
    last = len(page) == len([c for c in changes if c[1] not in ignore])
    reached = max(since, folder.last_seq) if last else page[-1][0]
    shape = parse_shape(req.find(m("ItemShape")))
    msg = soap.success(messages, OP)
    state = syncstate.SyncState(ctx.box.address, folder.id, reached, ctx.box.epoch)
    sub(msg, m("SyncState"), syncstate.encode(state, secret))
    sub(msg, m("IncludesLastItemInRange"), "true" if last else "false")
    out = sub(msg, m("Changes"))
    for _, item_id in page:
        _emit(ctx, folder, out, item_id, since, shape)
    ctx.items += len(page)


def _since(ctx: Ctx, folder: Folder, token: str | None, secret: bytes) -> int:
    if token is None or not token.strip():
        return 0
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
    return state.seq


def _changes(folder: Folder, since: int) -> list[tuple[int, str]]:
    """(latest seq, item id) of every item written after `since`, in change order."""
    if folder.last_seq <= since:
        return []
    start = bisect_right(folder.log, (since, "\uffff"))
    latest: dict[str, int] = {}
    for seq, item_id in folder.log[start:]:
        latest.pop(item_id, None)
        latest[item_id] = seq
    return [(seq, item_id) for item_id, seq in latest.items()]


def _emit(
    ctx: Ctx, folder: Folder, out: etree._Element, item_id: str, since: int, shape: Shape
) -> None:
    item = ctx.box.items.get(item_id)
    if item is None:
        # Deleted: report it only if the client could have seen it (created before `since`).
        if folder.gone.get(item_id, since + 1) <= since:
            sub(sub(out, t("Delete")), t("ItemId"), Id=item_id)
        return
    verb = "Create" if item.created_seq > since else "Update"
    sub(out, t(verb)).append(render_item(ctx.box, item, shape))
