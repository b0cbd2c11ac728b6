"""Stored items (EWS XML props) as Graph JSON, through the shared item model: the EWS XML is
read into the model exactly as the EWS client reads it, and the model written as Graph JSON
exactly as the Graph client writes it, plus the server-managed properties Graph adds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ews_client.errors import ExchangeError
from ews_client.ews.convert import item_from_xml
from ews_client.ews.timezones import IANA_TO_WINDOWS
from ews_client.graph.convert import MODEL_FIELDS, patch_body
from ews_client.graph.tasks import linked_resource
from ews_client.graph.wire import CRM_PROP_ID, fmt_dt
from ews_client.models import (
    CRM_ID_PROPERTY,
    CRM_PROPERTY_SET_ID,
    Appointment,
    EntityKind,
    Item,
)

from .. import calendar as cal
from ..paths import Path, Shape, ext_key
from ..render import render_item, render_occurrence
from ..store import Mailbox, StoredItem
from ..xmlutil import t
from .errors import GraphError
from .ids import etag, graph_id

Json = dict[str, Any]
CRM_ATTRS = {"PropertySetId": CRM_PROPERTY_SET_ID, "PropertyName": CRM_ID_PROPERTY,
             "PropertyType": "String"}  # fmt: skip
CRM_KEY = ext_key(CRM_ATTRS)
FULL = Shape("AllProperties", (Path("ext", CRM_KEY, attrs=tuple(CRM_ATTRS.items())),))
ENTITY_OF = {"Contact": EntityKind.CONTACT, "CalendarItem": EntityKind.APPOINTMENT,
             "Task": EntityKind.TASK}  # fmt: skip
FOLDER_OF = {EntityKind.CONTACT: "contacts", EntityKind.APPOINTMENT: "calendar",
             EntityKind.TASK: "tasks"}  # fmt: skip


def model_of(box: Mailbox, item: StoredItem) -> Item:
    try:
        return item_from_xml(render_item(box, item, FULL))
    except (ExchangeError, ValueError) as exc:  # an owner edit the model cannot read
        raise GraphError(500, "ErrorInternalServerError", f"unreadable item: {exc}") from exc


def crm_of(item: StoredItem) -> str | None:
    value = item.ext.get(CRM_KEY)
    return value[1] if value and isinstance(value[1], str) and value[1] else None


def utc_dtz(value: datetime | None) -> Json | None:
    return {"dateTime": fmt_dt(value.astimezone(UTC)), "timeZone": "UTC"} if value else None


def full_json(model: Item) -> Json:
    """Every model field as Graph writes it (None values included)."""
    return patch_body(model, MODEL_FIELDS[model.kind])


def item_json(box: Mailbox, item: StoredItem, *, expand: bool = False) -> Json:
    """The Graph resource; extended properties and linked resources only with $expand."""
    model = model_of(box, item)
    body = {k: v for k, v in full_json(model).items() if v is not None}
    body.pop("singleValueExtendedProperties", None)
    crm = crm_of(item)
    if expand and crm and model.kind is not EntityKind.TASK:
        body["singleValueExtendedProperties"] = [{"id": CRM_PROP_ID, "value": crm}]
    if expand and model.kind is EntityKind.TASK:
        links = [dict(linked_resource(crm), id=graph_id(item.id) + "-crm")] if crm else []
        body["linkedResources"] = links
    if isinstance(model, Appointment):
        body.update(_event_extra(model))
    body.update(
        {
            "@odata.etag": etag(item),
            "id": graph_id(item.id),
            "changeKey": item.change_key,
            "createdDateTime": cal.format_datetime(item.created),
            "lastModifiedDateTime": cal.format_datetime(item.modified),
        }
    )
    return body


def _event_extra(model: Appointment) -> Json:
    # Prefer: outlook.timezone="UTC": times in UTC; the zone it was entered in stays visible.
    return {
        "start": utc_dtz(model.start),
        "end": utc_dtz(model.end),
        "originalStartTimeZone": IANA_TO_WINDOWS.get(model.time_zone, model.time_zone),
        "type": "seriesMaster" if model.recurrence is not None else "singleInstance",
    }


def occurrence_json(box: Mailbox, item: StoredItem, index: int) -> Json:
    el = render_occurrence(box, item, index, Shape("AllProperties"))
    original = el.findtext(t("OriginalStart")) or ""
    model = item_from_xml(el)
    assert isinstance(model, Appointment)
    return {
        "@odata.etag": etag(item),
        "id": graph_id(cal.occurrence_id(item.id, index)),
        "type": "exception" if index in item.exceptions else "occurrence",
        "seriesMasterId": graph_id(item.id),
        "originalStart": original,
        "start": utc_dtz(model.start),
        "end": utc_dtz(model.end),
        "subject": model.subject,
        "location": {"displayName": model.location or ""},
        "body": {"contentType": "text", "content": model.notes or ""},
        "originalStartTimeZone": IANA_TO_WINDOWS.get(model.time_zone, model.time_zone),
    }


def occurrences_in(item: StoredItem, start: datetime, end: datetime) -> list[int]:
    """Indexes of the series' occurrences whose original start lies in [start, end)."""
    out = []
    for position, when in enumerate(cal.occurrence_starts(item), start=1):
        if when >= end:
            break
        if when >= start and position not in item.deleted_occurrences:
            out.append(position)
    return out


def overlaps(box: Mailbox, item: StoredItem, start: datetime, end: datetime) -> bool:
    s, e = item.props.findtext(t("Start")), item.props.findtext(t("End"))
    if s is None or e is None:
        return False
    return cal.parse_datetime(s) < end and cal.parse_datetime(e) > start
