"""Item writes from request XML: new items, SetItemField / AppendToItemField / DeleteItemField.

Every write error carries the EWS ResponseCode it answers with (`WriteError.code`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from lxml import etree

from .errors import SimulatorError
from .paths import Path, ext_key, parse_path
from .store import ITEM_TYPES, Mailbox, StoredItem
from .xmlutil import child_order, insert_ordered, local, sub, t

# Properties the server owns: setting them is refused (ErrorInvalidPropertySet).
READ_ONLY = frozenset(
    [
        "ItemId",
        "ParentFolderId",
        "DateTimeCreated",
        "LastModifiedTime",
        "Size",
        "HasAttachments",
        "IsRecurring",
        "CalendarItemType",
        "ModifiedOccurrences",
        "DeletedOccurrences",
        "FirstOccurrence",
        "LastOccurrence",
        "IsComplete",
        "DateTimeReceived",
        "OriginalStart",
        "ChangeCount",
        "EffectiveRights",
        "TextBody",
    ]
)
# Properties of a series that one occurrence cannot set: its pattern and its identity. An
# occurrence (an exception once changed) takes every other settable property, its times with
# their zones included (ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)").
SERIES_FIELDS = frozenset(("Recurrence", "UID", "RecurrenceId"))
_APPENDABLE = frozenset(("Body", "RequiredAttendees", "OptionalAttendees", "Categories"))


class WriteError(SimulatorError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Quota:
    """Named-property definitions per mailbox: per property-set GUID and in all."""

    def __init__(self, per_guid: int, total: int) -> None:
        self.per_guid, self.total = per_guid, total

    def define(self, box: Mailbox, attrs: dict[str, str]) -> None:
        guid = attrs.get("PropertySetId", "").strip("{}").lower()
        name = attrs.get("PropertyName") or attrs.get("PropertyId")
        if not guid or name is None:
            return
        names = box.named_props.setdefault(guid, set())
        if name in names:
            return
        in_all = sum(len(v) for v in box.named_props.values())
        if len(names) >= self.per_guid or in_all >= self.total:
            raise WriteError("ErrorQuotaExceeded", "named property quota exceeded")
        names.add(name)


def new_props(
    element: etree._Element, box: Mailbox, quota: Quota
) -> tuple[etree._Element, dict[str, tuple[dict[str, str], str | tuple[str, ...]]]]:
    """Split a request item into stored properties and extended properties."""
    props = etree.Element(element.tag)
    ext: dict[str, tuple[dict[str, str], str | tuple[str, ...]]] = {}
    for child in element:
        name = local(child.tag)
        if name in READ_ONLY:
            raise WriteError("ErrorInvalidPropertySet", f"{name} is read-only")
        if name == "ExtendedProperty":
            key, attrs, value = _ext_value(child)
            quota.define(box, attrs)
            ext[key] = (attrs, value)
        else:
            props.append(copy.deepcopy(child))
    return props, ext


def _ext_value(prop: etree._Element) -> tuple[str, dict[str, str], str | tuple[str, ...]]:
    uri = prop[0]
    path = parse_path(uri)
    attrs = dict(path.attrs)
    values = prop.find(t("Values"))
    if values is not None:
        return ext_key(attrs), attrs, tuple(v.text or "" for v in values)
    return ext_key(attrs), attrs, prop.findtext(t("Value")) or ""


def apply_change(
    box: Mailbox, item: StoredItem, change: etree._Element, quota: Quota, target: etree._Element
) -> None:
    """Apply one t:SetItemField / AppendToItemField / DeleteItemField to `target` props."""
    op = local(change.tag)
    path = parse_path(change[0])
    if path.kind == "field" and path.name in READ_ONLY:
        raise WriteError("ErrorInvalidPropertySet", f"{path.name} is read-only")
    if op == "DeleteItemField":
        _delete(item, path, target)
        return
    carrier = change[1]
    if local(carrier.tag) not in (item.kind, "Item"):
        raise WriteError("ErrorInvalidPropertySet", f"{local(carrier.tag)} on a {item.kind}")
    if len(carrier) != 1:
        # "An object within a change description must contain one and only one property."
        raise WriteError("ErrorIncorrectUpdatePropertyCount", "exactly one property per change")
    value = carrier[0]
    if op == "AppendToItemField":
        _append(item, path, value, target)
    else:
        _set(box, item, path, value, quota, target)


def _set(
    box: Mailbox,
    item: StoredItem,
    path: Path,
    value: etree._Element,
    quota: Quota,
    target: etree._Element,
) -> None:
    if path.kind == "ext":
        key, attrs, stored = _ext_value(value)
        if key != path.name:
            raise WriteError("ErrorInvalidPropertySet", "value does not match the path")
        quota.define(box, attrs)
        item.ext[key] = (attrs, stored)
        return
    if path.kind == "field" and local(value.tag) != path.name:
        raise WriteError("ErrorInvalidPropertySet", "value does not match the path")
    if path.kind == "indexed":
        _set_indexed(item, path, value, target)
        return
    insert_ordered(target, copy.deepcopy(value), ITEM_TYPES[item.kind])


def _set_indexed(
    item: StoredItem, path: Path, value: etree._Element, target: etree._Element
) -> None:
    entry = value.find(t("Entry"))
    if local(value.tag) != path.name or entry is None or entry.get("Key") != path.index:
        raise WriteError("ErrorInvalidPropertySet", "value does not match the indexed path")
    container = target.find(t(path.name))
    if container is None:
        container = etree.Element(t(path.name))
        insert_ordered(target, container, ITEM_TYPES[item.kind])
    old = _entry(container, path.index)
    if path.sub and old is not None:
        # A physical-address sub-field: merge into the existing entry in schema order.
        for field in entry:
            insert_ordered(old, copy.deepcopy(field), "PhysicalAddressDictionaryEntryType")
        return
    if old is not None:
        container.replace(old, copy.deepcopy(entry))
    else:
        container.append(copy.deepcopy(entry))


def _entry(container: etree._Element, key: str) -> etree._Element | None:
    for entry in container:
        if entry.get("Key") == key:
            return entry
    return None


def _append(item: StoredItem, path: Path, value: etree._Element, target: etree._Element) -> None:
    if path.kind != "field" or path.name not in _APPENDABLE:
        raise WriteError("ErrorInvalidPropertyAppend", f"cannot append to {path.name}")
    existing = target.find(t(path.name))
    if existing is None:
        insert_ordered(target, copy.deepcopy(value), ITEM_TYPES[item.kind])
    elif path.name == "Body":
        existing.text = (existing.text or "") + (value.text or "")
    else:
        existing.extend(copy.deepcopy(c) for c in value)


def _delete(item: StoredItem, path: Path, target: etree._Element) -> None:
    if path.kind == "ext":
        item.ext.pop(path.name, None)
        return
    node = target.find(t(path.name))
    if node is None:
        return
    if path.kind == "field":
        target.remove(node)
        return
    entry = _entry(node, path.index)
    if entry is not None and path.sub:
        field = entry.find(t(path.sub))
        if field is not None:
            entry.remove(field)
    elif entry is not None:
        node.remove(entry)
    if len(node) == 0:
        target.remove(node)


def simple_props(kind: str, fields: Mapping[str, object]) -> etree._Element:
    """Props from a JSON object (admin API): text fields, and dicts for indexed fields."""
    props = etree.Element(t(kind))
    for name, value in fields.items():
        if name in READ_ONLY or name not in child_order(ITEM_TYPES[kind]):
            raise WriteError("ErrorInvalidPropertySet", f"cannot set {name}")
        node = etree.Element(t(name))
        if isinstance(value, dict):
            for key, text in value.items():
                sub(node, t("Entry"), str(text), Key=str(key))
        elif isinstance(value, list):
            for text in value:
                sub(node, t("String"), str(text))
        else:
            node.text = str(value)
        insert_ordered(props, node, ITEM_TYPES[kind])
    return props
