"""Pure conversions between CRM records and the rows of the bundled schema.

Column names are the attribute names of the record dataclasses. Recurrence patterns and
exceptions live in jsonb columns: dates as ISO dates, datetimes as ISO-8601 UTC strings.
No I/O here: the adapter binds `write_params` to named queries and feeds rows to `to_record`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from ews_client import (
    EntityKind,
    Importance,
    ModifiedOccurrence,
    Recurrence,
    Sensitivity,
    TaskStatus,
)
from sync_service.crm.port import CrmRejected
from sync_service.planning.records import (
    CrmAppointment,
    CrmAttendee,
    CrmContact,
    CrmRecord,
    CrmTask,
)

Json: TypeAlias = Any
# A database row: an asyncpg Record or any mapping of column name to value.
Row: TypeAlias = Any

RECORD_TYPES: dict[EntityKind, type[CrmRecord]] = {
    EntityKind.CONTACT: CrmContact,
    EntityKind.APPOINTMENT: CrmAppointment,
    EntityKind.TASK: CrmTask,
}

# Written by the adapter, in the order of the $3.. parameters of the insert/update queries
# ($1 = id, $2 = owner_id on insert). id, owner_id, updated_at and version are the CRM's own.
WRITE_COLUMNS: dict[EntityKind, tuple[str, ...]] = {
    EntityKind.CONTACT: (
        "first_name", "last_name", "email", "email2", "email3", "company", "job_title",
        "business_phone", "mobile_phone", "home_phone", "street", "city", "state",
        "postal_code", "country", "birthday", "categories", "notes",
    ),
    EntityKind.APPOINTMENT: (
        "subject", "starts_at", "ends_at", "time_zone", "all_day", "location", "notes",
        "organizer_email", "is_meeting", "sensitivity", "reminder_minutes", "categories",
        "recurrence", "modified_occurrences", "deleted_occurrences",
    ),
    EntityKind.TASK: (
        "subject", "notes", "starts_at", "due_at", "completed_at", "status",
        "percent_complete", "importance", "reminder_at", "categories",
    ),
}  # fmt: skip

_INT32 = (-(2**31), 2**31 - 1)


def entity_of(record: CrmRecord) -> EntityKind:
    for entity, kind in RECORD_TYPES.items():
        if isinstance(record, kind):
            return entity
    raise TypeError(f"not a CRM record: {type(record).__name__}")


def parse_uuid(value: str) -> str | None:
    """The canonical text of a uuid, or None for anything else (ids may come from mailboxes)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


# -- values going in --------------------------------------------------------------------------


def check_value(field: str, value: object) -> None:
    """Reject what PostgreSQL would refuse with an unhelpful message, naming the field."""
    if value is None:  # most columns of most records: nothing to look at
        return
    if isinstance(value, str):
        _check_text(field, value)
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise CrmRejected(field, "datetime without a time zone")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not _INT32[0] <= value <= _INT32[1]:
            raise CrmRejected(field, "integer out of range")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_value(f"{field}[{index}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_value(f"{field}.{key}", item)
    elif is_dataclass(value) and not isinstance(value, type):
        for member in fields(value):
            check_value(f"{field}.{member.name}", getattr(value, member.name))


def _check_text(field: str, value: str) -> None:
    # PostgreSQL text (and jsonb) cannot hold NUL; lone surrogates are not encodable UTF-8.
    if "\x00" in value:
        raise CrmRejected(field, "contains a NUL character")
    if value.isascii():  # the common case, and ASCII text always encodes
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CrmRejected(field, "is not valid Unicode text") from None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def recurrence_to_json(value: Recurrence) -> dict[str, Json]:
    return {
        "kind": value.kind,
        "interval": value.interval,
        "days_of_week": list(value.days_of_week),
        "day_of_month": value.day_of_month,
        "month": value.month,
        "week_index": value.week_index,
        "start_date": value.start_date.isoformat() if value.start_date else None,
        "end_date": value.end_date.isoformat() if value.end_date else None,
        "occurrences": value.occurrences,
    }


def occurrence_to_json(value: ModifiedOccurrence) -> dict[str, Json]:
    return {
        "original_start": _iso(value.original_start),
        "start": _iso(value.start),
        "end": _iso(value.end),
        "subject": value.subject,
        "location": value.location,
        "notes": value.notes,
    }


def _plain_value(value: object) -> object:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, _ENUM_TYPES):
        return value.value
    return value


def _recurrence_value(value: Recurrence | None) -> object:
    return None if value is None else recurrence_to_json(value)


def _occurrences_value(value: tuple[ModifiedOccurrence, ...]) -> object:
    return [occurrence_to_json(o) for o in value]


def _deleted_value(value: tuple[datetime, ...]) -> object:
    return [_iso(d) for d in value]


_ENUM_TYPES = (Sensitivity, TaskStatus, Importance)
# Columns with a conversion of their own; every other one goes through `_plain_value`.
_CONVERTERS: dict[str, Callable[[Any], object]] = {
    "recurrence": _recurrence_value,
    "modified_occurrences": _occurrences_value,
    "deleted_occurrences": _deleted_value,
    "categories": list,
}


def write_params(record: CrmRecord) -> list[object]:
    """The values of WRITE_COLUMNS for `record`, checked and converted for the driver."""
    out: list[object] = []
    for column in WRITE_COLUMNS[entity_of(record)]:
        value = getattr(record, column)
        # A column is converted only once its own check passed: the conversions assume values
        # the checks accept (aware datetimes), so checking all columns first changes nothing.
        check_value(column, value)
        out.append(_CONVERTERS.get(column, _plain_value)(value))
    return out


def _json_default(value: object) -> object:
    if isinstance(value, date):  # datetimes too: ISO-8601, which PostgreSQL reads exactly
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# One encoder for every batch (json.dumps with options builds a new one per call).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def insert_batch(entity: EntityKind, batch: Sequence[tuple[str, CrmRecord]]) -> str:
    """The JSON array of `crm_<entity>_insert_many`: per (id, record) of `entity`, an object
    of the id and `write_params` by column name. One text parameter for the whole batch: the
    driver encodes one value, not one per column and record."""
    names = ("id", *WRITE_COLUMNS[entity])
    rows = [dict(zip(names, (record_id, *write_params(record)), strict=True))
            for record_id, record in batch]  # fmt: skip
    return _JSON.encode(rows)


def attendee_params(record: CrmAppointment) -> tuple[list[str], list[str | None], list[bool]]:
    """Attendees as three parallel arrays (one INSERT ... unnest for the whole list)."""
    for index, attendee in enumerate(record.attendees):
        check_value(f"attendees[{index}].email", attendee.email)
        check_value(f"attendees[{index}].name", attendee.name)
    return (
        [a.email for a in record.attendees],
        [a.name for a in record.attendees],
        [bool(a.required) for a in record.attendees],
    )


def attendees_batch(appointments: Sequence[tuple[str, CrmAppointment]]) -> str:
    """The JSON array of `crm_attendees_insert_many` for several (id, appointment) pairs:
    one object per attendee, `ord` its 1-based place in its appointment's list."""
    rows: list[dict[str, Json]] = []
    for record_id, record in appointments:
        emails, names, required = attendee_params(record)
        rows.extend(
            {"appointment_id": record_id, "ord": place, "email": e, "name": n, "required": r}
            for place, (e, n, r) in enumerate(zip(emails, names, required, strict=True), 1)
        )
    return _JSON.encode(rows)


# -- rows coming out --------------------------------------------------------------------------


def _date(value: Json) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _datetime(value: Json) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recurrence_from_json(value: Mapping[str, Json]) -> Recurrence:
    return Recurrence(
        kind=value["kind"],
        interval=int(value.get("interval") or 1),
        days_of_week=tuple(value.get("days_of_week") or ()),
        day_of_month=value.get("day_of_month"),
        month=value.get("month"),
        week_index=value.get("week_index"),
        start_date=_date(value.get("start_date")),
        end_date=_date(value.get("end_date")),
        occurrences=value.get("occurrences"),
    )


def occurrence_from_json(value: Mapping[str, Json]) -> ModifiedOccurrence:
    return ModifiedOccurrence(
        original_start=_datetime(value["original_start"]),
        start=_datetime(value["start"]),
        end=_datetime(value["end"]),
        subject=value.get("subject"),
        location=value.get("location"),
        notes=value.get("notes"),
    )


def _categories(value: Json) -> tuple[str, ...]:
    return tuple(value or ())


def _recurrence(value: Json) -> Recurrence | None:
    return None if value is None else recurrence_from_json(value)


def _occurrences(value: Json) -> tuple[ModifiedOccurrence, ...]:
    return tuple(occurrence_from_json(o) for o in value or ())


def _deleted(value: Json) -> tuple[datetime, ...]:
    return tuple(_datetime(d) for d in value or ())


# Columns read with a conversion of their own; every other one is taken as the driver gives it.
_READERS: dict[str, Callable[[Json], object]] = {
    "id": str,
    "owner_id": str,
    "categories": _categories,
    "recurrence": _recurrence,
    "modified_occurrences": _occurrences,
    "deleted_occurrences": _deleted,
    "sensitivity": Sensitivity,
    "status": TaskStatus,
    "importance": Importance,
}
# The attribute names of each record type, looked up once rather than for every row.
_FIELD_NAMES: dict[EntityKind, tuple[str, ...]] = {
    entity: tuple(f.name for f in fields(kind)) for entity, kind in RECORD_TYPES.items()
}


def _field_value(name: str, value: Json) -> object:
    reader = _READERS.get(name)
    return value if reader is None else reader(value)


def to_record(entity: EntityKind, row: Row, attendees: tuple[CrmAttendee, ...] = ()) -> CrmRecord:
    """A record from a row of its table (plus, for appointments, its attendees in order)."""
    kind = RECORD_TYPES[entity]
    columns = set(row.keys())
    values: dict[str, Any] = {
        name: _field_value(name, row[name]) for name in _FIELD_NAMES[entity] if name in columns
    }
    if kind is CrmAppointment:
        values["attendees"] = attendees
    return kind(**values)


def attendee_from_row(row: Row) -> CrmAttendee:
    return CrmAttendee(email=row["email"], name=row["name"], required=bool(row["required"]))


def rejected_field(table: str | None, constraint: str | None, column: str | None) -> str:
    """The record field a constraint or column error is about (constraints are named
    `<table>_<column>_check`, PostgreSQL's default for column CHECKs)."""
    prefix = "attendees." if table == "appointment_attendees" else ""
    if column:
        return prefix + column
    name = constraint or "record"
    if name.endswith("_pkey"):
        return prefix + "id"
    if table and name.startswith(f"{table}_"):
        name = name[len(table) + 1 :]
    for suffix in ("_check", "_fkey", "_key"):
        name = name.removesuffix(suffix)
    return prefix + name
