"""Graph resource handlers: one function per route, on the parsed request (pure-ish: they
touch only the in-memory store; `routes.py` owns HTTP, auth, throttling and `$batch`)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from ews_client.models import EntityKind

from .. import calendar as cal
from .. import invitations, meetings
from ..store import Folder, Mailbox, UserConfig, encode_id
from ..writes import Quota
from . import delta, edit, extensions
from .errors import GraphError, bad_request, not_found
from .ids import etag, ews_id, graph_id
from .notify import Notifier
from .view import (
    FOLDER_OF,
    expanded_props,
    item_json,
    occurrence_json,
    paged,
    preferred_page,
)
from .wire import crm_link

Json = dict[str, Any]
# Graph names the derived type of every extension it returns (extension itself is abstract).
_OPEN_EXT = {"@odata.type": "#microsoft.graph.openTypeExtension"}


@dataclass(frozen=True, slots=True)
class GReq:
    method: str
    path: str  # after /v1.0/, without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Json | None
    base: str  # scheme://host/v1.0


@dataclass(slots=True)
class GResp:
    status: int
    body: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Env:
    """What a handler needs besides the request."""

    mailboxes: dict[str, Mailbox]
    quota: Quota
    notifier: Notifier
    secret: bytes
    page_size: int
    delta_max_age_s: float


def mailbox(env: Env, user: str) -> Mailbox:
    box = env.mailboxes.get(unquote(user).lower())
    if box is None:
        raise GraphError(404, "ErrorInvalidUser", "The requested user is invalid.")
    return box


def _folder(box: Mailbox, kind: EntityKind, list_id: str | None) -> Folder:
    """The default folder of the kind, or folder `list_id` (a To Do list, a contact folder)
    when it holds such items: any other id is not found, as a deleted folder's."""
    default = box.folder(FOLDER_OF[kind])
    if list_id is None:
        return default
    folder = box.folders.get(ews_id(unquote(list_id)))
    if folder is None or folder.folder_class != default.folder_class:
        raise not_found("task list" if kind is EntityKind.TASK else "folder")
    return folder


def event_calendar(box: Mailbox, raw: str) -> Folder:
    """The calendar an event (or an occurrence of it) is in; the default one for an id it
    does not know (the caller answers 404)."""
    value = ews_id(unquote(raw))
    occ = cal.parse_occurrence_id(value)
    item = box.items.get(occ[0] if occ else value)
    folder = box.folders.get(item.folder_id) if item is not None else None
    if folder is None or folder.folder_class != "IPF.Appointment":
        return box.folder("calendar")
    return folder


def _item(box: Mailbox, folder: Folder, raw_id: str) -> tuple[Any, int | None]:
    value = ews_id(unquote(raw_id))
    occ = cal.parse_occurrence_id(value)
    if occ is not None and occ[0] in folder.items:
        master = box.items[occ[0]]
        if occ[1] in master.deleted_occurrences or cal.series(master) is None:
            raise not_found("occurrence")
        return master, occ[1]
    if value not in folder.items:
        raise not_found()
    return box.items[value], None


# -- collections and items ----------------------------------------------------------------------
def list_items(env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None) -> GResp:
    folder = _folder(box, kind, lid)
    flt = req.query.get("$filter")
    if flt is not None:
        match = extensions.list_filter(flt, kind)
        hits = [box.items[i] for i in folder.items if match(box.items[i])]
        return GResp(200, {"value": [{"id": graph_id(i.id), "@odata.etag": etag(i)} for i in hits]})
    values = [item_json(box.items[i]) for i in folder.items]
    return GResp(200, *paged(values, req.query, req.headers, f"{req.base}/{req.path}"))


def create_item(env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None) -> GResp:
    if not isinstance(req.body, dict):
        raise bad_request("a JSON object is required")
    item = edit.create(box, _folder(box, kind, lid), kind, req.body, env.quota)
    meetings.ensure_uid(item)
    invitations.graph_created(env.quota, box, item)
    return GResp(201, item_json(item, expand=True))


def get_item(
    env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None, raw: str
) -> GResp:
    item, index = _item(box, _folder(box, kind, lid), raw)
    if index is not None:
        return GResp(200, occurrence_json(box, item, index))
    body = item_json(item, expand="$expand" in req.query, props=expanded_props(req.query))
    opened = extensions.expanded(item, req.query)
    return GResp(200, body if opened is None else {**body, "extensions": opened})


def patch_item(
    env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None, raw: str
) -> GResp:
    item, index = _item(box, _folder(box, kind, lid), raw)
    if not isinstance(req.body, dict):
        raise bad_request("a JSON object is required")
    wanted = req.headers.get("if-match")
    if wanted and wanted != "*" and wanted != etag(item):
        raise GraphError(412, "ErrorIrresolvableConflict", "The item changed (If-Match).")
    invited = invitations.attendees(item.props)
    if index is not None:
        edit.patch_occurrence(box, item, index, req.body)
        invitations.graph_patched(env.quota, box, item, req.body, invited)
        return GResp(200, occurrence_json(box, item, index))
    edit.patch(box, item, req.body, env.quota)
    invitations.graph_patched(env.quota, box, item, req.body, invited)
    return GResp(200, item_json(item, expand=True))


def delete_item(
    env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None, raw: str
) -> GResp:
    item, index = _item(box, _folder(box, kind, lid), raw)
    _remove(env, box, item, index)
    return GResp(204)


def cancel_event(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    """`POST /events/{id}/cancel`: the organizer's cancellation; the event is removed."""
    item, index = _item(box, event_calendar(box, raw), raw)
    if not invitations.organizes(box, item.props):
        message = "Your request can't be completed. "
        raise bad_request(message + "You need to be an organizer to cancel a meeting.")
    _remove(env, box, item, index)
    return GResp(202)


def respond_event(env: Env, req: GReq, box: Mailbox, raw: str, action: str) -> GResp:
    """`POST /events/{id}/accept|tentativelyAccept|decline`: an attendee's answer."""
    item, _ = _item(box, event_calendar(box, raw), raw)
    send = (req.body or {}).get("sendResponse", True) is not False
    try:
        meetings.respond(env.quota, box, item, meetings.GRAPH_ACTIONS[action], send)
    except meetings.MeetingError as exc:
        raise bad_request(f"Your request can't be completed. {exc}") from exc
    return GResp(202)


def _remove(env: Env, box: Mailbox, item: Any, index: int | None) -> None:
    """An item, or one occurrence of a series, goes (with the cancellations Exchange mails)."""
    invitations.graph_deleted(env.quota, box, item)
    if index is not None:
        edit.delete_occurrence(box, item, index)
    else:
        box.remove(item)


def _range(req: GReq) -> tuple[Any, Any]:
    try:
        start = cal.parse_datetime(req.query["startDateTime"])
        end = cal.parse_datetime(req.query["endDateTime"])
    except (KeyError, ValueError, cal.CalendarError) as exc:
        raise bad_request(
            "startDateTime and endDateTime are required", "ErrorInvalidParameter"
        ) from exc
    return start, end


def add_link(env: Env, req: GReq, box: Mailbox, lid: str, raw: str) -> GResp:
    item, _ = _item(box, _folder(box, EntityKind.TASK, lid), raw)
    body = req.body or {}
    crm = crm_link({"linkedResources": [body]})
    if crm is None:
        raise bad_request("applicationName and externalId are required")
    edit.link_task(box, item, crm, env.quota)
    return GResp(201, dict(body, id=graph_id(item.id) + "-crm"))


# -- delta ----------------------------------------------------------------------------------------
def delta_query(env: Env, req: GReq, box: Mailbox, kind: EntityKind, lid: str | None) -> GResp:
    folder = _folder(box, kind, lid)
    link = f"{req.base}/{req.path}"
    text = req.query.get("$skiptoken") or req.query.get("$deltatoken")
    if text is None:
        window = None
        if kind is EntityKind.APPOINTMENT:
            start, end = _range(req)
            window = (cal.format_datetime(start), cal.format_datetime(end))
        token = delta.DeltaToken(box.address, folder.id, 0, box.seq, box.epoch, time.time(),
                                 window=window)  # fmt: skip
    else:
        token = delta.decode(text, env.secret)
        delta.check(token, box, folder, env.delta_max_age_s)
        if "$deltatoken" in req.query:
            token = replace(token, upto=box.seq)
    size = preferred_page(req.headers) or env.page_size
    return GResp(200, delta.page(box, folder, token, link, env.secret, size))


# -- the marker's home: an open extension on the user -------------------------------------------
def _ext_key(box: Mailbox, name: str) -> tuple[str, str]:
    # Stored beside the EWS user configurations, so a mailbox restore restores it too.
    return box.folder("root").id, f"Graph.{name}"


def get_extension(env: Env, req: GReq, box: Mailbox, name: str) -> GResp:
    config = box.configs.get(_ext_key(box, name))
    if config is None or config.xml_data is None:
        raise not_found("extension")
    return GResp(200, dict(json.loads(config.xml_data), id=name, extensionName=name, **_OPEN_EXT))


def _save(box: Mailbox, name: str, values: Json) -> GResp:
    key = _ext_key(box, name)
    values = {k: v for k, v in values.items() if not k.startswith("@") and k != "extensionName"}
    item_id = encode_id("AAMkExt", box.number, box.next_seq())
    box.configs[key] = UserConfig(key[1], item_id, None, json.dumps(values), None, box.seq)
    return GResp(200, dict(values, id=name, extensionName=name, **_OPEN_EXT))


def create_extension(env: Env, req: GReq, box: Mailbox) -> GResp:
    body = req.body or {}
    name = str(body.get("extensionName") or "")
    if not name:
        raise bad_request("extensionName is required")
    if _ext_key(box, name) in box.configs:
        raise GraphError(409, "NameAlreadyExists", "The extension exists.")
    resp = _save(box, name, body)
    return GResp(201, resp.body)


def patch_extension(env: Env, req: GReq, box: Mailbox, name: str) -> GResp:
    config = box.configs.get(_ext_key(box, name))
    if config is None or config.xml_data is None:
        raise not_found("extension")
    return _save(box, name, {**json.loads(config.xml_data), **(req.body or {})})


# -- subscriptions --------------------------------------------------------------------------------
_RESOURCE = re.compile(r"^/?users/([^/]+)/(contacts|events|todo/lists/([^/]+)/tasks)$", re.I)


async def create_subscription(env: Env, req: GReq) -> GResp:
    body = req.body or {}
    found = _RESOURCE.match(str(body.get("resource") or ""))
    if found is None:
        raise bad_request("unsupported resource", "InvalidRequest")
    box = mailbox(env, found.group(1))
    kind = {"contacts": EntityKind.CONTACT, "events": EntityKind.APPOINTMENT}.get(
        found.group(2).lower(), EntityKind.TASK
    )
    folder = _folder(box, kind, found.group(3))
    resource = str(body["resource"]).lstrip("/")
    created = await env.notifier.create(box, folder.name, resource, body)
    return GResp(201, created)
