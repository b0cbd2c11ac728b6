"""Items and folders as EWS XML, honouring the requested shape exactly, in schema order.

A listing (FindItem, SyncFolderItems) returns less than GetItem, as Exchange does: no body
in any format, no attachments, no recipient lists, no recurrence blobs, no whole dictionary
of a contact (its entries one by one through IndexedFieldURI only), only the Name of a
mailbox-typed field, and the first 255 characters of a string extended property
(ews_client/PROTOCOL_NOTES.md, "What a listing returns").
"""

from __future__ import annotations

import copy

from lxml import etree

from . import calendar as cal
from .bodies import body_as, text_body
from .folder_render import folder_ck
from .paths import Path, Shape, ext_key, ext_uri_element
from .store import ITEM_CLASSES, ITEM_TYPES, Mailbox, StoredItem
from .xmlutil import child_order, local, sub, t

_COMMON_DEFAULT = (
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Categories",
    "Importance",
    "DateTimeCreated",
    "ReminderIsSet",
    "HasAttachments",
    "LastModifiedTime",
)
# What a listing never returns, whatever the shape asks.
NOT_LISTED = frozenset(
    (
        "Body", "UniqueBody", "TextBody", "MimeContent", "Attachments",
        "RequiredAttendees", "OptionalAttendees", "Resources",
        "Recurrence", "ModifiedOccurrences", "DeletedOccurrences", "FirstOccurrence",
        "LastOccurrence", "EmailAddresses", "PhysicalAddresses", "PhoneNumbers", "ImAddresses",
    )
)  # fmt: skip
NAME_ONLY = frozenset(("Organizer",))  # mailbox-typed: a listing gives the Name alone
LISTED_STRING_CHARS = 255
# PidTagNativeBody (0x1016, PtypInteger32): the item's best body format, 0 when it has none.
NATIVE_BODY_KEY = ext_key({"PropertyTag": "0x1016"})
NATIVE_BODY = {None: "0", "Text": "1", "HTML": "3"}
# What `BaseShape=Default` returns, per item type (documented subset of Exchange's defaults).
DEFAULT_FIELDS = {
    "Contact": frozenset(
        (*_COMMON_DEFAULT, "FileAs", "DisplayName", "GivenName", "Surname", "CompanyName")
    ).union(("EmailAddresses", "PhysicalAddresses", "PhoneNumbers", "JobTitle", "Birthday")),
    "CalendarItem": frozenset(
        (*_COMMON_DEFAULT, "UID", "Start", "End", "IsAllDayEvent", "Location", "IsMeeting")
    ).union(("IsRecurring", "CalendarItemType", "Organizer", "LegacyFreeBusyStatus")),
    "Task": frozenset(
        (*_COMMON_DEFAULT, "DueDate", "StartDate", "Status", "PercentComplete", "IsComplete")
    ).union(("CompleteDate",)),
}


def render_item(
    box: Mailbox, item: StoredItem, shape: Shape, *, listing: bool = False
) -> etree._Element:
    """The item element for `item` in `shape` (a series master when it has a recurrence);
    `listing`: as FindItem and SyncFolderItems return it (the module's docstring)."""
    props = {local(c.tag): c for c in item.props}
    computed = _computed(box, item)
    return _assemble(item, props, computed, shape, listing)


def render_occurrence(
    box: Mailbox, item: StoredItem, index: int, shape: Shape, *, listing: bool = False
) -> etree._Element:
    """One occurrence of a series (CalendarItemType Occurrence, or Exception when modified)."""
    original, start, end = cal.occurrence_window(item, index)
    props = {local(c.tag): c for c in item.props if local(c.tag) != "Recurrence"}
    override = item.exceptions.get(index)
    if override is not None:
        props.update({local(c.tag): c for c in override})
    props["Start"] = _text(t("Start"), cal.format_datetime(start))
    props["End"] = _text(t("End"), cal.format_datetime(end))
    computed = _computed(box, item)
    for name in ("ModifiedOccurrences", "DeletedOccurrences", "FirstOccurrence"):
        computed.pop(name, None)
    computed["ItemId"] = _item_id(cal.occurrence_id(item.id, index), item.change_key)
    computed["OriginalStart"] = _text(t("OriginalStart"), cal.format_datetime(original))
    computed["IsRecurring"] = _text(t("IsRecurring"), "true")
    kind = "Exception" if override is not None else "Occurrence"
    computed["CalendarItemType"] = _text(t("CalendarItemType"), kind)
    return _assemble(item, props, computed, shape, listing)


def _assemble(
    item: StoredItem,
    props: dict[str, etree._Element],
    computed: dict[str, etree._Element],
    shape: Shape,
    listing: bool = False,
) -> etree._Element:
    wanted = _wanted(item.kind, shape)
    indexed = {p.name: p for p in shape.extra if p.kind == "indexed"}
    if any(p.kind == "field" and p.name == "TextBody" for p in shape.extra):
        computed = {**computed, "TextBody": text_body(props.get("Body"))}
    out = etree.Element(t(item.kind))
    for name in child_order(ITEM_TYPES[item.kind]):
        if name == "ExtendedProperty":
            _append_ext(out, item, props.get("Body"), shape.extra, listing)
        elif listing and name in NOT_LISTED:
            if name in indexed and name in props:
                _append_indexed(out, props[name], [p for p in shape.extra if p.name == name])
        elif name == "Body" and "Body" in props and (wanted is None or name in wanted):
            out.append(body_as(props["Body"], shape.body_type))
        elif wanted is None or name in wanted:
            source = computed.get(name, props.get(name))
            if source is not None:
                out.append(
                    _name_only(source) if listing and name in NAME_ONLY else copy.deepcopy(source)
                )
        elif name in indexed and name in props:
            _append_indexed(out, props[name], [p for p in shape.extra if p.name == name])
    return out


def _name_only(field: etree._Element) -> etree._Element:
    """A mailbox-typed field with its Mailbox reduced to the Name, as a listing returns it
    (Exchange always has a display name: the address stands in when none was stored)."""
    mailbox = f"{t('Mailbox')}/"
    name = field.findtext(mailbox + t("Name")) or field.findtext(mailbox + t("EmailAddress"))
    if not name:
        return copy.deepcopy(field)
    out = etree.Element(field.tag)
    sub(sub(out, t("Mailbox")), t("Name"), name)
    return out


def _wanted(kind: str, shape: Shape) -> frozenset[str] | None:
    if shape.base == "AllProperties":
        return None
    base = {"ItemId"} if shape.base == "IdOnly" else set(DEFAULT_FIELDS[kind])
    base.update(p.name for p in shape.extra if p.kind == "field")
    return frozenset(base)


def _append_indexed(out: etree._Element, container: etree._Element, paths: list[Path]) -> None:
    keys = {p.index for p in paths}
    entries = [e for e in container if e.get("Key") in keys]
    if entries:
        holder = sub(out, container.tag)
        for entry in entries:
            holder.append(copy.deepcopy(entry))


def _append_ext(
    out: etree._Element,
    item: StoredItem,
    body: etree._Element | None,
    extra: tuple[Path, ...],
    listing: bool,
) -> None:
    # Exchange returns extended properties only when asked for by path, even for AllProperties.
    for path in extra:
        if path.kind != "ext":
            continue
        if path.name == NATIVE_BODY_KEY:
            _append_native_body(out, path, body)
            continue
        if path.name not in item.ext:
            continue
        attrs, value = item.ext[path.name]
        if listing:
            value = _listed(value)
        prop = sub(out, t("ExtendedProperty"))
        prop.append(ext_uri_element(attrs))
        if isinstance(value, tuple):
            values = sub(prop, t("Values"))
            for v in value:
                sub(values, t("Value"), v)
        else:
            sub(prop, t("Value"), value)


def _listed(value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    """A listing's copy of a string value: its first 255 characters (a streamable property
    is cut to 512 bytes, 255 Unicode characters, in FindItem)."""
    if isinstance(value, tuple):
        return tuple(v[:LISTED_STRING_CHARS] for v in value)
    return value[:LISTED_STRING_CHARS]


def _append_native_body(out: etree._Element, path: Path, body: etree._Element | None) -> None:
    """PidTagNativeBody, computed from the stored body: 0 when there is no body text."""
    kind = None if body is None or not (body.text or "").strip() else body.get("BodyType")
    prop = sub(out, t("ExtendedProperty"))
    prop.append(ext_uri_element(path.attrs))
    sub(prop, t("Value"), NATIVE_BODY.get(kind, "3"))


def _computed(box: Mailbox, item: StoredItem) -> dict[str, etree._Element]:
    out = {
        "ItemId": _item_id(item.id, item.change_key),
        "ParentFolderId": _folder_id(item.folder_id, box),
        "DateTimeCreated": _text(t("DateTimeCreated"), cal.format_datetime(item.created)),
        "LastModifiedTime": _text(t("LastModifiedTime"), cal.format_datetime(item.modified)),
        "HasAttachments": _text(t("HasAttachments"), "false"),
    }
    if item.props.find(t("ItemClass")) is None:
        out["ItemClass"] = _text(t("ItemClass"), ITEM_CLASSES[item.kind])
    if item.kind == "CalendarItem":
        out.update(_calendar_computed(item))
    elif item.kind == "Task":
        status = item.props.findtext(t("Status"))
        out["IsComplete"] = _text(t("IsComplete"), "true" if status == "Completed" else "false")
    return out


def _calendar_computed(item: StoredItem) -> dict[str, etree._Element]:
    recurring = item.props.find(t("Recurrence")) is not None
    kind = "RecurringMaster" if recurring else "Single"
    # Exchange quirk kept on purpose: a series master reports IsRecurring false.
    out = {
        "IsRecurring": _text(t("IsRecurring"), "false"),
        "CalendarItemType": _text(t("CalendarItemType"), kind),
    }
    if not recurring:
        return out
    if item.exceptions:
        modified = etree.Element(t("ModifiedOccurrences"))
        for index in sorted(item.exceptions):
            original, start, end = cal.occurrence_window(item, index)
            occ = sub(modified, t("Occurrence"))
            occ.append(_item_id(cal.occurrence_id(item.id, index), item.change_key))
            sub(occ, t("Start"), cal.format_datetime(start))
            sub(occ, t("End"), cal.format_datetime(end))
            sub(occ, t("OriginalStart"), cal.format_datetime(original))
        out["ModifiedOccurrences"] = modified
    if item.deleted_occurrences:
        deleted = etree.Element(t("DeletedOccurrences"))
        starts = cal.occurrence_starts(item, limit=max(item.deleted_occurrences))
        for index in sorted(item.deleted_occurrences):
            node = sub(deleted, t("DeletedOccurrence"))
            sub(node, t("Start"), cal.format_datetime(starts[index - 1]))
        out["DeletedOccurrences"] = deleted
    return out


def _item_id(item_id: str, change_key: str) -> etree._Element:
    return etree.Element(t("ItemId"), {"Id": item_id, "ChangeKey": change_key})


def _folder_id(folder_id: str, box: Mailbox) -> etree._Element:
    return etree.Element(t("ParentFolderId"), {"Id": folder_id, "ChangeKey": folder_ck(box)})


def _text(tag: str, value: str) -> etree._Element:
    element = etree.Element(tag)
    element.text = value
    return element
