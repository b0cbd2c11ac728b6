"""Appointment <-> `t:CalendarItem` (CalendarItemType, children in schema order).

Exceptions of a recurring series are separate items in EWS: the master lists them in
`t:ModifiedOccurrences` (ItemId, Start, End, OriginalStart) and `t:DeletedOccurrences`
(Start); their subject/location/notes are read with GetItem on the occurrence ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from ews_client.errors import ProtocolError
from ews_client.ews.ids import FieldURI, PropertyPath, read_item_ref
from ews_client.ews.itemxml import (
    COMMON_READ,
    Children,
    FieldUpdate,
    Writer,
    add_body,
    add_categories,
    add_crm_id,
    add_text,
    children,
    common_updates,
    read_body,
    read_categories,
    read_crm_id,
    read_dt,
    read_text,
    set_update,
)
from ews_client.ews.recurrence_xml import add_recurrence, read_recurrence
from ews_client.ews.timezones import to_iana, to_windows
from ews_client.ews.xml import Element, fmt_bool, fmt_dt, new, parse_bool, parse_dt, sub, t
from ews_client.models import (
    Appointment,
    Attendee,
    ItemRef,
    MeetingAppointment,
    ModifiedOccurrence,
    Sensitivity,
)

SENSITIVITY_TO_EWS = {
    Sensitivity.NORMAL: "Normal",
    Sensitivity.PERSONAL: "Personal",
    Sensitivity.PRIVATE: "Private",
    Sensitivity.CONFIDENTIAL: "Confidential",
}
SENSITIVITY_FROM_EWS = {v: k for k, v in SENSITIVITY_TO_EWS.items()}

APPOINTMENT_READ: tuple[PropertyPath, ...] = (
    *COMMON_READ,
    FieldURI("item:Sensitivity"),
    FieldURI("item:ReminderIsSet"),
    FieldURI("item:ReminderMinutesBeforeStart"),
    FieldURI("calendar:Start"),
    FieldURI("calendar:End"),
    FieldURI("calendar:IsAllDayEvent"),
    FieldURI("calendar:Location"),
    FieldURI("calendar:IsMeeting"),
    FieldURI("calendar:Organizer"),
    FieldURI("calendar:UID"),
    FieldURI("calendar:MyResponseType"),
    FieldURI("calendar:MeetingRequestWasSent"),
    FieldURI("calendar:RequiredAttendees"),
    FieldURI("calendar:OptionalAttendees"),
    FieldURI("calendar:Recurrence"),
    FieldURI("calendar:ModifiedOccurrences"),
    FieldURI("calendar:DeletedOccurrences"),
    FieldURI("calendar:StartTimeZone"),
)
# What we read of one modified occurrence (its own item).
OCCURRENCE_READ: tuple[PropertyPath, ...] = (
    FieldURI("item:Subject"),
    FieldURI("item:Body"),
    FieldURI("calendar:Start"),
    FieldURI("calendar:End"),
    FieldURI("calendar:Location"),
    FieldURI("calendar:OriginalStart"),
)


@dataclass(frozen=True, slots=True)
class OccurrenceInfo:
    """A modified occurrence as the master lists it."""

    ref: ItemRef
    start: datetime
    end: datetime
    original_start: datetime


def _add_attendees(parent: Element, tag: str, attendees: Sequence[Attendee]) -> None:
    if not attendees:
        return
    arr = sub(parent, t(tag))
    for att in attendees:
        mbx = sub(sub(arr, t("Attendee")), t("Mailbox"))
        add_text(mbx, "Name", att.name)
        sub(mbx, t("EmailAddress"), att.email)


def _add_reminder(parent: Element, minutes: int | None, *, is_set: bool = True,
                  value: bool = True) -> None:  # fmt: skip
    if is_set:
        sub(parent, t("ReminderIsSet"), fmt_bool(minutes is not None))
    if value and minutes is not None:
        sub(parent, t("ReminderMinutesBeforeStart"), str(minutes))


def _add_times(parent: Element, a: Appointment) -> None:
    if a.start is not None:
        sub(parent, t("Start"), fmt_dt(a.start))
    if a.end is not None:
        sub(parent, t("End"), fmt_dt(a.end))


def _add_zones(parent: Element, a: Appointment, *, start: bool = True, end: bool = True) -> None:
    zone = to_windows(a.time_zone)
    if start:
        sub(parent, t("StartTimeZone"), Id=zone)
    if end:
        sub(parent, t("EndTimeZone"), Id=zone)


def _add_recurrence(parent: Element, a: Appointment) -> None:
    if a.recurrence is not None and a.start is not None:
        first_day = a.start.astimezone(ZoneInfo(a.time_zone)).date()
        add_recurrence(parent, a.recurrence, first_day)


def appointment_to_xml(a: Appointment) -> Element:
    """The master item. Organizer and IsMeeting are server-computed, so not written."""
    el = new(t("CalendarItem"))
    add_text(el, "Subject", a.subject)
    sub(el, t("Sensitivity"), SENSITIVITY_TO_EWS[a.sensitivity])
    add_body(el, a.notes)
    add_categories(el, a.categories)
    _add_reminder(el, a.reminder_minutes)
    add_crm_id(el, a.crm_id)
    _add_times(el, a)
    sub(el, t("IsAllDayEvent"), fmt_bool(a.all_day))
    add_text(el, "Location", a.location)
    _add_attendees(el, "RequiredAttendees", a.required_attendees)
    _add_attendees(el, "OptionalAttendees", a.optional_attendees)
    _add_recurrence(el, a)
    _add_zones(el, a)
    return el


def _attendees(kids: Children, tag: str) -> tuple[Attendee, ...]:
    arr = kids.get(t(tag))
    if arr is None:
        return ()
    out = []
    for att in arr.iterchildren(t("Attendee")):
        mbx = next(att.iterchildren(t("Mailbox")), None)
        fields = {} if mbx is None else children(mbx)
        email = read_text(fields, "EmailAddress")
        if mbx is not None and email:
            out.append(Attendee(email=email, name=read_text(fields, "Name")))
    return tuple(out)


def _zone(kids: Children) -> str:
    tz = kids.get(t("StartTimeZone"))
    zone_id = tz.get("Id") if tz is not None else read_text(kids, "StartTimeZoneId")
    return to_iana(zone_id) if zone_id else "UTC"


def _reminder(kids: Children) -> int | None:
    if not parse_bool(read_text(kids, "ReminderIsSet")):
        return None
    text = read_text(kids, "ReminderMinutesBeforeStart")
    return int(text) if text and text.strip().lstrip("-").isdigit() else None


def read_occurrence_infos(el: Element) -> list[OccurrenceInfo]:
    arr = next(el.iterchildren(t("ModifiedOccurrences")), None)
    if arr is None:
        return []
    return [_occurrence_info(children(occ)) for occ in arr.iterchildren(t("Occurrence"))]


def _occurrence_info(kids: Children) -> OccurrenceInfo:
    return OccurrenceInfo(
        ref=read_item_ref(kids.get(t("ItemId"))),
        start=parse_dt(read_text(kids, "Start") or ""),
        end=parse_dt(read_text(kids, "End") or ""),
        original_start=parse_dt(read_text(kids, "OriginalStart") or ""),
    )


def _deleted(kids: Children) -> tuple[datetime, ...]:
    arr = kids.get(t("DeletedOccurrences"))
    if arr is None:
        return ()
    return tuple(
        parse_dt(read_text(children(d), "Start") or "")
        for d in arr.iterchildren(t("DeletedOccurrence"))
    )


def _organizer(kids: Children) -> str | None:
    """Organizer/Mailbox/EmailAddress: the first Mailbox that has an address."""
    organizer = kids.get(t("Organizer"))
    mailboxes = () if organizer is None else organizer.iterchildren(t("Mailbox"))
    for mbx in mailboxes:
        email = read_text(children(mbx), "EmailAddress")
        if email is not None:
            return email
    return None


# EWS ResponseTypeType -> the neutral response of a meeting copy's owner.
RESPONSES = {
    "Organizer": "organizer",
    "Accept": "accepted",
    "Tentative": "tentative",
    "Decline": "declined",
    "NoResponseReceived": "none",
    "Unknown": "none",
}


def appointment_from_xml(el: Element) -> Appointment:
    """The master; modified occurrences carry times only until `with_occurrences` fills them.
    A meeting (IsMeeting, or a response of its own) is a `MeetingAppointment`."""
    kids = children(el)
    base = _appointment(el, kids)
    uid, mine = read_text(kids, "UID"), read_text(kids, "MyResponseType")
    if uid is None or not (base.is_meeting or mine in RESPONSES):
        return base
    fields = {f: getattr(base, f) for f in Appointment.__dataclass_fields__}
    sent = parse_bool(read_text(kids, "MeetingRequestWasSent"))
    response = RESPONSES.get(mine or "")
    return MeetingAppointment(**fields, uid=uid, my_response=response, sent=sent)


def _appointment(el: Element, kids: Children) -> Appointment:
    sensitivity = read_text(kids, "Sensitivity")
    return Appointment(
        subject=read_text(kids, "Subject"),
        start=read_dt(kids, "Start"),
        end=read_dt(kids, "End"),
        time_zone=_zone(kids),
        all_day=parse_bool(read_text(kids, "IsAllDayEvent")),
        location=read_text(kids, "Location"),
        notes=read_body(kids),
        organizer=_organizer(kids),
        required_attendees=_attendees(kids, "RequiredAttendees"),
        optional_attendees=_attendees(kids, "OptionalAttendees"),
        is_meeting=parse_bool(read_text(kids, "IsMeeting")),
        sensitivity=SENSITIVITY_FROM_EWS.get(sensitivity or "Normal", Sensitivity.NORMAL),
        reminder_minutes=_reminder(kids),
        categories=read_categories(kids),
        recurrence=read_recurrence(kids.get(t("Recurrence"))),
        modified_occurrences=tuple(
            ModifiedOccurrence(original_start=o.original_start, start=o.start, end=o.end)
            for o in read_occurrence_infos(el)
        ),
        deleted_occurrences=_deleted(kids),
        ref=read_item_ref(kids.get(t("ItemId"))),
        crm_id=read_crm_id(el),
        last_modified=read_dt(kids, "LastModifiedTime"),
    )


def occurrence_from_xml(el: Element) -> ModifiedOccurrence:
    """One modified occurrence read as its own item (GetItem on its ItemId)."""
    kids = children(el)
    start = read_dt(kids, "Start")
    end = read_dt(kids, "End")
    original = read_dt(kids, "OriginalStart") or start
    if start is None or end is None or original is None:
        raise ProtocolError("occurrence without Start/End")
    return ModifiedOccurrence(
        original_start=original,
        start=start,
        end=end,
        subject=read_text(kids, "Subject"),
        location=read_text(kids, "Location"),
        notes=read_body(kids),
    )


def _set(uri: str, write: Writer) -> FieldUpdate:
    return set_update(FieldURI(uri), "CalendarItem", write)


def occurrence_updates(occ: ModifiedOccurrence) -> list[FieldUpdate]:
    """The fields of one occurrence an exception may change: times, subject, location, notes."""
    out = [
        _set("calendar:Start", partial(_add_dt, tag="Start", value=occ.start)),
        _set("calendar:End", partial(_add_dt, tag="End", value=occ.end)),
    ]
    if occ.subject is not None:
        out.append(_set("item:Subject", partial(add_text, tag="Subject", value=occ.subject)))
    if occ.location is not None:
        out.append(_set("calendar:Location", partial(add_text, tag="Location", value=occ.location)))
    if occ.notes is not None:
        out.append(_set("item:Body", partial(add_body, notes=occ.notes)))
    return out


def _add_dt(parent: Element, tag: str, value: datetime) -> None:
    sub(parent, t(tag), fmt_dt(value))


# Server-computed or written through occurrence operations, never through SetItemField.
_NOT_FIELDS = frozenset({"is_meeting", "organizer", "modified_occurrences", "deleted_occurrences"})
_TIME_FIELDS = frozenset({"start", "end", "time_zone"})


def _time_updates(a: Appointment) -> list[FieldUpdate]:
    # Zones first: a server interprets the new Start in the item's zone (EWS guidance).
    out = [
        _set("calendar:StartTimeZone", partial(_add_zones, a=a, end=False)),
        _set("calendar:EndTimeZone", partial(_add_zones, a=a, start=False)),
    ]
    if a.start is not None:
        out.append(_set("calendar:Start", partial(_add_dt, tag="Start", value=a.start)))
    if a.end is not None:
        out.append(_set("calendar:End", partial(_add_dt, tag="End", value=a.end)))
    return out


def _optional(uri: str, present: bool, write: Writer) -> list[FieldUpdate]:
    return [_set(uri, write)] if present else [FieldUpdate(FieldURI(uri), None)]


def appointment_updates(a: Appointment, field: str) -> list[FieldUpdate]:
    """SetItemField / DeleteItemField for one model field of an appointment (master)."""
    if field in _NOT_FIELDS:
        return []
    if field in _TIME_FIELDS:
        return _time_updates(a)
    if field == "subject":
        return _optional("item:Subject", a.subject is not None,
                         partial(add_text, tag="Subject", value=a.subject))  # fmt: skip
    if field == "location":
        return _optional("calendar:Location", a.location is not None,
                         partial(add_text, tag="Location", value=a.location))  # fmt: skip
    if field == "sensitivity":
        value = SENSITIVITY_TO_EWS[a.sensitivity]
        return [_set("item:Sensitivity", partial(add_text, tag="Sensitivity", value=value))]
    if field == "all_day":
        flag = fmt_bool(a.all_day)
        return [_set("calendar:IsAllDayEvent", partial(add_text, tag="IsAllDayEvent", value=flag))]
    if field == "reminder_minutes":
        out = [_set("item:ReminderIsSet", partial(_add_reminder, minutes=a.reminder_minutes,
                                                   value=False))]  # fmt: skip
        if a.reminder_minutes is not None:
            out.append(_set("item:ReminderMinutesBeforeStart", partial(
                _add_reminder, minutes=a.reminder_minutes, is_set=False)))  # fmt: skip
        return out
    if field in ("required_attendees", "optional_attendees"):
        tag = "RequiredAttendees" if field == "required_attendees" else "OptionalAttendees"
        people = getattr(a, field)
        return _optional(f"calendar:{tag}", bool(people),
                         partial(_add_attendees, tag=tag, attendees=people))  # fmt: skip
    if field == "recurrence":
        return _optional("calendar:Recurrence", a.recurrence is not None,
                         partial(_add_recurrence, a=a))  # fmt: skip
    return common_updates(a, "CalendarItem", field)
