"""Hostile values: stored verbatim when the column can take them, else a clear CrmRejected."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ews_client.models import EntityKind, ModifiedOccurrence, Recurrence
from sync_service.crm.port import CrmRejected
from sync_service.crm.postgres import PostgresCrm
from sync_service.planning.records import CrmAppointment, CrmAttendee, CrmContact, CrmTask
from tests.crm.conftest import Users

INJECTION = "Robert'); DROP TABLE crm.contacts; -- $1 \\x00 %s {} \"q\" ' OR '1'='1"
START = datetime(2026, 5, 4, 10, tzinfo=UTC)


async def test_injection_strings_are_stored_verbatim(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    contact = CrmContact(
        "",
        users.alice,
        first_name=INJECTION,
        notes="Ünïcödé ✓ 🙂\n\ttabs\r\nCRLF",
        categories=(INJECTION, "a,b", "{c}"),
    )
    created = await crm.create_record(contact, users.alice)
    stored = (await crm.get_records(EntityKind.CONTACT, [created.id]))[created.id]
    assert stored.first_name == INJECTION
    assert stored.notes == contact.notes
    assert stored.categories == contact.categories
    assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 1

    meeting = await crm.create_record(
        CrmAppointment(
            "",
            users.alice,
            subject=INJECTION,
            starts_at=START,
            ends_at=START + timedelta(hours=1),
            attendees=(CrmAttendee(INJECTION, INJECTION, False),),
            modified_occurrences=(
                ModifiedOccurrence(START, START, START + timedelta(hours=1), subject=INJECTION),
            ),
            recurrence=Recurrence(kind="daily", interval=2, occurrences=10),
        ),
        users.alice,
    )
    again = (await crm.get_records(EntityKind.APPOINTMENT, [meeting.id]))[meeting.id]
    assert again == meeting
    assert again.attendees[0].name == INJECTION
    assert again.modified_occurrences[0].subject == INJECTION


# One database for all cases: a fresh database per case would cost more than the cases.
REJECTED = [
    (CrmContact("", "", first_name="a\x00b"), "first_name"),
    (CrmContact("", "", notes="\ud800"), "notes"),
    (CrmContact("", "", categories=("ok", "bad\x00")), "categories[1]"),
    (CrmContact("", "", company="x" * 256), "company"),
    (CrmContact("", "", notes="n" * 1_000_001), "notes"),
    (CrmContact("", "", categories=("",)), "categories"),
    (CrmTask("", "", percent_complete=101), "percent_complete"),
    (CrmTask("", "", percent_complete=2**40), "percent_complete"),
    (CrmTask("", "", due_at=datetime(2026, 1, 1)), "due_at"),  # naive
    (CrmTask("", "", status="exploded"), "status"),  # type: ignore[arg-type]
    (CrmAppointment("", "", starts_at=START, ends_at=START - timedelta(1)), "ends_at"),
    (CrmAppointment("", "", reminder_minutes=-5), "reminder_minutes"),
    (CrmAppointment("", "", time_zone=""), "time_zone"),
    (
        CrmAppointment("", "", attendees=(CrmAttendee("ok@x", "n\x00", True),)),
        "attendees[0].name",
    ),
    (CrmAppointment("", "", attendees=(CrmAttendee("", None, True),)), "attendees.email"),
    (
        CrmAppointment(
            "", "", modified_occurrences=(ModifiedOccurrence(START, START, START, "s\x00"),)
        ),
        "modified_occurrences[0].subject",
    ),
    (CrmTask("not-a-uuid", ""), "id"),
]


async def test_values_the_crm_cannot_take_are_rejected_by_field(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    for record, field in REJECTED:
        with pytest.raises(CrmRejected) as rejected:
            await crm.create_record(record, users.alice)  # type: ignore[arg-type]
        assert rejected.value.field == field, record
    # Nothing half-written: each transaction rolled back, no row and no log row either.
    assert await pool.fetchval("SELECT count(*) FROM crm.change_log") == 0
    assert await pool.fetchval("SELECT count(*) FROM crm.appointments") == 0


async def test_update_rejects_without_touching_the_row(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    created = await crm.create_record(CrmTask("", users.alice, subject="fine"), users.alice)
    with pytest.raises(CrmRejected) as rejected:
        await crm.update_record(replace(created, subject="s" * 300), created.version, users.alice)
    assert rejected.value.field == "subject"
    assert "subject" in str(rejected.value)
    stored = (await crm.get_records(EntityKind.TASK, [created.id]))[created.id]
    assert stored == created


async def test_malformed_user_ids_are_rejected(crm: PostgresCrm, users: Users) -> None:
    with pytest.raises(CrmRejected) as rejected:
        await crm.changes_since("'; DELETE FROM crm.users; --", EntityKind.TASK, 0)
    assert rejected.value.field == "user_id"
    with pytest.raises(CrmRejected):
        await crm.create_record(CrmTask("", users.alice), "nobody")
    assert len(await crm.list_users()) == 3
