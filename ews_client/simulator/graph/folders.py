"""Contact folders and To Do lists over Graph.

`GET /users/{id}/contactFolders` lists the folders inside the default Contacts folder, `POST`
there makes one; `.../contactFolders/{id}/childFolders` lists and makes the folders inside any
contact folder; `.../contactFolders/{id}` reads one, the default folder included (also by its
well-known name, `contactFolders('contacts')`), so that a contact's `parentFolderId` leads
somewhere. To Do lists are the task folders: the default list (the Tasks folder) and the
folders inside it, `wellknownListName` "defaultList" and "none"; `POST /todo/lists` makes one.
Calendars likewise: `/calendar` is the default one, `/calendars` lists it with the calendar
folders inside it (a calendar's name is `name`), `POST /calendars` makes one; an event is
reached by its id alone (`/events/{id}`) in whichever calendar it is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..context import OpError
from ..folder_ops import add_folder
from ..store import Folder, Mailbox
from .errors import GraphError, bad_request, not_found
from .handlers import Env, GReq, GResp
from .ids import ews_id, graph_id
from .view import paged

WELL_KNOWN = {"contacts": "contacts"}


def _json(folder: Folder) -> dict[str, str]:
    return {"id": graph_id(folder.id), "displayName": folder.display_name,
            "parentFolderId": graph_id(folder.parent_id)}  # fmt: skip


def contact_folder_of(box: Mailbox, raw: str) -> Folder:
    """A contact folder by id or well-known name; 404 for any other folder."""
    value = unquote(raw).strip("'()")
    if value.lower() in WELL_KNOWN:
        return box.folder(WELL_KNOWN[value.lower()])
    folder = box.folders.get(ews_id(value))
    if folder is None or folder.folder_class != "IPF.Contact":
        raise not_found("contact folder")
    return folder


def _children(box: Mailbox, parent: Folder) -> list[dict[str, str]]:
    found = [f for f in box.folders.values() if f.parent_id == parent.id]
    return [_json(f) for f in sorted(found, key=lambda f: f.display_name.lower())]


def contact_folders(env: Env, req: GReq, box: Mailbox) -> GResp:
    children = _children(box, box.folder("contacts"))
    return GResp(200, *paged(children, req.query, req.headers, f"{req.base}/{req.path}"))


def contact_folder(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    return GResp(200, _json(contact_folder_of(box, raw)))


def child_folders(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    children = _children(box, contact_folder_of(box, raw))
    return GResp(200, *paged(children, req.query, req.headers, f"{req.base}/{req.path}"))


def _create(box: Mailbox, parent: Folder, body: Any, folder_class: str) -> Folder:
    if not isinstance(body, dict) or not isinstance(body.get("displayName"), str):
        raise bad_request("displayName is required", "ErrorInvalidParameter")
    try:
        return add_folder(box, parent, body["displayName"], folder_class)
    except OpError as exc:
        status = 409 if exc.code == "ErrorFolderExists" else 400
        raise GraphError(status, exc.code, str(exc)) from exc


def create_contact_folder(env: Env, req: GReq, box: Mailbox) -> GResp:
    return GResp(201, _json(_create(box, box.folder("contacts"), req.body, "IPF.Contact")))


def create_child_folder(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    parent = contact_folder_of(box, raw)
    return GResp(201, _json(_create(box, parent, req.body, "IPF.Contact")))


# -- To Do lists ----------------------------------------------------------------------------------
def _list_json(box: Mailbox, folder: Folder) -> dict[str, Any]:
    default = folder is box.folder("tasks")
    return {"id": graph_id(folder.id), "displayName": folder.display_name,
            "wellknownListName": "defaultList" if default else "none",
            "isOwner": True, "isShared": False}  # fmt: skip


def task_lists(box: Mailbox) -> list[Folder]:
    default = box.folder("tasks")
    others = [f for f in box.folders.values() if f.parent_id == default.id
              and f.folder_class == "IPF.Task"]  # fmt: skip
    return [default, *sorted(others, key=lambda f: f.display_name.lower())]


def todo_lists(env: Env, req: GReq, box: Mailbox) -> GResp:
    values = [_list_json(box, f) for f in task_lists(box)]
    return GResp(200, *paged(values, req.query, req.headers, f"{req.base}/{req.path}"))


def todo_list(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    wanted = ews_id(unquote(raw))
    for folder in task_lists(box):
        if folder.id == wanted:
            return GResp(200, _list_json(box, folder))
    raise not_found("task list")


def create_todo_list(env: Env, req: GReq, box: Mailbox) -> GResp:
    made = _create(box, box.folder("tasks"), req.body, "IPF.Task")
    return GResp(201, _list_json(box, made))


# -- calendars ------------------------------------------------------------------------------------
def _calendar_json(box: Mailbox, folder: Folder) -> dict[str, Any]:
    default = folder is box.folder("calendar")
    return {"id": graph_id(folder.id), "name": folder.display_name, "isDefaultCalendar": default,
            "canEdit": True, "owner": {"address": box.address, "name": box.address}}  # fmt: skip


def user_calendars(box: Mailbox) -> list[Folder]:
    default = box.folder("calendar")
    others = [f for f in box.folders.values() if f.parent_id == default.id
              and f.folder_class == "IPF.Appointment"]  # fmt: skip
    return [default, *sorted(others, key=lambda f: f.display_name.lower())]


def calendar_of(box: Mailbox, raw: str) -> Folder:
    wanted = ews_id(unquote(raw))
    for folder in user_calendars(box):
        if folder.id == wanted:
            return folder
    raise not_found("calendar")


def default_calendar(env: Env, req: GReq, box: Mailbox) -> GResp:
    return GResp(200, _calendar_json(box, box.folder("calendar")))


def calendars(env: Env, req: GReq, box: Mailbox) -> GResp:
    values = [_calendar_json(box, f) for f in user_calendars(box)]
    return GResp(200, *paged(values, req.query, req.headers, f"{req.base}/{req.path}"))


def calendar(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    return GResp(200, _calendar_json(box, calendar_of(box, raw)))


def create_calendar(env: Env, req: GReq, box: Mailbox) -> GResp:
    body = req.body
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise bad_request("name is required", "ErrorInvalidParameter")
    made = _create(box, box.folder("calendar"), {"displayName": body["name"]}, "IPF.Appointment")
    return GResp(201, _calendar_json(box, made))
