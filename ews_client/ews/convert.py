"""Dispatch between the model kinds and their XML: one place that knows all three."""

from __future__ import annotations

from collections.abc import Iterable

from ews_client.errors import ProtocolError
from ews_client.ews.calendar import (
    APPOINTMENT_READ,
    appointment_from_xml,
    appointment_to_xml,
    appointment_updates,
)
from ews_client.ews.contacts import CONTACT_READ, contact_from_xml, contact_to_xml, contact_updates
from ews_client.ews.ids import DistinguishedFolder, FolderId, FolderRef, PropertyPath
from ews_client.ews.itemxml import FieldUpdate
from ews_client.ews.tasks import TASK_READ, task_from_xml, task_to_xml, task_updates
from ews_client.ews.xml import Element, t
from ews_client.models import Appointment, Contact, EntityKind, Item, Task

FOLDER_OF: dict[EntityKind, str] = {
    EntityKind.CONTACT: "contacts",
    EntityKind.APPOINTMENT: "calendar",
    EntityKind.TASK: "tasks",
}
READ_PATHS: dict[EntityKind, tuple[PropertyPath, ...]] = {
    EntityKind.CONTACT: CONTACT_READ,
    EntityKind.APPOINTMENT: APPOINTMENT_READ,
    EntityKind.TASK: TASK_READ,
}
ITEM_TAGS = {t("Contact"), t("CalendarItem"), t("Task")}
# Model fields that are not item properties: the envelope of every kind.
ENVELOPE_FIELDS = frozenset({"ref", "last_modified", "kind"})


def folder_for(kind: EntityKind, mailbox: str, folder: str | None = None) -> FolderRef:
    """The entity's default folder of `mailbox`, or the linked folder of id `folder`."""
    if folder:
        return FolderId(folder)
    return DistinguishedFolder(FOLDER_OF[kind], mailbox)


def item_to_xml(item: Item) -> Element:
    if isinstance(item, Contact):
        return contact_to_xml(item)
    if isinstance(item, Appointment):
        return appointment_to_xml(item)
    return task_to_xml(item)


def item_from_xml(el: Element) -> Item:
    if el.tag == t("Contact"):
        return contact_from_xml(el)
    if el.tag == t("CalendarItem"):
        return appointment_from_xml(el)
    if el.tag == t("Task"):
        return task_from_xml(el)
    raise ProtocolError(f"unexpected item element {el.tag}")


def item_updates(item: Item, fields: Iterable[str]) -> list[FieldUpdate]:
    """The SetItemField/DeleteItemField list for the named model fields, in a stable order."""
    out: list[FieldUpdate] = []
    for field in sorted(set(fields) - ENVELOPE_FIELDS):
        if isinstance(item, Contact):
            out.extend(contact_updates(item, field))
        elif isinstance(item, Appointment):
            out.extend(appointment_updates(item, field))
        elif isinstance(item, Task):
            out.extend(task_updates(item, field))
    return _dedupe(out)


def _dedupe(updates: list[FieldUpdate]) -> list[FieldUpdate]:
    # start/end/time_zone each expand to the same four updates: keep the first of each path.
    seen = set()
    out = []
    for upd in updates:
        if upd.path not in seen:
            seen.add(upd.path)
            out.append(upd)
    return out
