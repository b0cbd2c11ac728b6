"""Folders a mailbox's owner or a client makes, renames, moves and deletes: the store side,
EWS's CreateFolder, and the `/_sim/` admin routes that play the user in Outlook.

Exchange keeps a folder's id when it is renamed or moved, refuses a second folder of one name
among siblings (ErrorFolderExists), and deleting a folder takes its items and subfolders
with it. The default folders cannot be deleted or moved (ErrorDeleteDistinguishedFolder,
ErrorMoveDistinguishedFolder).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from lxml import etree

from . import soap
from .context import Ctx, OpError, resolve_folder
from .folder_render import FolderShape, render_folder
from .state import SimState
from .store import FOLDER_LAYOUT, Folder, Mailbox, StoredItem, encode_id
from .xmlutil import kids, local, m, sub, t

# The folder class each typed folder element of CreateFolder stands for.
_CLASS_OF = {"ContactsFolder": "IPF.Contact", "CalendarFolder": "IPF.Appointment",
             "TasksFolder": "IPF.Task", "Folder": "IPF.Note"}  # fmt: skip
NAME_MAX = 255


def add_folder(box: Mailbox, parent: Folder, name: str, folder_class: str) -> Folder:
    """A new folder under `parent`; OpError when the name is taken there or unusable."""
    _check_name(box, parent, name)
    box.counter += 1
    key = f"folder.{box.counter}"
    folder = Folder(encode_id("AQMk", box.number, key), key, folder_class, name, parent.id)
    box.folders[folder.id] = folder
    return folder


def _check_name(box: Mailbox, parent: Folder, name: str, moving: Folder | None = None) -> None:
    if not name.strip() or len(name) > NAME_MAX:
        raise OpError("ErrorInvalidFolderName", f"not a folder name: {name!r}")
    for other in box.folders.values():
        same = other.display_name.casefold() == name.casefold()
        if other.parent_id == parent.id and same and other is not moving:
            raise OpError("ErrorFolderExists", "A folder with the specified name already exists.")


def rename(box: Mailbox, folder: Folder, name: str) -> None:
    parent = box.folders[folder.parent_id]
    _check_name(box, parent, name, moving=folder)
    folder.display_name = name


def move(box: Mailbox, folder: Folder, parent: Folder) -> None:
    if folder.name in FOLDER_LAYOUT:
        raise OpError("ErrorMoveDistinguishedFolder", "A default folder cannot be moved.")
    if parent is folder or folder in _ancestors(box, parent):
        raise OpError("ErrorMoveCopyFailed", "A folder cannot move into itself.")
    _check_name(box, parent, folder.display_name, moving=folder)
    folder.parent_id = parent.id


def _ancestors(box: Mailbox, folder: Folder) -> list[Folder]:
    """The folders `folder` is inside of, up to the root."""
    out, current = [], folder
    while current.parent_id in box.folders:
        current = box.folders[current.parent_id]
        out.append(current)
    return out


def delete(box: Mailbox, folder: Folder) -> int:
    """Delete `folder` with its subfolders and items; the number of items it took."""
    if folder.name in FOLDER_LAYOUT:
        raise OpError("ErrorDeleteDistinguishedFolder", "A default folder cannot be deleted.")
    taken = 0
    for child in [f for f in box.folders.values() if f.parent_id == folder.id]:
        taken += delete(box, child)
    for item_id in list(folder.items):
        box.remove(box.items[item_id])
        taken += 1
    del box.folders[folder.id]
    return taken


def move_item(box: Mailbox, item: StoredItem, folder: Folder) -> None:
    """The owner drags an item into another folder: gone from the one, new in the other, its
    id kept (as Graph's immutable ids are) and its change key moved."""
    old = box.folders[item.folder_id]
    old.items.pop(item.id, None)
    old.gone[item.id] = item.created_seq
    old.log.append((box.next_seq(), item.id))
    item.folder_id = folder.id
    folder.items[item.id] = None
    box.touch(item)


# -- EWS CreateFolder -----------------------------------------------------------------------------
def create_folder(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("CreateFolder")
    ref = req.find(f"{m('ParentFolderId')}/*")
    assert ref is not None  # schema-validated: ParentFolderId is required
    for wanted in kids(req, m("Folders")):
        try:
            parent = resolve_folder(ctx, ref)
            name = wanted.findtext(t("DisplayName")) or ""
            folder_class = wanted.findtext(t("FolderClass")) or _CLASS_OF.get(
                local(wanted.tag), "IPF.Note"
            )
            made = add_folder(ctx.box, parent, name, folder_class)
        except OpError as exc:
            sub(soap.error(messages, "CreateFolder", exc.code, str(exc)), m("Folders"))
            continue
        folders = sub(soap.success(messages, "CreateFolder"), m("Folders"))
        folders.append(render_folder(ctx.box, made, FolderShape("IdOnly")))
    return root


# -- the owner in Outlook (admin routes) ----------------------------------------------------------
def folder_json(box: Mailbox, folder: Folder) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.name, "display_name": folder.display_name,
            "folder_class": folder.folder_class, "parent_id": folder.parent_id,
            "items": len(folder.items)}  # fmt: skip


def add_folder_routes(app: web.Application, sim: SimState) -> None:
    api = _FolderAdmin(sim)
    base = "/_sim/mailboxes/{address}/folders"
    app.router.add_get(base, api.listing)
    app.router.add_post(base, api.create)
    app.router.add_patch(base + "/{folder_id}", api.change)
    app.router.add_delete(base + "/{folder_id}", api.remove)
    app.router.add_post("/_sim/mailboxes/{address}/items/{item_id}/move", api.move_item)


def _problem(status: int, title: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status}
    return web.json_response(body, status=status, content_type="application/problem+json")


def find(box: Mailbox, key: str) -> Folder | None:
    """A folder by id or by distinguished name ("contacts")."""
    return box.folders.get(key) or box.folders.get(box.by_name.get(key, ""))


class _FolderAdmin:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def _box(self, request: web.Request) -> Mailbox:
        box = self.sim.mailboxes.get(request.match_info["address"].lower())
        if box is None:
            raise web.HTTPNotFound(text="no such mailbox")
        return box

    async def listing(self, request: web.Request) -> web.Response:
        box = self._box(request)
        return web.json_response({"folders": [folder_json(box, f) for f in box.folders.values()]})

    async def create(self, request: web.Request) -> web.Response:
        """`{"parent": id or name, "display_name": ..., "folder_class"?: ...}`: a folder made
        by the user (the class defaults to the parent's)."""
        box = self._box(request)
        body = await request.json()
        parent = find(box, str(body.get("parent", "")))
        if parent is None:
            return _problem(404, "no such parent folder")
        folder_class = str(body.get("folder_class") or parent.folder_class or "IPF.Note")
        try:
            made = add_folder(box, parent, str(body.get("display_name", "")), folder_class)
        except OpError as exc:
            return _problem(409 if exc.code == "ErrorFolderExists" else 400, str(exc))
        return web.json_response(folder_json(box, made), status=201)

    async def change(self, request: web.Request) -> web.Response:
        """`{"display_name"?: ..., "parent"?: id or name}`: renamed or moved in Outlook; the
        folder keeps its id."""
        box = self._box(request)
        folder = box.folders.get(request.match_info["folder_id"])
        if folder is None:
            return _problem(404, "no such folder")
        body = await request.json()
        try:
            if "display_name" in body:
                rename(box, folder, str(body["display_name"]))
            if "parent" in body:
                parent = find(box, str(body["parent"]))
                if parent is None:
                    return _problem(404, "no such parent folder")
                move(box, folder, parent)
        except OpError as exc:
            return _problem(409, str(exc))
        return web.json_response(folder_json(box, folder))

    async def remove(self, request: web.Request) -> web.Response:
        """Deleted in Outlook, with its items and subfolders (no Deleted Items detour: the
        id is gone either way)."""
        box = self._box(request)
        folder = box.folders.get(request.match_info["folder_id"])
        if folder is None:
            return _problem(404, "no such folder")
        try:
            taken = delete(box, folder)
        except OpError as exc:
            return _problem(409, str(exc))
        return web.json_response({"deleted": folder.id, "items": taken})

    async def move_item(self, request: web.Request) -> web.Response:
        """`{"folder": id or name}`: the item dragged into that folder in Outlook."""
        box = self._box(request)
        item = box.items.get(request.match_info["item_id"])
        target = find(box, str((await request.json()).get("folder", "")))
        if item is None or target is None:
            return _problem(404, "no such item or folder")
        if target.folder_class != box.folders[item.folder_id].folder_class:
            return _problem(409, "the folder holds another kind of item")
        move_item(box, item, target)
        return web.json_response({"id": item.id, "folder_id": target.id})
