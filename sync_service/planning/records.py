"""Canonical CRM records, one frozen dataclass per entity.

Attribute names are the column names of the bundled CRM schema (`crm.contacts`,
`crm.appointments`, `crm.tasks`). Datetimes are timezone-aware; an appointment keeps the IANA
name of the zone it was entered in. `version` is bumped by the CRM on every write and is used
for optimistic checks when the service writes a record back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from ews_client.models import (
    Importance,
    ModifiedOccurrence,
    Recurrence,
    Sensitivity,
    TaskStatus,
)


class CrmAttendee(NamedTuple):
    """One meeting attendee: (email, name, required)."""

    email: str
    name: str | None
    required: bool


@dataclass(frozen=True, slots=True)
class CrmContact:
    id: str
    owner_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email2: str | None = None
    email3: str | None = None
    company: str | None = None
    job_title: str | None = None
    business_phone: str | None = None
    mobile_phone: str | None = None
    home_phone: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    birthday: date | None = None
    categories: tuple[str, ...] = ()
    notes: str | None = None
    updated_at: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class CrmAppointment:
    id: str
    owner_id: str
    subject: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    time_zone: str = "UTC"
    all_day: bool = False
    location: str | None = None
    notes: str | None = None
    organizer_email: str | None = None
    is_meeting: bool = False
    sensitivity: Sensitivity = Sensitivity.NORMAL
    reminder_minutes: int | None = None
    categories: tuple[str, ...] = ()
    attendees: tuple[CrmAttendee, ...] = ()
    recurrence: Recurrence | None = None
    modified_occurrences: tuple[ModifiedOccurrence, ...] = ()
    deleted_occurrences: tuple[datetime, ...] = ()
    updated_at: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class CrmTask:
    id: str
    owner_id: str
    subject: str | None = None
    notes: str | None = None
    starts_at: datetime | None = None
    due_at: datetime | None = None
    completed_at: datetime | None = None
    status: TaskStatus = TaskStatus.NOT_STARTED
    percent_complete: int = 0
    importance: Importance = Importance.NORMAL
    reminder_at: datetime | None = None
    categories: tuple[str, ...] = ()
    updated_at: datetime | None = None
    version: int = 0


CrmRecord = CrmContact | CrmAppointment | CrmTask
