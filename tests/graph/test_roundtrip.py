"""Full rounds through GraphClient against the simulator over TLS, with a real msal token."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ews_client.errors import ConflictError
from ews_client.io.auth import BasicAuth
from ews_client.io.ews import EwsClient
from ews_client.io.graph import GraphClient
from ews_client.models import (
    Appointment,
    Attendee,
    Contact,
    EntityKind,
    Importance,
    ModifiedOccurrence,
    PostalAddress,
    Recurrence,
    Removal,
    SyncMarker,
    Task,
    TaskStatus,
    Upsert,
)
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX

NOW = datetime.now(UTC).replace(microsecond=0, second=0, minute=0)


def _upserts(changes: tuple[object, ...]) -> dict[str, object]:
    return {c.item.ref.id: c.item for c in changes if isinstance(c, Upsert) and c.item.ref}


async def test_contact_round(client: GraphClient, sim: RunningSimulator) -> None:
    contact = Contact(
        given_name="Ada",
        surname="Lovelace",
        display_name="Ada Lovelace",
        company="Engines",
        emails=("ada@x.example", "a@y.example"),
        business_phone="+44 1",
        mobile_phone="+44 2",
        business_address=PostalAddress("1 St", "London", None, "N1", "UK"),
        birthday=date(1815, 12, 10),
        categories=("vip",),
        notes="first",
        crm_id="crm-c1",
    )
    first = await client.sync_changes(BOX, EntityKind.CONTACT, None)
    assert first.changes == ()
    ref = await client.create_item(BOX, contact)
    assert ref.change_key.startswith('W/"')
    round1 = await client.sync_changes(BOX, EntityKind.CONTACT, first.sync_state)
    got = _upserts(round1.changes)[ref.id]
    assert replace(got, ref=None, last_modified=None) == contact
    # Nothing changed: an empty round.
    quiet = await client.sync_changes(BOX, EntityKind.CONTACT, round1.sync_state)
    assert quiet.changes == ()
    new_ref = await client.update_item(
        BOX,
        ref,
        replace(contact, job_title="Countess", mobile_phone=None),
        frozenset({"job_title", "mobile_phone"}),
    )
    assert new_ref.change_key != ref.change_key
    with pytest.raises(ConflictError):  # the old etag is stale: 412
        await client.update_item(BOX, ref, contact, frozenset({"surname"}))
    round2 = await client.sync_changes(BOX, EntityKind.CONTACT, quiet.sync_state)
    changed = _upserts(round2.changes)[ref.id]
    assert changed.job_title == "Countess" and changed.mobile_phone is None  # type: ignore[attr-defined]
    assert await client.find_by_crm_id(BOX, EntityKind.CONTACT, "crm-c1") == new_ref
    assert await client.find_by_crm_id(BOX, EntityKind.CONTACT, "nobody's") is None
    await client.delete_item(BOX, new_ref, EntityKind.CONTACT)
    await client.delete_item(BOX, new_ref, EntityKind.CONTACT)  # already gone: fine
    round3 = await client.sync_changes(BOX, EntityKind.CONTACT, round2.sync_state)
    assert round3.changes == (Removal(ref.id),)


async def test_task_round(client: GraphClient) -> None:
    task = Task(
        subject="Call back",
        notes="about the offer",
        due=NOW + timedelta(days=2),
        status=TaskStatus.IN_PROGRESS,
        importance=Importance.HIGH,
        reminder_at=NOW + timedelta(days=1),
        categories=("crm",),
        crm_id="crm-t1",
    )
    ref = await client.create_item(BOX, task)
    items = await client.list_items(BOX, EntityKind.TASK)
    [got] = [i for i in items if i.ref and i.ref.id == ref.id]
    assert replace(got, ref=None, last_modified=None) == task
    done = replace(task, status=TaskStatus.COMPLETED, completed=NOW)
    ref2 = await client.update_item(BOX, ref, done, frozenset({"status", "completed"}))
    assert ref2.change_key != ref.change_key
    [again] = [i for i in await client.list_items(BOX, EntityKind.TASK) if i.ref == ref2]
    assert isinstance(again, Task) and again.status is TaskStatus.COMPLETED
    assert again.percent_complete == 100
    assert await client.find_by_crm_id(BOX, EntityKind.TASK, "crm-t1") == ref2
    await client.delete_item(BOX, ref2, EntityKind.TASK)
    assert await client.find_by_crm_id(BOX, EntityKind.TASK, "crm-t1") is None


def _series() -> Appointment:
    start = (NOW + timedelta(days=3)).replace(hour=8)
    rec = Recurrence(
        "weekly",
        days_of_week=(start.strftime("%A").lower(),),
        start_date=start.astimezone(UTC).date(),
        occurrences=6,
    )
    second, third = start + timedelta(days=7), start + timedelta(days=14)
    moved = ModifiedOccurrence(
        second,
        second + timedelta(hours=2),
        second + timedelta(hours=3),
        "Moved",
        "Room 2",
        "changed",
    )
    return Appointment(
        subject="Weekly",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="Europe/Berlin",
        location="Room 1",
        notes="agenda",
        required_attendees=(Attendee("bob@x.example", "Bob"),),
        is_meeting=True,
        reminder_minutes=15,
        recurrence=rec,
        modified_occurrences=(moved,),
        deleted_occurrences=(third,),
        crm_id="crm-a1",
    )


async def test_recurring_event_round(client: GraphClient) -> None:
    series = _series()
    single = Appointment(
        subject="Lunch",
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=1, hours=1),
        crm_id="crm-a2",
    )
    base = await client.sync_changes(BOX, EntityKind.APPOINTMENT, None)
    ref = await client.create_item(BOX, series)
    single_ref = await client.create_item(BOX, single)
    result = await client.sync_changes(BOX, EntityKind.APPOINTMENT, base.sync_state)
    got = _upserts(result.changes)
    assert set(got) == {ref.id, single_ref.id}
    master = got[ref.id]
    assert replace(master, ref=None, last_modified=None) == series
    assert replace(got[single_ref.id], ref=None, last_modified=None) == single
    # Delete another occurrence and move the moved one back: both survive the round trip.
    fourth = series.start + timedelta(days=21)  # type: ignore[operator]
    edited = replace(
        series, modified_occurrences=(), deleted_occurrences=(*series.deleted_occurrences, fourth)
    )
    ref2 = await client.update_item(
        BOX,
        master.ref,
        edited,  # type: ignore[arg-type]
        frozenset({"modified_occurrences", "deleted_occurrences"}),
    )
    again = await client.sync_changes(BOX, EntityKind.APPOINTMENT, result.sync_state)
    now_master = _upserts(again.changes)[ref.id]
    assert now_master.ref == ref2  # type: ignore[attr-defined]
    assert now_master.deleted_occurrences == edited.deleted_occurrences  # type: ignore[attr-defined]
    assert now_master.modified_occurrences[0].subject == "Moved"  # type: ignore[attr-defined]
    assert await client.find_by_crm_id(BOX, EntityKind.APPOINTMENT, "crm-a1") == ref2
    await client.delete_item(BOX, ref2, EntityKind.APPOINTMENT)
    gone = await client.sync_changes(BOX, EntityKind.APPOINTMENT, again.sync_state)
    assert Removal(ref.id) in gone.changes


async def test_marker(client: GraphClient) -> None:
    assert await client.read_marker(BOX) is None
    await client.write_marker(BOX, SyncMarker(1, NOW))
    await client.write_marker(BOX, SyncMarker(2, NOW + timedelta(minutes=5)))
    assert await client.read_marker(BOX) == SyncMarker(2, NOW + timedelta(minutes=5))


async def test_visible_through_both_protocols(client: GraphClient, sim: RunningSimulator) -> None:
    auth = BasicAuth(sim.username, sim.password)
    async with EwsClient(sim.ews_url, auth, ca_file=sim.ca_file) as ews:
        from_ews = Contact(given_name="Via", surname="Ews", emails=("e@x.example",), crm_id="crm-e")
        ews_ref = await ews.create_item(BOX, from_ews)
        from_graph = Task(subject="Via Graph", due=NOW, crm_id="crm-g")
        graph_ref = await client.create_item(BOX, from_graph)
        contacts = await client.list_items(BOX, EntityKind.CONTACT)
        [seen] = [c for c in contacts if c.crm_id == "crm-e"]
        assert replace(seen, ref=None, last_modified=None) == from_ews
        assert await client.find_by_crm_id(BOX, EntityKind.CONTACT, "crm-e") is not None
        tasks = await ews.list_items(BOX, EntityKind.TASK)
        [seen_task] = [t for t in tasks if t.crm_id == "crm-g"]
        assert seen_task.subject == "Via Graph" and seen_task.due == NOW  # type: ignore[union-attr]
        assert ews_ref.id and graph_ref.id
