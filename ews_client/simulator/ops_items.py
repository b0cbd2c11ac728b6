"""GetItem, CreateItem, UpdateItem, DeleteItem."""

from __future__ import annotations

import copy
import uuid

from lxml import etree

from . import calendar as cal
from . import invitations, meetings, soap
from .context import Ctx, OpError, resolve_folder, resolve_item
from .paths import PathError, parse_shape
from .render import render_item, render_occurrence
from .store import FOLDER_ITEM_KIND, ITEM_TYPES, StoredItem, now_utc
from .writes import SERIES_FIELDS, WriteError, apply_change, new_props
from .xmlutil import insert_ordered, kids, local, m, sub, t

_DEFAULT_FOLDER = {"Contact": "contacts", "CalendarItem": "calendar", "Task": "tasks"}
_ERRORS = (OpError, WriteError, PathError, cal.CalendarError, meetings.MeetingError)


def _fail(messages: etree._Element, op: str, exc: Exception) -> None:
    msg = soap.error(messages, op, getattr(exc, "code", "ErrorInvalidRequest"), str(exc))
    if op != "DeleteItem":
        sub(msg, m("Items"))


def get_item(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("GetItem")
    shape = parse_shape(req.find(m("ItemShape")))
    for ref in kids(req, m("ItemIds")):
        try:
            item, index = resolve_item(ctx, ref)
            rendered = (
                render_item(ctx.box, item, shape)
                if index is None
                else render_occurrence(ctx.box, item, index, shape)
            )
        except _ERRORS as exc:
            _fail(messages, "GetItem", exc)
            continue
        ctx.items += 1
        sub(soap.success(messages, "GetItem"), m("Items")).append(rendered)
    return root


def create_item(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("CreateItem")
    target = req.find(f"{m('SavedItemFolderId')}/*")
    for element in kids(req, m("Items")):
        if local(element.tag) in meetings.EWS_RESPONSE_OBJECTS:
            _respond(ctx, req, element, messages)
            continue
        try:
            item = _create_one(ctx, req, element, target)
        except _ERRORS as exc:
            _fail(messages, "CreateItem", exc)
            continue
        ctx.items += 1
        out = sub(sub(soap.success(messages, "CreateItem"), m("Items")), element.tag)
        sub(out, t("ItemId"), Id=item.id, ChangeKey=item.change_key)
    return root


def _respond(
    ctx: Ctx, req: etree._Element, element: etree._Element, messages: etree._Element
) -> None:
    """An attendee's AcceptItem / TentativelyAcceptItem / DeclineItem of its copy; sent unless
    the request only saves it (MessageDisposition SaveOnly)."""
    ref = element.find(t("ReferenceItemId"))
    try:
        if ref is None:
            raise OpError("ErrorInvalidRequest", "ReferenceItemId required")
        item, _ = resolve_item(ctx, ref)
        response = meetings.EWS_RESPONSE_OBJECTS[local(element.tag)]
        send = req.get("MessageDisposition", "SendAndSaveCopy") != "SaveOnly"
        meetings.respond(ctx.quota, ctx.box, item, response, send)
    except _ERRORS as exc:
        _fail(messages, "CreateItem", exc)
        return
    ctx.items += 1
    sub(soap.success(messages, "CreateItem"), m("Items"))


def _create_one(
    ctx: Ctx, req: etree._Element, element: etree._Element, target: etree._Element | None
) -> StoredItem:
    kind = local(element.tag)
    if kind not in ITEM_TYPES:
        raise OpError("ErrorInvalidItemForOperationCreateItem", f"{kind} is not supported")
    if kind == "CalendarItem" and req.get("SendMeetingInvitations") is None:
        raise OpError("ErrorSendMeetingInvitationsRequired", "SendMeetingInvitations required")
    folder = (
        resolve_folder(ctx, target) if target is not None else ctx.box.folder(_DEFAULT_FOLDER[kind])
    )
    if FOLDER_ITEM_KIND.get(folder.folder_class) != kind:
        raise OpError("ErrorInvalidItemForOperationCreateItem", "wrong folder for this item")
    props, ext = new_props(element, ctx.box, ctx.quota)
    if kind == "CalendarItem" and props.find(t("UID")) is None:
        uid = etree.Element(t("UID"))
        uid.text = uuid.uuid4().hex.upper()
        insert_ordered(props, uid, ITEM_TYPES[kind])
    probe = StoredItem("", folder.id, kind, props, ext, 0, 0, now_utc(), now_utc())
    if kind == "CalendarItem":
        cal.iana_zone(props)
        cal.validate_series(probe)
    item = ctx.box.add(folder, kind, props)
    item.ext = ext
    invitations.ews_created(ctx.quota, ctx.box, item, req.get("SendMeetingInvitations"))
    return item


def update_item(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("UpdateItem")
    policy = req.get("ConflictResolution", "AutoResolve")
    for change in kids(req, m("ItemChanges")):
        try:
            item, index = _update_one(ctx, req, change, policy)
        except _ERRORS as exc:
            _fail(messages, "UpdateItem", exc)
            continue
        ctx.items += 1
        msg = soap.success(messages, "UpdateItem")
        out = sub(sub(msg, m("Items")), t(item.kind))
        item_id = item.id if index is None else cal.occurrence_id(item.id, index)
        sub(out, t("ItemId"), Id=item_id, ChangeKey=item.change_key)
        sub(sub(msg, m("ConflictResults")), t("Count"), "0")
    return root


def _update_one(
    ctx: Ctx, req: etree._Element, change: etree._Element, policy: str
) -> tuple[StoredItem, int | None]:
    ref = change[0]
    item, index = resolve_item(ctx, ref)
    key = ref.get("ChangeKey")
    if policy != "AlwaysOverwrite":
        if key is None:
            raise OpError("ErrorChangeKeyRequiredForWriteOperations", "ChangeKey required")
        if key != item.change_key:
            # A stale change key: the item changed since the client read it.
            raise OpError("ErrorIrresolvableConflict", "The change key is out of date.")
    if item.kind == "CalendarItem" and req.get("SendMeetingInvitationsOrCancellations") is None:
        raise OpError("ErrorSendMeetingInvitationsOrCancellationsRequired", "attribute required")
    work = copy.deepcopy(item.props if index is None else _exception(item, index))
    ext_before = dict(item.ext)
    invited = invitations.attendees(item.props)
    try:
        for update in kids(change, t("Updates")):
            if index is not None:
                _check_occurrence_path(update[0])
            apply_change(ctx.box, item, update, ctx.quota, work)
        _commit(item, index, work)
    except _ERRORS:
        item.ext = ext_before
        raise
    ctx.box.touch(item)
    mode = req.get("SendMeetingInvitationsOrCancellations")
    invitations.ews_updated(ctx.quota, ctx.box, item, mode, invited)
    return item, index


def _check_occurrence_path(path: etree._Element) -> None:
    # Extended properties are kept per item, not per occurrence, by the simulator.
    name = path.get("FieldURI", "").split(":")[-1]
    if local(path.tag) != "FieldURI" or name in SERIES_FIELDS:
        what = name or local(path.tag)
        raise OpError("ErrorInvalidPropertyForOperation", f"{what} cannot be set on an occurrence")


def _exception(item: StoredItem, index: int) -> etree._Element:
    return item.exceptions.get(index, etree.Element(t("CalendarItem")))


def _commit(item: StoredItem, index: int | None, work: etree._Element) -> None:
    if index is not None:
        _commit_occurrence(item, index, work)
        return
    old, item.props = item.props, work
    if item.kind == "CalendarItem":
        try:
            cal.iana_zone(work)
            cal.validate_series(item)
        except cal.CalendarError:
            item.props = old
            raise
        if work.find(t("Recurrence")) is None:
            item.exceptions.clear()
            item.deleted_occurrences.clear()


def _commit_occurrence(item: StoredItem, index: int, work: etree._Element) -> None:
    """Store one occurrence's changes; its zone must be known and its end not before its
    start (ErrorCalendarEndDateIsEarlierThanStartDate)."""
    cal.iana_zone(work)
    old = item.exceptions.get(index)
    item.exceptions[index] = work
    _, start, end = cal.occurrence_window(item, index)
    if end < start:
        if old is None:
            del item.exceptions[index]
        else:
            item.exceptions[index] = old
        raise cal.CalendarError("ErrorCalendarEndDateIsEarlierThanStartDate", "End before Start")


def delete_item(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("DeleteItem")
    for ref in kids(req, m("ItemIds")):
        try:
            _delete_one(ctx, req, ref)
        except _ERRORS as exc:
            _fail(messages, "DeleteItem", exc)
            continue
        ctx.items += 1
        soap.success(messages, "DeleteItem")
    return root


def _delete_one(ctx: Ctx, req: etree._Element, ref: etree._Element) -> None:
    item, index = resolve_item(ctx, ref)
    if item.kind == "CalendarItem" and req.get("SendMeetingCancellations") is None:
        raise OpError("ErrorSendMeetingCancellationsRequired", "SendMeetingCancellations required")
    if item.kind == "Task" and req.get("AffectedTaskOccurrences") is None:
        raise OpError("ErrorAffectedTaskOccurrencesRequired", "AffectedTaskOccurrences required")
    invitations.ews_deleted(ctx.quota, ctx.box, item, req.get("SendMeetingCancellations"))
    if index is None:
        ctx.box.remove(item)
        return
    item.exceptions.pop(index, None)
    item.deleted_occurrences.add(index)
    ctx.box.touch(item)
