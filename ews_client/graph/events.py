"""Appointment <-> Graph `event` JSON.

Exceptions of a series are separate events in Graph (`type` "exception", with
`seriesMasterId` and `originalStart`); deleted occurrences are simply absent from the
master's `instances`. `series.py` folds them into the model.
"""

from __future__ import annotations

from typing import Any

from ews_client.graph.recurrence import recurrence_from_json, recurrence_to_json
from ews_client.graph.wire import (
    Json,
    dtz,
    etag_of,
    extended_props,
    opt_str,
    parse_dt,
    parse_dtz,
    read_body,
    read_crm_prop,
    text_body,
    zone_of,
)
from ews_client.models import Appointment, Attendee, ItemRef, Sensitivity


def _attendees(a: Appointment) -> list[Json]:
    def one(att: Attendee, kind: str) -> Json:
        address: Json = {"address": att.email}
        if att.name:
            address["name"] = att.name
        return {"type": kind, "emailAddress": address}

    required = [one(x, "required") for x in a.required_attendees]
    return required + [one(x, "optional") for x in a.optional_attendees]


def _times(a: Appointment) -> Json:
    out: Json = {}
    if a.start is not None:
        out["start"] = dtz(a.start, a.time_zone)
    if a.end is not None:
        out["end"] = dtz(a.end, a.time_zone)
    return out


def event_fields(a: Appointment, field: str) -> Json:
    """The Graph properties that carry one model field (for POST and PATCH)."""
    simple = {"subject": a.subject, "isAllDay": a.all_day, "categories": list(a.categories),
              "sensitivity": a.sensitivity.value}  # fmt: skip
    keys = {"subject": "subject", "all_day": "isAllDay", "categories": "categories",
            "sensitivity": "sensitivity"}  # fmt: skip
    if field in keys:
        return {keys[field]: simple[keys[field]]}
    if field in ("start", "end", "time_zone"):
        return _times(a)
    if field == "location":
        return {"location": {"displayName": a.location or ""}}
    if field == "notes":
        return {"body": text_body(a.notes)}
    if field == "organizer":
        return {"organizer": {"emailAddress": {"address": a.organizer}} if a.organizer else None}
    if field in ("required_attendees", "optional_attendees"):
        return {"attendees": _attendees(a)}
    if field == "reminder_minutes":
        on = a.reminder_minutes is not None
        return {"isReminderOn": on, "reminderMinutesBeforeStart": a.reminder_minutes or 0}
    if field == "recurrence":
        rec = a.recurrence
        return {"recurrence": recurrence_to_json(rec, a.time_zone) if rec else None}
    if field == "crm_id":
        return {"singleValueExtendedProperties": extended_props(a.crm_id)}
    return {}


def _read_attendees(obj: Json, kind: str) -> tuple[Attendee, ...]:
    out = []
    for att in obj.get("attendees") or ():
        address = att.get("emailAddress") or {}
        if str(att.get("type", "required")) == kind and address.get("address"):
            out.append(Attendee(str(address["address"]), opt_str(address.get("name"))))
    return tuple(out)


def _organizer(obj: Json) -> str | None:
    org = obj.get("organizer")
    if not isinstance(org, dict):
        return None
    return opt_str((org.get("emailAddress") or {}).get("address"))


def _location(obj: Json) -> str | None:
    loc = obj.get("location")
    return opt_str(loc.get("displayName")) if isinstance(loc, dict) else None


def _sensitivity(value: Any) -> Sensitivity:
    try:
        return Sensitivity(str(value or "normal").lower())
    except ValueError:
        return Sensitivity.NORMAL


def event_zone(obj: Json) -> str:
    """The zone the event was entered in: `originalStartTimeZone`, else its start's zone."""
    zone = obj.get("originalStartTimeZone") or (obj.get("start") or {}).get("timeZone")
    return zone_of(zone)


def event_from_json(obj: Json) -> Appointment:
    required = _read_attendees(obj, "required")
    optional = _read_attendees(obj, "optional")
    modified = obj.get("lastModifiedDateTime")
    return Appointment(
        subject=opt_str(obj.get("subject")),
        start=parse_dtz(obj.get("start")),
        end=parse_dtz(obj.get("end")),
        time_zone=event_zone(obj),
        all_day=bool(obj.get("isAllDay")),
        location=_location(obj),
        notes=read_body(obj),
        organizer=_organizer(obj),
        required_attendees=required,
        optional_attendees=optional,
        # Graph v1.0 has no "is meeting" flag: an event with attendees is a meeting.
        is_meeting=bool(required or optional),
        sensitivity=_sensitivity(obj.get("sensitivity")),
        reminder_minutes=int(obj.get("reminderMinutesBeforeStart") or 0)
        if obj.get("isReminderOn")
        else None,
        categories=tuple(obj.get("categories") or ()),
        recurrence=recurrence_from_json(obj.get("recurrence")),
        ref=ItemRef(str(obj["id"]), etag_of(obj)) if obj.get("id") else None,
        crm_id=read_crm_prop(obj),
        last_modified=parse_dt(str(modified)) if modified else None,
    )
