"""Meetings with several CRM participants (issue 16): one CRM appointment per meeting, however
many CRM users' mailboxes hold a copy; the organizer's copy is the source of its fields, an
attendee's copy only of that attendee's response; the sync mails nobody."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from lxml import etree

from ews_client.models import EntityKind
from ews_client.simulator import meetings
from ews_client.simulator.store import Mailbox, StoredItem
from ews_client.simulator.writes import simple_props
from ews_client.simulator.xmlutil import insert_ordered, t
from sync_service.db.queue import PassKind
from sync_service.planning.records import CrmAppointment, CrmAttendee
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

ANN, BEN, CAT = "ann@sim.example", "ben@sim.example", "cat@sim.example"
GUEST = "guest@elsewhere.example"
START = (datetime.now(UTC) + timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def box(h: Harness, address: str) -> Mailbox:
    return h.sim.sim.mailboxes[address]


def calendar(h: Harness, address: str) -> list[StoredItem]:
    mailbox = box(h, address)
    return [mailbox.items[i] for i in mailbox.folder("calendar").items]


def organize_in_outlook(h: Harness, subject: str) -> StoredItem:
    """Ann sends a meeting from Outlook to Ben, Cat and a guest: her own sending, not the
    sync's (so not in the outbox), and Exchange puts a copy in Ben's and Cat's calendars."""
    fields = {"Subject": subject, "Start": START.strftime(STAMP),
              "End": (START + timedelta(hours=1)).strftime(STAMP)}  # fmt: skip
    props = simple_props("CalendarItem", fields)
    people = etree.Element(t("RequiredAttendees"))
    for address in (BEN, CAT, GUEST):
        mailbox = etree.SubElement(etree.SubElement(people, t("Attendee")), t("Mailbox"))
        etree.SubElement(mailbox, t("EmailAddress")).text = address
    insert_ordered(props, people, "CalendarItemType")
    organizer = box(h, ANN)
    item = organizer.add(organizer.folder("calendar"), "CalendarItem", props)
    meetings.ensure_uid(item)
    meetings.send_as_owner(h.sim.sim.quota, organizer, item)
    return item


def move_in_outlook(h: Harness, address: str, item: StoredItem, hours: int) -> None:
    """The owner moves the meeting and saves it without sending an update."""
    for name, when in (("Start", START), ("End", START + timedelta(hours=1))):
        node = etree.Element(t(name))
        node.text = (when + timedelta(hours=hours)).strftime(STAMP)
        insert_ordered(item.props, node, "CalendarItemType")
    box(h, address).touch(item)


def retitle_in_outlook(h: Harness, address: str, item: StoredItem, subject: str) -> None:
    node = etree.Element(t("Subject"))
    node.text = subject
    insert_ordered(item.props, node, "CalendarItemType")
    box(h, address).touch(item)


async def appointments(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT a.id::text, a.subject, a.starts_at, a.organizer_email, u.email AS owner "
        "FROM crm.appointments a JOIN crm.users u ON u.id = a.owner_id ORDER BY a.subject"
    )


async def linked_crm_ids(pool: asyncpg.Pool) -> dict[str, set[str]]:
    rows = await pool.fetch(
        "SELECT m.email, l.crm_id FROM sync.item_links l JOIN sync.mailboxes m "
        "ON m.id = l.mailbox_id WHERE l.entity = 'appointment'"
    )
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row["email"], set()).add(row["crm_id"])
    return out


async def responses(h: Harness, crm_id: str) -> dict[str, str]:
    return await h.crm.meetings.responses(crm_id)


async def sync_all(
    h: Harness, kind: PassKind = PassKind.EXPRESS, order: tuple[str, ...] = (ANN, BEN, CAT)
) -> None:
    for address in order:
        assert await h.sync(address, kind) == Done("ok")


def updates(h: Harness) -> int:
    requests = h.sim.sim.counters()["requests"]
    assert isinstance(requests, dict)
    return int(requests.get("UpdateItem", 0)) + int(requests.get("CreateItem", 0))


@pytest.mark.parametrize(
    "order", [(ANN, BEN, CAT), (CAT, BEN, ANN)], ids=["ann-first", "cat-first"]
)
async def test_a_meeting_of_three_crm_users_is_one_crm_appointment_mailing_nobody(
    pool: asyncpg.Pool, order: tuple[str, ...], backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        for address in (ANN, BEN, CAT):
            await h.add_user(address)
        await sync_all(h, PassKind.INITIAL)
        sent = organize_in_outlook(h, "Kickoff")
        # Whichever copy is synced first, the appointment is the organizer's.
        await sync_all(h, order=order)
        # One appointment, Ann's, organized by her; each of the three mailboxes holds one
        # copy of it, linked to it; Ben and Cat are its participants.
        [record] = await appointments(pool)
        assert (record["subject"], record["owner"], record["organizer_email"]) == (
            "Kickoff", ANN, ANN,
        )  # fmt: skip
        crm_id = record["id"]
        assert await linked_crm_ids(pool) == {a: {crm_id} for a in (ANN, BEN, CAT)}
        assert [len(calendar(h, a)) for a in (ANN, BEN, CAT)] == [1, 1, 1]
        participants = await pool.fetch(
            "SELECT u.email FROM crm.record_users r JOIN crm.users u ON u.id = r.user_id "
            "WHERE r.record_id = $1::uuid ORDER BY u.email",
            crm_id,
        )
        assert [p["email"] for p in participants] == [BEN, CAT]
        attendees = await pool.fetch(
            "SELECT email FROM crm.appointment_attendees WHERE appointment_id = $1::uuid "
            "ORDER BY email",
            crm_id,
        )
        assert {a["email"].lower() for a in attendees} == {BEN, CAT, GUEST}
        assert await responses(h, crm_id) == {BEN: "none", CAT: "none"}

        # Ben accepts in Outlook: his response reaches his CRM participant row.
        [ben_copy] = calendar(h, BEN)
        meetings.respond(h.sim.sim.quota, box(h, BEN), ben_copy, "Accept", send=True)
        await sync_all(h)
        assert await responses(h, crm_id) == {BEN: "accepted", CAT: "none"}
        assert [len(calendar(h, a)) for a in (ANN, BEN, CAT)] == [1, 1, 1]

        # Ann moves the meeting (saved, no update sent): the CRM takes her time, and the
        # sync itself writes it to Ben's and Cat's copies.
        move_in_outlook(h, ANN, sent, 2)
        await sync_all(h)
        await sync_all(h)
        moved = START + timedelta(hours=2)
        [record] = await appointments(pool)
        assert record["starts_at"] == moved
        for address in (BEN, CAT):
            [held] = calendar(h, address)
            assert held.props.findtext(t("Start")) == moved.strftime(STAMP), address
            assert meetings.uid_of(held) == meetings.uid_of(sent)

        # Cat retitles her copy: her local change, not the meeting's.
        [cat_copy] = calendar(h, CAT)
        retitle_in_outlook(h, CAT, cat_copy, "My kickoff")
        await sync_all(h)
        [record] = await appointments(pool)
        assert record["subject"] == "Kickoff"
        assert [c.props.findtext(t("Subject")) for c in calendar(h, ANN)] == ["Kickoff"]

        # Settled: more rounds, on both kinds of pass, write nothing anywhere.
        before = updates(h)
        await sync_all(h)
        await sync_all(h, PassKind.COMPLETE)
        await sync_all(h)
        assert updates(h) == before
        assert len(await appointments(pool)) == 1
        assert await responses(h, crm_id) == {BEN: "accepted", CAT: "none"}
        assert h.sim.sim.outbox.messages == []
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0


async def test_a_meeting_organized_outside_the_crm_is_one_appointment_of_attendee_copies(
    pool: asyncpg.Pool, backend: str
) -> None:
    boss = "boss@sim.example"  # a mailbox of the same Exchange, but no CRM user
    async with harness(pool, backend=backend) as h:
        for address in (BEN, CAT):
            await h.add_user(address)
        h.sim.sim.add_mailbox(boss)
        for address in (CAT, BEN):
            assert await h.sync(address, PassKind.INITIAL) == Done("ok")
        fields = {"Subject": "Vendor call", "Start": START.strftime(STAMP),
                  "End": (START + timedelta(hours=1)).strftime(STAMP)}  # fmt: skip
        props = simple_props("CalendarItem", fields)
        people = etree.Element(t("RequiredAttendees"))
        for address in (BEN, CAT):
            mailbox = etree.SubElement(etree.SubElement(people, t("Attendee")), t("Mailbox"))
            etree.SubElement(mailbox, t("EmailAddress")).text = address
        insert_ordered(props, people, "CalendarItemType")
        organizer = box(h, boss)
        sent = organizer.add(organizer.folder("calendar"), "CalendarItem", props)
        meetings.ensure_uid(sent)
        meetings.send_as_owner(h.sim.sim.quota, organizer, sent)
        # Cat's pass comes first: her copy makes the appointment (hers), Ben's pairs with it.
        for address in (CAT, BEN):
            assert await h.sync(address) == Done("ok")
        [record] = await appointments(pool)
        assert (record["subject"], record["owner"], record["organizer_email"]) == (
            "Vendor call", CAT, boss,
        )  # fmt: skip
        assert await linked_crm_ids(pool) == {a: {record["id"]} for a in (BEN, CAT)}
        # The organizer moves it and sends the update: Exchange changes both copies; the
        # owner's copy brings the time to the CRM, Ben's copy only his answer.
        [ben_copy] = calendar(h, BEN)
        meetings.respond(h.sim.sim.quota, box(h, BEN), ben_copy, "Decline", send=True)
        move_in_outlook(h, boss, sent, 3)
        meetings.send_as_owner(h.sim.sim.quota, organizer, sent)
        for _ in range(2):
            for address in (BEN, CAT):
                assert await h.sync(address) == Done("ok")
        [record] = await appointments(pool)
        assert record["starts_at"] == START + timedelta(hours=3)
        assert await responses(h, record["id"]) == {BEN: "declined", CAT: "none"}
        # Ben retitles his copy: not the meeting's subject.
        [ben_copy] = calendar(h, BEN)
        retitle_in_outlook(h, BEN, ben_copy, "Ugh, vendors")
        for address in (BEN, CAT):
            assert await h.sync(address) == Done("ok")
        [record] = await appointments(pool)
        assert record["subject"] == "Vendor call"
        assert [len(calendar(h, a)) for a in (BEN, CAT)] == [1, 1]
        assert h.sim.sim.outbox.messages == []
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0


async def test_a_crm_meeting_reaches_each_participant_as_the_syncs_copy_mailing_nobody(
    pool: asyncpg.Pool, backend: str
) -> None:
    # SYNC_MEETING_INVITATIONS=never: no meeting request, so Exchange delivers no copy; the
    # sync places each CRM participant's copy itself, and only the organizer's speaks.
    async with harness(pool, backend=backend) as h:
        ids = {address: (await h.add_user(address))[0] for address in (ANN, BEN, CAT)}
        guests = tuple(CrmAttendee(a, None, True) for a in (BEN, CAT, GUEST))
        made = await h.crm.create_record(
            CrmAppointment(
                id="", owner_id=ids[ANN], subject="Board", starts_at=START,
                ends_at=START + timedelta(hours=1), organizer_email=ANN, is_meeting=True,
                attendees=guests,
            ),
            ids[ANN],
        )  # fmt: skip
        for address in (BEN, CAT):
            await h.crm.link_user(EntityKind.APPOINTMENT, made.id, ids[address])
        await sync_all(h, PassKind.INITIAL)
        assert await linked_crm_ids(pool) == {a: {made.id} for a in (ANN, BEN, CAT)}
        assert [len(calendar(h, a)) for a in (ANN, BEN, CAT)] == [1, 1, 1]
        # Ann moves it in the CRM: every copy follows.
        await pool.execute(
            "UPDATE crm.appointments SET starts_at = starts_at + interval '1 hour', "
            "ends_at = ends_at + interval '1 hour' WHERE id = $1::uuid",
            made.id,
        )
        await sync_all(h)
        for address in (ANN, BEN, CAT):
            [held] = calendar(h, address)
            assert held.props.findtext(t("Start")) == (START + timedelta(hours=1)).strftime(STAMP)
        # Cat retitles her copy: not the meeting's; Ann retitles hers: the meeting's.
        [cat_copy] = calendar(h, CAT)
        retitle_in_outlook(h, CAT, cat_copy, "Board (boring)")
        await sync_all(h)
        assert [r["subject"] for r in await appointments(pool)] == ["Board"]
        [ann_copy] = calendar(h, ANN)
        retitle_in_outlook(h, ANN, ann_copy, "Board meeting")
        await sync_all(h)
        await sync_all(h)
        assert [r["subject"] for r in await appointments(pool)] == ["Board meeting"]
        subjects = [c.props.findtext(t("Subject")) for a in (BEN, CAT) for c in calendar(h, a)]
        assert subjects == ["Board meeting", "Board meeting"]
        before = updates(h)
        await sync_all(h)
        await sync_all(h, PassKind.COMPLETE)
        assert updates(h) == before
        assert h.sim.sim.outbox.messages == []
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0


async def test_the_organizers_sent_update_and_a_new_crm_attendee(
    pool: asyncpg.Pool, backend: str
) -> None:
    dan = "dan@sim.example"
    async with harness(pool, backend=backend) as h:
        for address in (ANN, BEN, CAT, dan):
            await h.add_user(address)
        await sync_all(h, PassKind.INITIAL, order=(ANN, BEN, CAT, dan))
        sent = organize_in_outlook(h, "Review")
        await sync_all(h)
        [record] = await appointments(pool)
        # Ann moves it, invites Dan too, and sends the update: Exchange changes Ben's and
        # Cat's copies and gives Dan his; the sync brings the CRM along and pairs Dan's copy.
        move_in_outlook(h, ANN, sent, 1)
        meetings.set_attendees(sent, (BEN, CAT, GUEST, dan), ())
        meetings.send_as_owner(h.sim.sim.quota, box(h, ANN), sent)
        for _ in range(2):
            await sync_all(h, order=(ANN, BEN, CAT, dan))
        assert [r["id"] for r in await appointments(pool)] == [record["id"]]
        assert (await appointments(pool))[0]["starts_at"] == START + timedelta(hours=1)
        assert await linked_crm_ids(pool) == {a: {record["id"]} for a in (ANN, BEN, CAT, dan)}
        participants = await pool.fetch(
            "SELECT u.email FROM crm.record_users r JOIN crm.users u ON u.id = r.user_id "
            "WHERE r.record_id = $1::uuid ORDER BY u.email",
            record["id"],
        )
        assert [p["email"] for p in participants] == [BEN, CAT, dan]
        assert await responses(h, record["id"]) == {BEN: "none", CAT: "none", dan: "none"}
        for address in (BEN, CAT, dan):
            [held] = calendar(h, address)
            assert held.props.findtext(t("Start")) == (START + timedelta(hours=1)).strftime(STAMP)
        before = updates(h)
        await sync_all(h, PassKind.COMPLETE, order=(ANN, BEN, CAT, dan))
        assert updates(h) == before
        assert h.sim.sim.outbox.messages == []
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0
