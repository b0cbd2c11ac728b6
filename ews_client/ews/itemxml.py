"""Pieces of `t:ItemType` shared by contacts, calendar items and tasks.

Every EWS complex type is an `xs:sequence`, so writers append children in schema order:
ItemId, Subject, Sensitivity, Body, Categories, Importance, ReminderDueBy, ReminderIsSet,
ReminderMinutesBeforeStart, ExtendedProperty, LastModifiedTime, then the subtype's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ews_client.ews.ids import CRM_ID_PATH, FieldURI, PropertyPath, add_path
from ews_client.ews.xml import Element, fragment, parse_dt, sub, t
from ews_client.models import Item

# Item-level field URIs we read for every kind.
COMMON_READ: tuple[PropertyPath, ...] = (
    FieldURI("item:Subject"),
    FieldURI("item:Body"),
    FieldURI("item:Categories"),
    FieldURI("item:LastModifiedTime"),
    CRM_ID_PATH,
)


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """One `SetItemField` (item holds the new value) or `DeleteItemField` (item is None)."""

    path: PropertyPath
    item: Element | None


Writer = Callable[[Element], None]


def set_update(path: PropertyPath, tag: str, write: Writer) -> FieldUpdate:
    """A SetItemField whose item element (`t:Contact`, ...) carries one written field."""
    item = fragment(t(tag))
    write(item)
    return FieldUpdate(path, item)


def add_text(parent: Element, tag: str, value: str | None) -> None:
    if value is not None:
        sub(parent, t(tag), value)


def add_body(parent: Element, notes: str | None) -> None:
    if notes is not None:
        sub(parent, t("Body"), notes, BodyType="Text")


def add_categories(parent: Element, categories: Sequence[str]) -> None:
    if categories:
        arr = sub(parent, t("Categories"))
        for cat in categories:
            sub(arr, t("String"), cat)


def add_crm_id(parent: Element, crm_id: str | None) -> None:
    if crm_id is not None:
        prop = sub(parent, t("ExtendedProperty"))
        add_path(prop, CRM_ID_PATH)
        sub(prop, t("Value"), crm_id)


# A parsed item's children by tag (Clark notation): the first element of each tag.
Children = Mapping[object, Element]


def children(item: Element) -> Children:
    """Each child tag's first element, in one pass over the item: reading a field is then a
    dict look-up instead of one more scan of the children per field (`find`)."""
    # Reversed, so that the first element of a tag is the one that stays.
    return {child.tag: child for child in reversed(item)}


def read_crm_id(item: Element) -> str | None:
    for prop in item.iterchildren(t("ExtendedProperty")):
        uri = next(prop.iterchildren(t("ExtendedFieldURI")), None)
        if uri is None or uri.get("PropertyName") != CRM_ID_PATH.name:
            continue
        if (uri.get("PropertySetId") or "").lower() == CRM_ID_PATH.property_set.lower():
            value = next(prop.iterchildren(t("Value")), None)
            return None if value is None else value.text or ""
    return None


def read_categories(kids: Children) -> tuple[str, ...]:
    arr = kids.get(t("Categories"))
    if arr is None:
        return ()
    return tuple(s.text or "" for s in arr.iterchildren(t("String")))


def read_text(kids: Children, tag: str) -> str | None:
    """The text of the child `tag` ("" when empty), None when absent: `findtext`'s answer."""
    el = kids.get(t(tag))
    return None if el is None else el.text or ""


def read_body(kids: Children) -> str | None:
    return read_text(kids, "Body")


def read_dt(kids: Children, tag: str) -> datetime | None:
    text = read_text(kids, tag)
    return parse_dt(text) if text else None


def common_updates(item: Item, tag: str, field: str) -> list[FieldUpdate]:
    """Updates of the ItemType-level fields every kind has: notes, categories, crm_id."""
    if field == "notes":
        path: PropertyPath = FieldURI("item:Body")
        if item.notes is None:
            return [FieldUpdate(path, None)]
        return [set_update(path, tag, lambda e: add_body(e, item.notes))]
    if field == "categories":
        path = FieldURI("item:Categories")
        if not item.categories:
            return [FieldUpdate(path, None)]
        return [set_update(path, tag, lambda e: add_categories(e, item.categories))]
    if field == "crm_id":
        if item.crm_id is None:
            return [FieldUpdate(CRM_ID_PATH, None)]
        return [set_update(CRM_ID_PATH, tag, lambda e: add_crm_id(e, item.crm_id))]
    raise ValueError(f"unknown {tag} field {field!r}")
