"""Graph writes onto the stored EWS XML: JSON -> model (the Graph client's parser) -> EWS
XML (the EWS client's writer) -> the same store writes the EWS operations use, so change
keys, sync states, delta tokens and notifications move alike whoever wrote."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from ews_client.errors import ExchangeError
from ews_client.ews.convert import item_to_xml, item_updates
from ews_client.ews.ids import add_path
from ews_client.graph.convert import MODEL_FIELDS, item_from_json
from ews_client.graph.wire import parse_dtz, read_body
from ews_client.models import EntityKind, Item

from .. import calendar as cal
from ..store import Folder, Mailbox, StoredItem, now_utc
from ..writes import Quota, WriteError, apply_change, new_props
from ..xmlutil import insert_ordered, t
from .errors import GraphError, bad_request
from .view import CRM_ATTRS, CRM_KEY, ENTITY_OF, full_json, model_of

Json = dict[str, Any]
KIND_ELEMENT = {EntityKind.CONTACT: "Contact", EntityKind.APPOINTMENT: "CalendarItem",
                EntityKind.TASK: "Task"}  # fmt: skip
# Fields a Graph resource does not carry (see ews_client.graph: events, tasks).
NOT_WRITTEN = {
    EntityKind.CONTACT: frozenset(),
    EntityKind.APPOINTMENT: frozenset(
        {"is_meeting", "modified_occurrences", "deleted_occurrences"}
    ),
    EntityKind.TASK: frozenset({"crm_id", "percent_complete"}),
}


def _model(kind: EntityKind, body: Json) -> Item:
    try:
        return item_from_json(kind, body)
    except (ExchangeError, ValueError, TypeError, KeyError) as exc:
        raise bad_request(f"invalid {kind.value}: {exc}", "ErrorInvalidProperty") from exc


def _xml(model: Item) -> etree._Element:
    try:
        return item_to_xml(model)
    except ExchangeError as exc:
        raise bad_request(str(exc), "ErrorInvalidProperty") from exc


def create(box: Mailbox, folder: Folder, kind: EntityKind, body: Json, quota: Quota) -> StoredItem:
    model = _model(kind, body)
    try:
        props, ext = new_props(_xml(model), box, quota)
    except WriteError as exc:
        raise _write_error(exc) from exc
    if kind is EntityKind.APPOINTMENT:
        _check_calendar(props)
    item = box.add(folder, KIND_ELEMENT[kind], props)
    item.ext = ext
    return item


def _check_calendar(props: etree._Element) -> None:
    probe = StoredItem("probe", "", "CalendarItem", props, {}, 0, 0, now_utc(), now_utc())
    try:
        cal.iana_zone(props)
        cal.validate_series(probe)
    except cal.CalendarError as exc:
        raise bad_request(str(exc), exc.code) from exc


def _write_error(exc: WriteError) -> GraphError:
    if exc.code == "ErrorQuotaExceeded":
        return GraphError(507, exc.code, str(exc))
    return bad_request(str(exc), exc.code)


def patch(box: Mailbox, item: StoredItem, body: Json, quota: Quota) -> None:
    """Apply a PATCH: the fields that differ become SetItemField / DeleteItemField."""
    kind = ENTITY_OF[item.kind]
    current = model_of(box, item)
    wanted = _model(kind, {**full_json(current), **body})
    fields = MODEL_FIELDS[kind] - NOT_WRITTEN[kind]
    changed = {f for f in fields if getattr(wanted, f) != getattr(current, f)}
    if not changed:
        box.touch(item)  # Graph still writes: the change key moves
        return
    work = copy.deepcopy(item.props)
    ext_before = dict(item.ext)
    try:
        for upd in item_updates(wanted, changed):
            change = etree.Element(t("SetItemField" if upd.item is not None else "DeleteItemField"))
            add_path(change, upd.path)
            if upd.item is not None:
                change.append(upd.item)
            apply_change(box, item, change, quota, work)
        if item.kind == "CalendarItem":
            _check_calendar(work)
    except WriteError as exc:
        item.ext = ext_before
        raise _write_error(exc) from exc
    except GraphError:
        item.ext = ext_before
        raise
    item.props = work
    if item.kind == "CalendarItem" and work.find(t("Recurrence")) is None:
        item.exceptions.clear()
        item.deleted_occurrences.clear()
    box.touch(item)


def _text(tag: str, value: str, **attrs: str) -> etree._Element:
    node = etree.Element(t(tag), attrs)
    node.text = value
    return node


def patch_occurrence(box: Mailbox, item: StoredItem, index: int, body: Json) -> None:
    """Make (or change) an exception of a series: what Outlook does when one occurrence moves."""
    override = copy.deepcopy(item.exceptions.get(index, etree.Element(t("CalendarItem"))))
    nodes = []
    if "subject" in body:
        nodes.append(_text("Subject", str(body["subject"] or "")))
    if "body" in body:
        nodes.append(_text("Body", read_body(body) or "", BodyType="Text"))
    if "location" in body:
        nodes.append(_text("Location", str((body["location"] or {}).get("displayName") or "")))
    for key, tag in (("start", "Start"), ("end", "End")):
        if key in body:
            when = parse_dtz(body[key])
            if when is None:
                raise bad_request(f"{key} needs a dateTime", "ErrorInvalidProperty")
            nodes.append(_text(tag, cal.format_datetime(when)))
    for node in nodes:
        old = override.find(node.tag)
        if old is not None:
            override.remove(old)
        insert_ordered(override, node, "CalendarItemType")
    item.exceptions[index] = override
    box.touch(item)


def delete_occurrence(box: Mailbox, item: StoredItem, index: int) -> None:
    item.exceptions.pop(index, None)
    item.deleted_occurrences.add(index)
    box.touch(item)


def link_task(box: Mailbox, item: StoredItem, crm_id: str, quota: Quota) -> None:
    """A linked resource of our application on a task is the CRM extended property in EWS."""
    try:
        quota.define(box, CRM_ATTRS)
    except WriteError as exc:
        raise _write_error(exc) from exc
    item.ext[CRM_KEY] = (dict(CRM_ATTRS), crm_id)
    box.touch(item)
