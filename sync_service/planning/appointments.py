"""The appointment mapping: CRM `CrmAppointment` <-> Exchange `Appointment`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from ews_client.models import Appointment, Attendee, EntityKind, Sensitivity

from . import series
from . import values as v
from .mapping import EntityMap, FieldSpec, ValueMap
from .records import CrmAppointment, CrmAttendee
from .values import Fields, JsonValue


def norm_attendees(raw: object) -> JsonValue:
    """[[email, name, required], ...] sorted by address; one entry per address."""
    seen: dict[str, list[JsonValue]] = {}
    for email, name, required in cast(Iterable[tuple[str, str | None, bool]], raw or ()):
        address = v.norm_line(email)
        if isinstance(address, str):
            seen.setdefault(address.casefold(), [address, v.norm_line(name), bool(required)])
    return [cast(JsonValue, seen[key]) for key in sorted(seen)]


def key_attendees(value: JsonValue) -> JsonValue:
    # Display names are resolved from the directory by Exchange and differ from the CRM's
    # spelling: only the address and the attendance type are content.
    return [
        [str(entry[0]).casefold(), entry[2]] for entry in cast(list[list[JsonValue]], value or [])
    ]


ATTENDEES = v.Codec("attendees", norm_attendees, key_attendees)
# Other spellings a CRM may hold, read as Exchange's values (and written back as Exchange's).
SENSITIVITY_SPELLINGS = {"public": "normal", "secret": "private"}
SENSITIVITY = v.enum_codec("sensitivity", Sensitivity, Sensitivity.NORMAL, SENSITIVITY_SPELLINGS)
SENSITIVITY_VALUES = ValueMap.of(Sensitivity, Sensitivity.NORMAL, SENSITIVITY_SPELLINGS)


def _item_attendees(item: Appointment) -> list[tuple[str, str | None, bool]]:
    return [(a.email, a.name, True) for a in item.required_attendees] + [
        (a.email, a.name, False) for a in item.optional_attendees
    ]


def _simple(
    name: str, codec: v.Codec, crm: str | None = None, model: str | None = None, **extra: object
) -> FieldSpec:
    crm_attr, model_attr = crm or name, model or name
    return FieldSpec(
        name=name,
        codec=codec,
        crm_read=lambda record: getattr(record, crm_attr),
        exchange_read=lambda item: getattr(item, model_attr),
        crm_attrs=(crm_attr,),
        model_fields=(model_attr,),
        **extra,  # type: ignore[arg-type]
    )


SPECS: tuple[FieldSpec, ...] = (
    _simple("subject", v.LINE),
    _simple("start", v.DATETIME, crm="starts_at"),
    _simple("end", v.DATETIME, crm="ends_at"),
    _simple("time_zone", v.TIME_ZONE),
    _simple("all_day", v.BOOL),
    _simple("location", v.LINE),
    _simple("notes", v.TEXT),
    _simple("organizer", v.EMAIL, crm="organizer_email"),
    _simple("is_meeting", v.BOOL),
    _simple("sensitivity", SENSITIVITY, values=SENSITIVITY_VALUES),
    _simple("reminder_minutes", v.INT),
    _simple("categories", v.CATEGORIES),
    FieldSpec(
        name="attendees",
        codec=ATTENDEES,
        crm_read=lambda record: record.attendees,
        exchange_read=_item_attendees,
        crm_attrs=("attendees",),
        model_fields=("required_attendees", "optional_attendees"),
    ),
    _simple("recurrence", series.RECURRENCE),
    _simple("modified_occurrences", series.MODIFIED, combine=series.combine_modified),
    _simple("deleted_occurrences", series.DELETED, combine=series.combine_deleted),
)


def _text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)


def _attendees(fields: Fields) -> tuple[CrmAttendee, ...]:
    entries = cast(list[list[JsonValue]], fields.get("attendees") or [])
    return tuple(
        CrmAttendee(str(e[0]), None if e[1] is None else str(e[1]), bool(e[2])) for e in entries
    )


def _reminder(fields: Fields) -> int | None:
    value = fields.get("reminder_minutes")
    return None if value is None else int(cast(int, value))


def build_record(fields: Fields, crm_id: str, owner_id: str) -> CrmAppointment:
    return CrmAppointment(
        id=crm_id,
        owner_id=owner_id,
        subject=_text(fields, "subject"),
        starts_at=v.parse_datetime(fields.get("start")),
        ends_at=v.parse_datetime(fields.get("end")),
        time_zone=_text(fields, "time_zone") or "UTC",
        all_day=bool(fields.get("all_day")),
        location=_text(fields, "location"),
        notes=_text(fields, "notes"),
        organizer_email=_text(fields, "organizer"),
        is_meeting=bool(fields.get("is_meeting")),
        sensitivity=v.decode_enum(Sensitivity, fields.get("sensitivity"), Sensitivity.NORMAL),
        reminder_minutes=_reminder(fields),
        categories=tuple(str(c) for c in cast(list[str], fields.get("categories") or [])),
        attendees=_attendees(fields),
        recurrence=series.parse_recurrence(fields.get("recurrence")),
        modified_occurrences=series.parse_modified(fields.get("modified_occurrences")),
        deleted_occurrences=series.parse_deleted(fields.get("deleted_occurrences")),
    )


def build_item(fields: Fields, crm_id: str) -> Appointment:
    record = build_record(fields, crm_id, "")
    return Appointment(
        subject=record.subject,
        start=record.starts_at,
        end=record.ends_at,
        time_zone=record.time_zone,
        all_day=record.all_day,
        location=record.location,
        notes=record.notes,
        organizer=record.organizer_email,
        required_attendees=tuple(Attendee(a.email, a.name) for a in record.attendees if a.required),
        optional_attendees=tuple(
            Attendee(a.email, a.name) for a in record.attendees if not a.required
        ),
        is_meeting=record.is_meeting,
        sensitivity=record.sensitivity,
        reminder_minutes=record.reminder_minutes,
        categories=record.categories,
        recurrence=record.recurrence,
        modified_occurrences=record.modified_occurrences,
        deleted_occurrences=record.deleted_occurrences,
        crm_id=crm_id,
    )


def title(fields: Fields) -> str:
    return f"{_text(fields, 'subject') or '(no subject)'} @ {_text(fields, 'start') or '?'}"


APPOINTMENTS = EntityMap(
    entity=EntityKind.APPOINTMENT,
    specs=SPECS,
    build_record=build_record,
    build_item=build_item,
    title=title,
)
