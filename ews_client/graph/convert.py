"""Dispatch between the model kinds and Graph JSON: one place that knows all three."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from ews_client.graph.contacts import contact_fields, contact_from_json
from ews_client.graph.events import event_fields, event_from_json
from ews_client.graph.tasks import linked_resource, task_fields, task_from_json
from ews_client.graph.wire import Json
from ews_client.models import Appointment, Contact, EntityKind, Item, Task

# Model fields that are not item properties: the envelope of every kind.
ENVELOPE_FIELDS = frozenset({"ref", "last_modified", "kind"})
MODEL_FIELDS: dict[EntityKind, frozenset[str]] = {
    EntityKind.CONTACT: frozenset(f.name for f in fields(Contact)) - ENVELOPE_FIELDS,
    EntityKind.APPOINTMENT: frozenset(f.name for f in fields(Appointment)) - ENVELOPE_FIELDS,
    EntityKind.TASK: frozenset(f.name for f in fields(Task)) - ENVELOPE_FIELDS,
}


def _fields_of(item: Item, field: str) -> Json:
    if isinstance(item, Contact):
        return contact_fields(item, field)
    if isinstance(item, Appointment):
        return event_fields(item, field)
    return task_fields(item, field)


def patch_body(item: Item, names: Iterable[str]) -> Json:
    """The PATCH body writing the named model fields (None values clear the property)."""
    body: Json = {}
    for name in sorted(set(names) - ENVELOPE_FIELDS):
        body.update(_fields_of(item, name))
    return body


def create_body(item: Item) -> Json:
    """The POST body of a new item: every field with a value, the CRM id included."""
    body = {k: v for k, v in patch_body(item, MODEL_FIELDS[item.kind]).items() if v is not None}
    if isinstance(item, Task) and item.crm_id is not None:
        body["linkedResources"] = [linked_resource(item.crm_id)]
    if isinstance(item, Contact | Appointment) and item.crm_id is None:
        body.pop("singleValueExtendedProperties", None)
    return body


def item_from_json(kind: EntityKind, obj: Json) -> Item:
    if kind is EntityKind.CONTACT:
        return contact_from_json(obj)
    if kind is EntityKind.APPOINTMENT:
        return event_from_json(obj)
    return task_from_json(obj)
