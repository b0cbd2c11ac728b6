"""Meeting rules (planning/meetings.py): which copy speaks for the meeting, and what the planner
makes of an attendee's copy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ews_client.models import Appointment, Attendee, ItemRef, MeetingAppointment
from sync_service.planning import (
    APPOINTMENTS,
    ConflictPolicy,
    PassKind,
    Policy,
    Update,
    bind,
    planner,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning import meetings as rules
from sync_service.planning.actions import CreateCrm, Link
from sync_service.planning.records import CrmAppointment, CrmAttendee
from sync_service.planning.state import SyncedRow

ANN, BEN = "ann@corp.example", "ben@corp.example"
START = datetime(2026, 5, 4, 9, tzinfo=UTC)
BINDING = bind(APPOINTMENTS)


def copy(organizer: str | None = ANN, response: str | None = "none", **more: object) -> Appointment:
    return MeetingAppointment(
        subject="Kickoff",
        start=START,
        end=START.replace(hour=10),
        organizer=organizer,
        required_attendees=(Attendee(BEN), Attendee("guest@else.example")),
        is_meeting=True,
        ref=ItemRef("AAMk1", "CK1"),
        uid="UID-1",
        my_response=response,
        **more,  # type: ignore[arg-type]
    )


def record(**changes: object) -> CrmAppointment:
    base = CrmAppointment(
        id="r1", owner_id="u-ann", subject="Kickoff", starts_at=START,
        ends_at=START.replace(hour=10), organizer_email=ANN, is_meeting=True,
        attendees=(CrmAttendee(BEN, None, True), CrmAttendee("guest@else.example", None, True)),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_copy_of_reads_the_meeting_facts_of_a_meeting_only() -> None:
    found = rules.copy_of(copy(organizer="Ann@Corp.example", response="accepted"))
    assert found == rules.MeetingCopy(
        "UID-1", ANN, "accepted", (ANN, BEN, "guest@else.example"), False
    )
    assert rules.copy_of(Appointment(subject="Lunch", ref=ItemRef("x", "y"))) is None


@pytest.mark.parametrize(
    ("organizer", "response", "mailbox", "users", "owns", "source"),
    [
        (ANN, "organizer", ANN, {ANN}, False, True),  # the organizer's copy
        (ANN, "accepted", BEN, {ANN, BEN}, True, False),  # an attendee of a CRM user's meeting
        ("boss@else.example", "none", BEN, {BEN}, True, True),  # external: the owner's copy
        ("boss@else.example", "none", BEN, {BEN}, False, False),  # external: another's copy
    ],
)
def test_the_source_of_a_delivered_meetings_fields(
    organizer: str | None, response: str | None, mailbox: str, users: set[str], owns: bool,
    source: bool,
) -> None:  # fmt: skip
    sent = response == "organizer"  # delivered: an attendee's copy, or the organizer's sent
    found = rules.copy_of(copy(organizer=organizer, response=response, sent=sent))
    assert found is not None
    assert rules.is_source(found, mailbox, users, owns, "whoever@corp.example") is source


@pytest.mark.parametrize(
    ("mailbox", "owns", "record_organizer", "source"),
    [
        (ANN, True, ANN, True),  # the organizer's (and owner's) copy of a CRM meeting
        (BEN, False, ANN, False),  # a participant's copy: the sync's, yet not the meeting's
        (BEN, False, None, True),  # a shared appointment nobody organizes: each copy speaks
        (BEN, True, "boss@else.example", True),  # an external organizer: the owner's copy
    ],
)
def test_the_source_of_the_syncs_own_copies(
    mailbox: str, owns: bool, record_organizer: str | None, source: bool
) -> None:
    # Not delivered: no copy at all, or the sync's write of it (an organizer's, unsent).
    unsent = rules.copy_of(copy(organizer=None, response="organizer"))
    for found in (None, unsent):
        assert rules.is_source(found, mailbox, {ANN, BEN}, owns, record_organizer) is source


def test_an_attendee_contributes_its_response_the_organizer_none() -> None:
    attendee = rules.copy_of(copy(response="tentative"))
    organizer = rules.copy_of(copy(response="organizer"))
    unknown = rules.copy_of(copy(response=None))
    assert attendee and organizer and unknown
    assert rules.attendee_response(attendee, BEN) == "tentative"
    assert rules.attendee_response(unknown, BEN) == "none"
    assert rules.attendee_response(organizer, ANN) is None


def test_only_a_delivered_meeting_is_named_by_its_uid() -> None:
    written = rules.copy_of(copy(response="organizer"))  # the sync's SendToNone write
    sent = rules.copy_of(copy(response="organizer", sent=True))
    attendee = rules.copy_of(copy())
    assert written and sent and attendee
    assert not rules.delivered(written, ANN)
    assert rules.delivered(sent, ANN) and rules.delivered(attendee, BEN)


def _row(item: Appointment, crm: CrmAppointment) -> SyncedRow:
    ex = snapshot_exchange(BINDING, item)
    cr = snapshot_crm(BINDING, crm)
    assert item.ref is not None
    return SyncedRow(crm.id, item.ref.id, item.ref.change_key, cr.hash, ex.hash, cr.fields)


def test_an_attendees_edit_is_not_written_to_the_crm_but_the_meetings_change_reaches_it() -> None:
    synced = copy()
    row = _row(synced, record())
    edited = replace(synced, subject="My kickoff", ref=ItemRef("AAMk1", "CK2"))
    seen = rules.as_unchanged(snapshot_exchange(BINDING, edited, row), row)
    # Unmasked, the edit would be written to the CRM; masked, nothing happens.
    exchange_wins = ConflictPolicy(Policy.EXCHANGE_WINS)
    crm = [snapshot_crm(BINDING, record())]
    loud = planner.plan(BINDING, crm, [snapshot_exchange(BINDING, edited, row)], [row])
    assert [a.crm_changes for a in loud.actions if isinstance(a, Update)] == [{"subject"}]
    quiet = planner.plan(BINDING, crm, [seen], [row], policy=exchange_wins)
    # (at most the row learns the copy's new change key: no write on either side)
    assert all(
        isinstance(a, Link) or (isinstance(a, Update) and not a.crm_changes | a.model_fields)
        for a in quiet.actions
    )
    # The organizer moves it (a CRM change): the copy gets the meeting's time, with its ref.
    moved = [snapshot_crm(BINDING, record(starts_at=START.replace(hour=8)))]
    changed = planner.plan(BINDING, moved, [seen], [row], policy=exchange_wins)
    [update] = changed.actions
    assert isinstance(update, Update)
    assert (update.crm_changes, update.exchange_changes) == (frozenset(), {"start"})
    assert update.ref == ItemRef("AAMk1", "CK2")  # written at the copy's current change key


def test_an_attendees_first_copy_links_to_the_meeting_without_writing_the_crm() -> None:
    item = replace(copy(), subject="Kickoff (copy)")  # differs from the CRM: still only linked
    crm = snapshot_crm(BINDING, record())
    paired = rules.as_paired(snapshot_exchange(BINDING, item), crm)
    result = planner.plan(
        BINDING, [crm], [paired], [], kind=PassKind.EXPRESS,
        policy=ConflictPolicy(Policy.EXCHANGE_WINS),
    )  # fmt: skip
    assert [type(a) for a in result.actions] == [Link]
    # Not paired, the same copy would become a second CRM appointment.
    alone = planner.plan(BINDING, [], [snapshot_exchange(BINDING, item)], [], kind=PassKind.EXPRESS)
    assert [type(a) for a in alone.actions] == [CreateCrm]


def test_a_delivered_meeting_is_not_created_again_in_an_attendees_mailbox() -> None:
    crm = [snapshot_crm(BINDING, record()), snapshot_crm(BINDING, record(id="r2"))]
    meeting_ids = {"r1": "UID-1", "r2": "UID-2"}
    linked = [SyncedRow("r2", "AAMk2", "CK", "h", "h", {})]
    assert rules.held_back(crm, meeting_ids, linked, seen=set(), organized=set()) == {"r1"}
    assert rules.held_back(crm, meeting_ids, linked, seen={"UID-1"}, organized=set()) == set()
    assert rules.held_back(crm, meeting_ids, [], seen=set(), organized={"r1", "r2"}) == set()
    assert rules.held_back(crm, {}, [], seen=set(), organized=set()) == set()


def test_a_second_copy_of_a_meeting_already_held_is_left_out() -> None:
    assert rules.second_copy("r1", {"r1", "r2"})
    assert not rules.second_copy("r3", {"r1"}) and not rules.second_copy(None, {"r1"})


def test_an_attendee_copys_attendee_lists_are_the_organizers_to_keep() -> None:
    synced = copy()
    row = _row(synced, record())
    seen = rules.as_unchanged(snapshot_exchange(BINDING, synced, row), row)
    moved = record(
        starts_at=START.replace(hour=8),
        attendees=(CrmAttendee(BEN, None, True), CrmAttendee("new@else.example", None, True)),
    )
    result = planner.plan(BINDING, [snapshot_crm(BINDING, moved)], [seen], [row])
    [before] = result.actions
    assert isinstance(before, Update) and "required_attendees" in before.model_fields
    [after] = rules.without_attendee_writes(result, {"AAMk1"}).actions
    assert isinstance(after, Update)
    assert after.model_fields == before.model_fields - {"required_attendees", "optional_attendees"}
    assert "start" in after.exchange_changes and "attendees" not in after.exchange_changes
    assert rules.without_attendee_writes(result, {"other"}) == result


def test_a_copy_paired_by_uid_gets_the_crm_id_stamped() -> None:
    crm = snapshot_crm(BINDING, record())
    paired = rules.as_paired(snapshot_exchange(BINDING, copy()), crm)
    result = planner.plan(BINDING, [crm], [paired], [], kind=PassKind.EXPRESS)
    [link] = result.actions
    assert isinstance(link, Link)
    [stamp] = rules.stamped(result, {"AAMk1"}).actions
    assert isinstance(stamp, Update) and stamp.stamp and stamp.row == link.row
    assert (stamp.crm_changes, stamp.model_fields) == (frozenset(), frozenset())
    assert stamp.ref == ItemRef("AAMk1", "CK1")
    assert rules.stamped(result, set()) == result
