"""What a SyncFolderItems page can carry of an item, and when that is the whole item. Pure.

A listing (FindItem, SyncFolderItems) returns no body in any format, no recipient lists, no
recurrence, no whole dictionary of a contact (its entries one by one, by IndexedFieldURI),
only the Name of a mailbox-typed field, and 255 characters of a string property
(ews_client/PROTOCOL_NOTES.md, "What a listing returns"). So a page asks for what a listing
can give of a contact or a task, plus PidTagNativeBody, the item's best body format, which is
0 when the item has no body: such an item is read in full from the page alone, and GetItem
reads only the others. A calendar item always needs GetItem (its organizer's address, its
attendees and its recurrence are not listed), so its pages ask for ids only.
"""

from __future__ import annotations

from ews_client.ews.contacts import ADDRESS_PARTS, PHONE_KEYS, SIMPLE
from ews_client.ews.ids import (
    CRM_ID_PATH,
    FieldURI,
    IndexedFieldURI,
    PropertyPath,
    TaggedFieldURI,
)
from ews_client.ews.tasks import TASK_READ
from ews_client.ews.xml import Element, t
from ews_client.models import EntityKind

# PidTagNativeBody: PtypInteger32, tag 0x1016; 0 = no body (MS-OXCMSG 2.2.1.58.2).
NATIVE_BODY = TaggedFieldURI("0x1016", "Integer")
_NO_BODY = "0"
_BODY = FieldURI("item:Body")

_LISTED_COMMON: tuple[PropertyPath, ...] = (
    FieldURI("item:Subject"),
    FieldURI("item:Categories"),
    FieldURI("item:LastModifiedTime"),
    CRM_ID_PATH,
    NATIVE_BODY,
)
_CONTACT: tuple[PropertyPath, ...] = (
    *_LISTED_COMMON,
    *(FieldURI(uri) for _, uri in SIMPLE.values()),
    FieldURI("contacts:Birthday"),
    *(IndexedFieldURI("contacts:EmailAddress", f"EmailAddress{i}") for i in (1, 2, 3)),
    *(IndexedFieldURI("contacts:PhoneNumber", key) for key in PHONE_KEYS.values()),
    *(IndexedFieldURI(uri, "Business") for _, _, uri in ADDRESS_PARTS),
)
_TASK: tuple[PropertyPath, ...] = (
    *_LISTED_COMMON,
    *(p for p in TASK_READ if p not in _LISTED_COMMON and p != _BODY),
)
LISTED: dict[EntityKind, tuple[PropertyPath, ...]] = {
    EntityKind.CONTACT: _CONTACT,
    EntityKind.TASK: _TASK,
}


def listed_paths(kind: EntityKind) -> tuple[PropertyPath, ...]:
    """The properties a SyncFolderItems page asks for, for items of `kind` (none: ids only)."""
    return LISTED.get(kind, ())


def listed_in_full(el: Element) -> bool:
    """Whether a listed item element holds all of the item: it says it has no body."""
    for prop in el.iterchildren(t("ExtendedProperty")):
        uri = next(prop.iterchildren(t("ExtendedFieldURI")), None)
        if uri is not None and _is_native_body(uri.get("PropertyTag", "")):
            return (prop.findtext(t("Value")) or "").strip() == _NO_BODY
    return False


def _is_native_body(tag: str) -> bool:
    try:
        return int(tag, 16 if tag.lower().startswith("0x") else 10) == int(NATIVE_BODY.tag, 16)
    except ValueError:
        return False
