"""Pure helpers of the CRM adapter: jsonb shapes, field names of errors, change reduction."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ews_client.models import ModifiedOccurrence, Recurrence
from sync_service.crm.codec import (
    check_value,
    occurrence_from_json,
    occurrence_to_json,
    recurrence_from_json,
    recurrence_to_json,
    rejected_field,
)
from sync_service.crm.log import reduce_changes
from sync_service.crm.port import ChangeOp, CrmRejected, RecordChange

TOKYO = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    "pattern",
    [
        Recurrence(kind="daily", interval=3, occurrences=7, start_date=date(2026, 1, 1)),
        Recurrence(kind="weekly", days_of_week=("monday", "friday"), end_date=date(2027, 1, 1)),
        Recurrence(kind="relative_yearly", days_of_week=("sunday",), week_index="last", month=3),
        Recurrence(kind="absolute_monthly", day_of_month=31),
    ],
)
def test_recurrence_round_trips_through_json(pattern: Recurrence) -> None:
    text = json.dumps(recurrence_to_json(pattern))
    assert recurrence_from_json(json.loads(text)) == pattern


def test_occurrence_times_are_stored_in_utc() -> None:
    start = datetime(2026, 3, 29, 9, tzinfo=TOKYO)
    occurrence = ModifiedOccurrence(start, start + timedelta(hours=1), start + timedelta(hours=2))
    data = occurrence_to_json(occurrence)
    assert data["original_start"] == "2026-03-29T00:00:00+00:00"
    back = occurrence_from_json(json.loads(json.dumps(data)))
    assert back == occurrence
    assert back.start.tzinfo is not None and back.start.utcoffset() == timedelta(0)


def test_check_value_names_the_nested_field() -> None:
    with pytest.raises(CrmRejected) as rejected:
        check_value("recurrence", {"days_of_week": ["monday", "x\x00"]})
    assert rejected.value.field == "recurrence.days_of_week[1]"
    check_value("notes", "fine ' ; -- text")
    check_value("when", datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("table", "constraint", "column", "field"),
    [
        ("contacts", "contacts_first_name_check", None, "first_name"),
        ("appointments", "appointments_ends_at_check", None, "ends_at"),
        ("tasks", "tasks_owner_id_fkey", None, "owner_id"),
        ("tasks", "tasks_pkey", None, "id"),
        ("appointment_attendees", "appointment_attendees_email_check", None, "attendees.email"),
        ("record_users", None, "record_id", "record_id"),
    ],
)
def test_rejected_field(table: str, constraint: str | None, column: str | None, field: str) -> None:
    assert rejected_field(table, constraint, column) == field


def test_reduce_keeps_the_last_operation_per_record_in_seq_order() -> None:
    rows = [
        {"seq": 5, "record_id": "b", "op": "delete"},
        {"seq": 1, "record_id": "a", "op": "insert"},
        {"seq": 3, "record_id": "b", "op": "update"},
        {"seq": 4, "record_id": "a", "op": "unlink"},
        {"seq": 6, "record_id": "a", "op": "link"},
    ]
    assert reduce_changes(rows) == (
        RecordChange("b", ChangeOp.REMOVED),
        RecordChange("a", ChangeOp.UPSERT),
    )
