"""Contact folders: `GET /users/{id}/contactFolders` lists the folders inside the default
Contacts folder (the simulator's mailboxes have none), `GET .../contactFolders/{id}` reads one,
the default folder included, so that a contact's `parentFolderId` leads somewhere."""

from __future__ import annotations

from urllib.parse import unquote

from ..store import Folder, Mailbox
from .errors import not_found
from .handlers import Env, GReq, GResp
from .ids import ews_id, graph_id
from .view import paged


def _json(folder: Folder) -> dict[str, str]:
    return {"id": graph_id(folder.id), "displayName": folder.display_name,
            "parentFolderId": graph_id(folder.parent_id)}  # fmt: skip


def contact_folders(env: Env, req: GReq, box: Mailbox) -> GResp:
    default = box.folder("contacts")
    children = [_json(f) for f in box.folders.values() if f.parent_id == default.id]
    return GResp(200, *paged(children, req.query, req.headers, f"{req.base}/{req.path}"))


def contact_folder(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    wanted = ews_id(unquote(raw))
    default = box.folder("contacts")
    folder = box.folders.get(wanted)
    if folder is None or (folder is not default and folder.parent_id != default.id):
        raise not_found("contact folder")
    return GResp(200, _json(folder))
