"""Normalization, comparison keys, content hashes and the converters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

from ews_client.models import (
    Appointment,
    Attendee,
    Contact,
    ItemRef,
    ModifiedOccurrence,
    PostalAddress,
    Recurrence,
    Task,
    TaskStatus,
)
from sync_service.planning import (
    APPOINTMENTS,
    CONTACTS,
    TASKS,
    CrmAppointment,
    CrmAttendee,
    CrmContact,
    CrmTask,
    bind,
    model_fields,
    new_item,
    new_record,
    snapshot_crm,
    snapshot_exchange,
    updated_record,
)
from sync_service.planning import values as v

REF = ItemRef("item1", "ck1")
CONTACT_B = bind(CONTACTS)


def test_text_normalization() -> None:
    assert v.norm_line("  Ann \t  Lee ") == "Ann Lee"
    assert v.norm_line("   ") is None
    assert v.norm_text("one  \r\ntwo\r\n\r\n") == "one\ntwo"


def test_phone_compared_on_digits_but_kept_as_entered() -> None:
    assert v.key_phone("+1 (555) 010-0000") == v.key_phone("+15550100000")
    assert v.key_phone("555 0100") != v.key_phone("+555 0100")
    assert v.PHONE.normalize(" +1 (555) 010-0000 ") == "+1 (555) 010-0000"


def test_datetimes_are_utc_seconds() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=paris)
    assert v.norm_datetime(moment) == "2026-03-01T09:00:00Z"
    assert v.parse_datetime("2026-03-01T09:00:00Z") == datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_categories_are_a_set() -> None:
    assert v.norm_categories(("VIP", "red", "Red ", "")) == ["red", "VIP"]


def test_pick_list_value_map_defaults_unknown_values() -> None:
    status = TASKS.specs[5]
    assert status.name == "status"
    assert status.codec.normalize(TaskStatus.DEFERRED) == "deferred"
    assert status.codec.normalize("bogus") == "not_started"
    assert status.codec.normalize(" Done ") == "completed"
    assert status.codec.normalize("In Progress") == "in_progress"


def test_exchange_noise_does_not_change_the_hash() -> None:
    item = Contact(given_name="Ann", emails=("ann@x.com",), ref=REF, crm_id="c1")
    noisy = replace(
        item, ref=ItemRef("item1", "ck2"), display_name="Dr Ann", last_modified=datetime.now(UTC)
    )
    assert snapshot_exchange(CONTACT_B, item).hash == snapshot_exchange(CONTACT_B, noisy).hash


def test_case_and_format_do_not_change_the_hash() -> None:
    record = CrmContact("c1", "u1", first_name="Ann", email="Ann@X.com", mobile_phone="+1 555 0100")
    item = Contact(given_name=" Ann", emails=("ann@x.com",), mobile_phone="+15550100", ref=REF)
    assert snapshot_crm(CONTACT_B, record).hash == snapshot_exchange(CONTACT_B, item).hash


def test_content_change_changes_the_hash() -> None:
    record = CrmContact("c1", "u1", first_name="Ann")
    assert (
        snapshot_crm(CONTACT_B, record).hash
        != snapshot_crm(CONTACT_B, replace(record, first_name="Anna")).hash
    )


def test_contact_round_trip_through_both_sides() -> None:
    record = CrmContact(
        "c1",
        "u1",
        first_name="Ann",
        last_name="Lee",
        email="a@x.com",
        email3="c@x.com",
        street="1 Main St",
        city="Oslo",
        birthday=date(1990, 5, 17),
        categories=("VIP",),
        notes="line one\nline two",
    )
    fields = snapshot_crm(CONTACT_B, record).fields
    item = new_item(CONTACT_B, fields, "c1")
    assert isinstance(item, Contact)
    assert item.emails == ("a@x.com", "c@x.com") and item.display_name == "Ann Lee"
    assert item.business_address == PostalAddress(street="1 Main St", city="Oslo")
    back = new_record(
        CONTACT_B, snapshot_exchange(CONTACT_B, replace(item, ref=REF)).fields, "c1", "u1"
    )
    assert snapshot_crm(CONTACT_B, back).hash == snapshot_crm(CONTACT_B, record).hash


def test_update_writes_only_named_fields() -> None:
    old = CrmContact("c1", "u1", first_name="Ann", job_title="CEO", version=7)
    target = {**snapshot_crm(CONTACT_B, old).fields, "job_title": "CTO", "first_name": "X"}
    new = updated_record(CONTACT_B, old, target, ["job_title"])
    assert (new.first_name, new.job_title, new.version) == ("Ann", "CTO", 7)
    assert model_fields(CONTACT_B, ["city", "first_name"]) == {
        "business_address",
        "given_name",
        "display_name",
    }


def test_appointment_round_trip_with_series() -> None:
    binding = bind(APPOINTMENTS)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    record = CrmAppointment(
        "a1",
        "u1",
        subject="Weekly",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        time_zone="Europe/Paris",
        organizer_email="Boss@x.com",
        is_meeting=True,
        attendees=(CrmAttendee("b@x.com", "Bob", True), CrmAttendee("c@x.com", None, False)),
        recurrence=Recurrence("weekly", days_of_week=("sunday",), start_date=date(2026, 3, 1)),
        modified_occurrences=(
            ModifiedOccurrence(
                start + timedelta(days=7),
                start + timedelta(days=7, hours=2),
                start + timedelta(days=7, hours=3),
                subject="Moved",
            ),
        ),
        deleted_occurrences=(start + timedelta(days=14),),
    )
    fields = snapshot_crm(binding, record).fields
    item = new_item(binding, fields, "a1")
    assert isinstance(item, Appointment)
    assert item.required_attendees == (Attendee("b@x.com", "Bob"),)
    assert item.optional_attendees == (Attendee("c@x.com", None),)
    assert item.recurrence == record.recurrence and item.time_zone == "Europe/Paris"
    assert (
        snapshot_exchange(binding, replace(item, ref=REF)).hash
        == snapshot_crm(binding, record).hash
    )


def test_attendee_names_are_not_content() -> None:
    binding = bind(APPOINTMENTS)
    item = Appointment(subject="M", required_attendees=(Attendee("b@x.com", "Bob"),), ref=REF)
    renamed = replace(item, required_attendees=(Attendee("B@x.com", "Robert (Sales)"),))
    assert snapshot_exchange(binding, item).hash == snapshot_exchange(binding, renamed).hash


def test_task_round_trip() -> None:
    binding = bind(TASKS)
    due = datetime(2026, 3, 1, 17, tzinfo=UTC)
    record = CrmTask(
        "t1", "u1", subject="Call", due_at=due, status=TaskStatus.IN_PROGRESS, percent_complete=50
    )
    item = new_item(binding, snapshot_crm(binding, record).fields, "t1")
    assert isinstance(item, Task)
    assert (item.due, item.status, item.percent_complete, item.crm_id) == (
        due,
        TaskStatus.IN_PROGRESS,
        50,
        "t1",
    )


def test_unchanged_change_key_reuses_the_synced_row() -> None:
    from sync_service.planning import row_for

    item = Contact(given_name="Ann", ref=REF, crm_id="c1")
    row = row_for(CONTACT_B, "c1", REF, snapshot_exchange(CONTACT_B, item).fields)
    # The row says "Ann" at ck1; content is not read again at the same change key.
    lying = replace(item, given_name="Changed without a new change key")
    assert snapshot_exchange(CONTACT_B, lying, row).hash == row.exchange_hash
    moved = replace(lying, ref=ItemRef("item1", "ck2"))
    assert snapshot_exchange(CONTACT_B, moved, row).hash != row.exchange_hash
    in_flight = replace(row, intent_hash="x")
    assert snapshot_exchange(CONTACT_B, lying, in_flight).hash != row.exchange_hash
    narrower = replace(row, fields={"first_name": "Ann"})
    assert snapshot_exchange(CONTACT_B, lying, narrower).hash != row.exchange_hash


def test_fields_survive_a_jsonb_round_trip_exactly() -> None:
    import json

    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    appointment = CrmAppointment(
        "a1",
        "u1",
        subject="S",
        starts_at=start,
        attendees=(CrmAttendee("b@x.com", None, False),),
        recurrence=Recurrence("relative_monthly", week_index="last", days_of_week=("friday",)),
        modified_occurrences=(ModifiedOccurrence(start, start, start),),
        deleted_occurrences=(start,),
    )
    for binding, record in (
        (bind(APPOINTMENTS), appointment),
        (CONTACT_B, CrmContact("c1", "u1", first_name="Ann", birthday=date(1990, 1, 2))),
        (bind(TASKS), CrmTask("t1", "u1", subject="T", due_at=start)),
    ):
        fields = snapshot_crm(binding, record).fields
        assert json.loads(json.dumps(fields)) == fields
