"""Graph writes onto the stored EWS XML: a body's properties become puts (`from_json.py`) on
the same store the EWS operations write, so change keys, sync states, delta tokens and
notifications move alike whoever wrote."""

from __future__ import annotations

import copy
from collections.abc import Callable

from lxml import etree

from ews_client.models import EntityKind

from .. import calendar as cal
from ..paths import ext_key
from ..store import ITEM_TYPES, Folder, Mailbox, StoredItem, now_utc
from ..writes import Quota, WriteError
from ..xmlutil import insert_ordered, t
from . import from_json
from .errors import GraphError, bad_request
from .from_json import Put
from .view import ENTITY_OF, resource
from .wire import CRM_ATTRS, CRM_KEY, Json, body_text, parse_dtz

KIND_ELEMENT = {EntityKind.CONTACT: "Contact", EntityKind.APPOINTMENT: "CalendarItem",
                EntityKind.TASK: "Task"}  # fmt: skip
Ext = dict[str, tuple[dict[str, str], str | tuple[str, ...]]]


def _puts(kind: EntityKind, make: Callable[[], list[Put]]) -> list[Put]:
    try:
        return make()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise bad_request(f"invalid {kind.value}: {exc}", "ErrorInvalidProperty") from exc


def create(box: Mailbox, folder: Folder, kind: EntityKind, body: Json, quota: Quota) -> StoredItem:
    element = KIND_ELEMENT[kind]
    puts = _puts(kind, lambda: from_json.for_create(element, body))
    props = etree.Element(t(element))
    ext: Ext = {}
    try:
        for put in puts:
            _apply(box, props, ext, put, quota, element)
    except WriteError as exc:
        raise _write_error(exc) from exc
    if kind is EntityKind.APPOINTMENT:
        _check_calendar(props)
    item = box.add(folder, element, props)
    item.ext = ext
    return item


def _apply(box: Mailbox, props: etree._Element, ext: Ext, put: Put, quota: Quota, kind: str
           ) -> None:  # fmt: skip
    if put.tag == "ExtendedProperty":
        _put_extended(box, ext, put.node, quota)
    elif put.key is None:
        _put_plain(props, put, ITEM_TYPES[kind])
    else:
        _put_entry(props, put, ITEM_TYPES[kind])


def _put_extended(box: Mailbox, ext: Ext, node: etree._Element | None, quota: Quota) -> None:
    """One extended property set, or removed when it has no value (no node: a task's link)."""
    uri = None if node is None else node.find(t("ExtendedFieldURI"))
    if node is None or uri is None:
        ext.pop(CRM_KEY, None)
        return
    attrs = {str(k): str(v) for k, v in uri.attrib.items()}
    value = node.findtext(t("Value"))
    if not value:
        ext.pop(ext_key(attrs), None)
        return
    quota.define(box, attrs)  # a new name counts against the mailbox's named-property quota
    ext[ext_key(attrs)] = (attrs, value)


def _put_plain(props: etree._Element, put: Put, type_name: str) -> None:
    if put.node is not None:
        insert_ordered(props, put.node, type_name)  # replaces the one there
    elif (old := props.find(t(put.tag))) is not None:
        props.remove(old)


def _put_entry(props: etree._Element, put: Put, type_name: str) -> None:
    holder = props.find(t(put.tag))
    if holder is None:
        if put.node is None:
            return
        holder = etree.Element(t(put.tag))
        insert_ordered(props, holder, type_name)
    old = next((e for e in holder if e.get("Key") == put.key), None)
    if put.node is None and old is not None:
        holder.remove(old)
    elif put.node is not None and old is not None:
        holder.replace(old, put.node)
    elif put.node is not None:
        holder.append(put.node)
    if len(holder) == 0:
        props.remove(holder)


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
    """Apply a PATCH: the properties the body names are written, the rest stays."""
    current = resource(item)
    puts = _puts(ENTITY_OF[item.kind], lambda: from_json.for_patch(item.kind, body, current))
    work = copy.deepcopy(item.props)
    ext_before = dict(item.ext)
    try:
        for put in puts:
            _apply(box, work, item.ext, put, quota, item.kind)
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
        nodes.append(_text("Body", body_text(body) or "", BodyType="Text"))
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
