"""Records through the bundled CRM: round trips, sync sets, optimistic versions, deletes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest

from ews_client.models import (
    EntityKind,
    Importance,
    ModifiedOccurrence,
    Recurrence,
    Sensitivity,
    TaskStatus,
)
from sync_service.crm.port import CrmRejected, RecordGone, VersionConflict
from sync_service.crm.postgres import PostgresCrm
from sync_service.planning.records import CrmAppointment, CrmAttendee, CrmContact, CrmTask
from tests.crm.conftest import Users

PARIS = timezone(timedelta(hours=2))


def full_contact(owner: str) -> CrmContact:
    return CrmContact(
        id="",
        owner_id=owner,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        email2="ada@home.example",
        email3="a.l@example.org",
        company="Analytical Engines Ltd",
        job_title="Programmer",
        business_phone="+44 20 7946 0000",
        mobile_phone="+44 7700 900000",
        home_phone="+44 20 7946 0001",
        street="12 St James's Square",
        city="London",
        state="Greater London",
        postal_code="SW1Y 4JH",
        country="United Kingdom",
        birthday=date(1815, 12, 10),
        categories=("Clients", "VIP"),
        notes="First line\nSecond line",
    )


def series(owner: str) -> CrmAppointment:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return CrmAppointment(
        id="",
        owner_id=owner,
        subject="Weekly review",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        time_zone="Europe/Paris",
        location="Room 4",
        notes="Agenda in the wiki",
        organizer_email="alice@example.com",
        is_meeting=True,
        sensitivity=Sensitivity.PRIVATE,
        reminder_minutes=15,
        categories=("Team",),
        attendees=(
            CrmAttendee("bob@example.com", "Bob", True),
            CrmAttendee("zed@partner.example", None, False),
            CrmAttendee("carol@example.com", "Carol", True),
        ),
        recurrence=Recurrence(
            kind="weekly",
            interval=1,
            days_of_week=("monday", "thursday"),
            start_date=date(2026, 3, 2),
            end_date=date(2026, 6, 29),
        ),
        modified_occurrences=(
            ModifiedOccurrence(
                original_start=start + timedelta(days=7),
                start=(start + timedelta(days=7, hours=2)).astimezone(PARIS),
                end=start + timedelta(days=7, hours=3),
                subject="Weekly review (moved)",
                location="Room 7",
            ),
        ),
        deleted_occurrences=(start + timedelta(days=14),),
    )


def task(owner: str) -> CrmTask:
    return CrmTask(
        id="",
        owner_id=owner,
        subject="Send the proposal",
        notes="Pricing v2",
        starts_at=datetime(2026, 3, 1, 8, tzinfo=UTC),
        due_at=datetime(2026, 3, 5, 17, tzinfo=UTC),
        status=TaskStatus.IN_PROGRESS,
        percent_complete=40,
        importance=Importance.HIGH,
        reminder_at=datetime(2026, 3, 5, 9, tzinfo=PARIS),
        categories=("Sales",),
    )


def same_content(a: object, b: object) -> bool:
    """Equal apart from what the CRM assigns (id, timestamps, version)."""
    keep = {"id": "", "updated_at": None, "version": 0}
    return replace(a, **keep) == replace(b, **keep)  # type: ignore[type-var]


@pytest.mark.parametrize("make", [full_contact, series, task], ids=["contact", "appt", "task"])
async def test_round_trip(crm: PostgresCrm, users: Users, make) -> None:
    record = make(users.alice)
    created = await crm.create_record(record, users.alice)

    assert uuid.UUID(created.id)
    assert created.version == 1
    assert created.updated_at is not None and created.updated_at.tzinfo is not None
    assert same_content(created, record)
    entity = {CrmContact: EntityKind.CONTACT, CrmAppointment: EntityKind.APPOINTMENT}.get(
        type(record), EntityKind.TASK
    )
    fetched = await crm.get_records(entity, [created.id])
    assert fetched == {created.id: created}
    assert await crm.list_records(users.alice, entity) == [created]
    assert await crm.list_records(users.bob, entity) == []


async def test_appointment_attendees_and_exceptions_survive_an_update(
    crm: PostgresCrm, users: Users
) -> None:
    created = await crm.create_record(series(users.alice), users.alice)
    assert isinstance(created, CrmAppointment)
    changed = replace(
        created,
        attendees=(CrmAttendee("dan@example.com", "Dan", False), *created.attendees[:1]),
        deleted_occurrences=(*created.deleted_occurrences, datetime(2026, 4, 2, 9, tzinfo=UTC)),
        recurrence=None,
    )
    updated = await crm.update_record(changed, created.version, users.alice)

    # Row and attendees were written in one transaction: the version moved once.
    assert updated.version == created.version + 1
    stored = (await crm.get_records(EntityKind.APPOINTMENT, [created.id]))[created.id]
    assert stored == updated
    assert same_content(stored, changed)


async def test_given_id_is_kept(crm: PostgresCrm, users: Users) -> None:
    wanted = str(uuid.uuid4())
    created = await crm.create_record(replace(task(users.bob), id=wanted.upper()), users.bob)
    assert created.id == wanted
    assert created.owner_id == users.bob


async def test_owner_is_the_mailbox_user(crm: PostgresCrm, users: Users) -> None:
    created = await crm.create_record(full_contact(users.alice), users.bob)
    assert created.owner_id == users.bob


async def test_get_records_skips_unknown_and_malformed_ids(crm: PostgresCrm, users: Users) -> None:
    created = await crm.create_record(task(users.alice), users.alice)
    found = await crm.get_records(
        EntityKind.TASK, [created.id, str(uuid.uuid4()), "not-a-uuid", "'; DROP TABLE x; --"]
    )
    assert list(found) == [created.id]
    assert await crm.get_records(EntityKind.TASK, []) == {}


async def test_sync_set_is_owned_plus_linked(crm: PostgresCrm, users: Users) -> None:
    mine = await crm.create_record(full_contact(users.alice), users.alice)
    firm = await crm.create_record(replace(full_contact(users.bob), last_name="Firm"), users.bob)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.alice)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.alice)  # idempotent

    listed = await crm.list_records(users.alice, EntityKind.CONTACT)
    assert {r.id for r in listed} == {mine.id, firm.id}
    assert [r.id for r in await crm.list_records(users.bob, EntityKind.CONTACT)] == [firm.id]
    assert await crm.list_records(users.carol, EntityKind.CONTACT) == []


async def test_link_to_a_missing_record_is_refused(crm: PostgresCrm, users: Users) -> None:
    with pytest.raises(CrmRejected) as rejected:
        await crm.link_user(EntityKind.TASK, str(uuid.uuid4()), users.alice)
    assert rejected.value.field == "record_id"


async def test_version_conflict_and_gone(crm: PostgresCrm, users: Users) -> None:
    created = await crm.create_record(task(users.alice), users.alice)
    updated = await crm.update_record(replace(created, subject="v2"), 1, users.alice)
    assert updated.version == 2 and updated.subject == "v2"

    with pytest.raises(VersionConflict) as conflict:
        await crm.update_record(replace(created, subject="stale"), 1, users.alice)
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    stored = await crm.get_records(EntityKind.TASK, [created.id])
    assert stored[created.id].subject == "v2"

    with pytest.raises(VersionConflict):
        await crm.delete_for_user(EntityKind.TASK, created.id, users.alice, 1, users.alice)
    await crm.delete_for_user(EntityKind.TASK, created.id, users.alice, 2, users.alice)
    assert await crm.get_records(EntityKind.TASK, [created.id]) == {}

    with pytest.raises(RecordGone):
        await crm.update_record(updated, 2, users.alice)
    with pytest.raises(RecordGone):
        await crm.update_record(replace(updated, id="garbage"), 2, users.alice)
    # A retried delete finds nothing to do.
    await crm.delete_for_user(EntityKind.TASK, created.id, users.alice, 2, users.alice)


async def test_version_bumped_by_any_writer(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    created = await crm.create_record(full_contact(users.alice), users.alice)
    await pool.execute("UPDATE crm.contacts SET company = 'Acme' WHERE id = $1", created.id)
    with pytest.raises(VersionConflict):
        await crm.update_record(created, created.version, users.alice)


async def test_linked_users_delete_only_drops_their_link(crm: PostgresCrm, users: Users) -> None:
    firm = await crm.create_record(full_contact(users.alice), users.alice)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.bob)

    await crm.delete_for_user(EntityKind.CONTACT, firm.id, users.bob, firm.version, users.bob)

    assert await crm.list_records(users.bob, EntityKind.CONTACT) == []
    assert [r.id for r in await crm.list_records(users.alice, EntityKind.CONTACT)] == [firm.id]


async def test_list_users(crm: PostgresCrm, users: Users) -> None:
    listed = await crm.list_users()
    assert [(u.id, u.email, u.display_name) for u in listed] == [
        (users.alice, "alice@example.com", "Alice"),
        (users.bob, "bob@example.com", "Bob"),
        (users.carol, "carol@example.com", "Carol"),
    ]
