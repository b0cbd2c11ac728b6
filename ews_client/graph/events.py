"""Appointment <-> Graph `event` JSON.

Exceptions of a series are separate events in Graph (`type` "exception", with
`seriesMasterId` and `originalStart`); deleted occurrences are simply absent from the
master's `instances`. `series.py` folds them into the model.

Meetings without mail: Graph has no switch like EWS's `SendToNone`, and an event written with
attendees invites them (ews_client/PROTOCOL_NOTES.md, "Meeting messages"). Unless the
caller allows invitations, the CRM's attendee list goes into one more named property of the
project's property set (`CrmAttendees`) instead of `attendees`, and reads back from there,
so the model read is the model written. `meeting_state` and the `*_refusal` functions say
when writing to an event that has real attendees would mail them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from ews_client.models import (
    CRM_PROPERTY_SET_ID,
    Appointment,
    Attendee,
    ItemRef,
    MeetingAppointment,
    Sensitivity,
)

CRM_ATTENDEES_PROPERTY = "CrmAttendees"  # the property set's second name (CrmId is the first)
ATTENDEES_PROP_ID = f"String {{{CRM_PROPERTY_SET_ID}}} Name {CRM_ATTENDEES_PROPERTY}"
ATTENDEE_FIELDS = frozenset({"required_attendees", "optional_attendees"})
# Model fields written to properties that are the calendar owner's own (categories, reminder)
# or ours (the CRM id): changing them sends the attendees nothing.
SILENT_FIELDS = frozenset({"crm_id", "categories", "reminder_minutes", "ref", "last_modified"})
# The code of the ItemRejectedError raised instead of a write that would mail attendees.
MEETING_REFUSED = "MeetingWouldNotify"


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


# Graph's responseType as the model's response words.
RESPONSES = {"organizer": "organizer", "accepted": "accepted", "tentativelyAccepted": "tentative",
             "declined": "declined", "notResponded": "none", "none": "none"}  # fmt: skip


def event_from_json(obj: Json) -> Appointment:
    """The event; a meeting Exchange holds with real attendees is a `MeetingAppointment`."""
    return _meeting(obj, _event(obj))


def _meeting(obj: Json, a: Appointment) -> Appointment:
    """Its `iCalUId`, the owner's response, and (the organizer's) sent: Graph invites on save."""
    uid = opt_str(obj.get("iCalUId"))
    if uid is None or not (_read_attendees(obj, "required") or _read_attendees(obj, "optional")):
        return a
    organizer = obj.get("isOrganizer") is True
    status = (obj.get("responseStatus") or {}).get("response")
    mine = "organizer" if organizer else RESPONSES.get(str(status), "none")
    fields = {f: getattr(a, f) for f in Appointment.__dataclass_fields__}
    return MeetingAppointment(**fields, uid=uid, my_response=mine, sent=organizer)


def _event(obj: Json) -> Appointment:
    required = _read_attendees(obj, "required")
    optional = _read_attendees(obj, "optional")
    if not required and not optional:  # a meeting written without inviting anyone
        required, optional = read_attendee_list(obj)
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


# -- meetings that mail nobody --------------------------------------------------------------
def attendee_list_value(a: Appointment) -> str:
    """The CRM's attendees as the property's text: [[email, name, required], ...]; "" = none
    (Graph cannot remove an extended property through PATCH)."""
    entries = [[x.email, x.name, True] for x in a.required_attendees]
    entries += [[x.email, x.name, False] for x in a.optional_attendees]
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False) if entries else ""


def read_attendee_list(obj: Json) -> tuple[tuple[Attendee, ...], tuple[Attendee, ...]]:
    """(required, optional) from the CRM attendee property; none when absent or unreadable."""
    text = next((str(p.get("value") or "") for p in obj.get("singleValueExtendedProperties") or ()
                 if str(p.get("id", "")).lower() == ATTENDEES_PROP_ID.lower()), "")  # fmt: skip
    try:
        entries = json.loads(text) if text else []
    except ValueError:
        entries = []
    people = [e for e in entries if isinstance(e, list) and len(e) == 3 and e[0]]
    required = tuple(Attendee(str(e[0]), opt_str(e[1])) for e in people if e[2])
    optional = tuple(Attendee(str(e[0]), opt_str(e[1])) for e in people if not e[2])
    return required, optional


def meeting_body(body: Json, a: Appointment, *, invite: bool, create: bool = False) -> Json:
    """A POST / PATCH body whose attendees travel in the CRM attendee property, and as real
    `attendees` (which Exchange invites) only when `invite`."""
    if "attendees" not in body:
        return body
    out = dict(body)
    if not invite:
        del out["attendees"]
    value = attendee_list_value(a)
    props = [p for p in out.get("singleValueExtendedProperties") or ()
             if p.get("id") != ATTENDEES_PROP_ID]  # fmt: skip
    if value or not create:  # a new event without attendees needs no empty property
        props.append({"id": ATTENDEES_PROP_ID, "value": value})
    if props:
        out["singleValueExtendedProperties"] = props
    return out


def may_invite(a: Appointment, mailbox: str) -> bool:
    """Whether the mailbox would organize the meeting (the CRM names no other organizer)."""
    return not a.organizer or a.organizer.lower() == mailbox.lower()


@dataclass(frozen=True, slots=True)
class MeetingState:
    """What a write to an event must know of it as it is in Exchange."""

    attendees: frozenset[str]  # real attendees (lower case): Exchange mails these
    organized: bool  # the mailbox organizes it (an attendee's copy mails nobody)
    crm_listed: frozenset[str]  # the CRM attendee property's addresses

    @property
    def crm_organized(self) -> bool:
        """The real attendees are the CRM's: the sync made this a meeting."""
        return bool(self.attendees) and self.attendees == self.crm_listed


def meeting_state(obj: Json, mailbox: str) -> MeetingState:
    real = {a.email.lower() for a in (*_read_attendees(obj, "required"),
                                      *_read_attendees(obj, "optional"))}  # fmt: skip
    required, optional = read_attendee_list(obj)
    listed = frozenset(a.email.lower() for a in (*required, *optional))
    flag = obj.get("isOrganizer")
    organizer = _organizer(obj)
    organized = (
        flag if isinstance(flag, bool) else (not organizer or organizer.lower() == mailbox.lower())
    )
    return MeetingState(frozenset(real), organized, listed)


def write_refusal(state: MeetingState, fields: frozenset[str], invite: bool) -> str | None:
    """Why writing `fields` to this event must not happen (it would mail its attendees)."""
    if not state.attendees:
        return None
    count = len(state.attendees)
    if not state.organized:
        if fields & ATTENDEE_FIELDS:
            return f"the {count} attendee(s) of a meeting the mailbox was invited to are not ours"
        return None
    if not fields - SILENT_FIELDS or (invite and state.crm_organized):
        return None
    names = ", ".join(sorted(fields - SILENT_FIELDS))
    return (
        f"the meeting has {count} attendee(s) in Exchange and writing {names} would mail them "
        "a meeting update; meeting messages are sent only for meetings the CRM organized, "
        "and only when invitations are allowed"
    )


def delete_refusal(state: MeetingState, invite: bool) -> str | None:
    """Why deleting this event must not happen (it would mail its attendees a cancellation)."""
    if not state.attendees or not state.organized or (invite and state.crm_organized):
        return None
    return (
        f"the meeting has {len(state.attendees)} attendee(s) in Exchange and deleting it would "
        "mail them a cancellation; meeting messages are sent only for meetings the CRM "
        "organized, and only when invitations are allowed"
    )
