"""No invitations by side effect: a sync write never makes Exchange mail a meeting invitation,
update or cancellation (SYNC_MEETING_INVITATIONS=never, the default), on both backends; with
`crm_organized`, meetings the CRM organizes invite, update and cancel as Outlook would."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from lxml import etree

from ews_client.models import Appointment, EntityKind, Upsert
from ews_client.simulator.testing import running_simulator
from ews_client.simulator.writes import simple_props
from ews_client.simulator.xmlutil import insert_ordered, t
from sync_service.db.queue import PassKind
from sync_service.planning.records import CrmAppointment, CrmAttendee
from sync_service.runtime.worker import Done
from tests.e2e import harness as harness_module
from tests.e2e.harness import Harness, harness

BOX = "meetings@sim.example"
GUESTS = (
    CrmAttendee("ann@guest.example", "Ann", True),
    CrmAttendee("bob@guest.example", None, False),
)
START = (datetime.now(UTC) + timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
ALLOW = {"SYNC_MEETING_INVITATIONS": "crm_organized"}


@asynccontextmanager
async def counting_harness(
    pool: asyncpg.Pool, backend: str, env: dict[str, str] | None = None
) -> AsyncIterator[Harness]:
    """A harness whose simulator is expected to count meeting messages (crm_organized)."""
    with pytest.MonkeyPatch.context() as patch:
        opened = functools.partial(running_simulator, count_invitations=True)
        patch.setattr(harness_module, "running_simulator", opened)
        async with harness(pool, backend=backend, env=env) as h:
            yield h


async def crm_meeting(h: Harness, owner: str, subject: str = "Review") -> str:
    record = CrmAppointment(
        id="", owner_id=owner, subject=subject, starts_at=START,
        ends_at=START + timedelta(hours=1), is_meeting=True, attendees=GUESTS,
    )  # fmt: skip
    return (await h.crm.create_record(record, owner)).id


def outlook_meeting(h: Harness, subject: str) -> str:
    """A meeting the owner organized in Outlook, with two real attendees (made in the
    simulator's store directly: the owner's own sending is not the sync's)."""
    box = h.sim.sim.mailboxes[BOX]
    fields = {"Subject": subject, "Start": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "End": (START + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    props = simple_props("CalendarItem", fields)
    people = etree.Element(t("RequiredAttendees"))
    for address in ("carl@guest.example", "dora@guest.example"):
        mailbox = etree.SubElement(etree.SubElement(people, t("Attendee")), t("Mailbox"))
        etree.SubElement(mailbox, t("EmailAddress")).text = address
    insert_ordered(props, people, "CalendarItemType")
    return box.add(box.folder("calendar"), "CalendarItem", props).id


async def attendees_in_crm(pool: asyncpg.Pool, subject: str) -> list[tuple[str, bool]]:
    rows = await pool.fetch(
        "SELECT a.email, a.required FROM crm.appointment_attendees a "
        "JOIN crm.appointments p ON p.id = a.appointment_id WHERE p.subject = $1 "
        "ORDER BY a.email",
        subject,
    )
    return [(r["email"], r["required"]) for r in rows]


def sent(h: Harness) -> dict[str, object]:
    return h.sim.sim.outbox.counters()


def nothing_sent(h: Harness) -> bool:
    return h.sim.sim.outbox.messages == []


async def test_a_crm_meeting_is_written_read_back_changed_and_deleted_mailing_nobody(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        crm_id = await crm_meeting(h, user)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        [item] = await h.items(BOX, "calendar")
        assert nothing_sent(h)
        # Read back, the meeting is the one written: a further pass writes nothing either way.
        updates = h.sim.sim.counters()["requests"].get("UpdateItem", 0)
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert h.sim.sim.counters()["requests"].get("UpdateItem", 0) == updates
        client = await h.runner.backends.get(h.server)
        result = await client.sync_changes(BOX, EntityKind.APPOINTMENT, None)
        [read] = [c.item for c in result.changes if isinstance(c, Upsert)]
        assert isinstance(read, Appointment)
        assert [a.email for a in read.required_attendees] == ["ann@guest.example"]
        assert [(a.email, a.name) for a in read.optional_attendees] == [("bob@guest.example", None)]
        # The owner moves it in Outlook: read again, the CRM keeps its attendees.
        await h.owner("PATCH", f"/mailboxes/{BOX}/items/{item['id']}",
                      {"fields": {"Location": "Room 9"}})  # fmt: skip
        assert await h.sync(BOX) == Done("ok")
        assert await pool.fetchval(
            "SELECT location FROM crm.appointments WHERE id = $1", crm_id
        ) == ("Room 9")
        assert await attendees_in_crm(pool, "Review") == [
            ("ann@guest.example", True),
            ("bob@guest.example", False),
        ]
        # The CRM changes the time and the attendees: written, nobody mailed.
        await pool.execute(
            "UPDATE crm.appointments SET subject = 'Review (moved)', "
            "starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' "
            "WHERE id = $1",
            crm_id,
        )
        await pool.execute(
            "DELETE FROM crm.appointment_attendees WHERE appointment_id = $1 AND email = $2",
            crm_id,
            "bob@guest.example",
        )
        assert await h.sync(BOX) == Done("ok")
        [item] = await h.items(BOX, "calendar")
        assert item["fields"]["Subject"] == "Review (moved)"
        assert await attendees_in_crm(pool, "Review (moved)") == [("ann@guest.example", True)]
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert await attendees_in_crm(pool, "Review (moved)") == [("ann@guest.example", True)]
        # The CRM deletes it: gone from the mailbox, no cancellation.
        await pool.execute("DELETE FROM crm.appointments WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        assert await h.items(BOX, "calendar") == []
        assert nothing_sent(h)
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0


async def test_a_meeting_organized_in_outlook_is_never_changed_in_a_way_that_mails(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await h.add_user(BOX)
        outlook_meeting(h, "Planning")
        # Linked into the CRM (its CRM id is stamped on it): nobody hears of that.
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert await attendees_in_crm(pool, "Planning") == [
            ("carl@guest.example", True),
            ("dora@guest.example", True),
        ]
        await pool.execute(
            "UPDATE crm.appointments SET subject = 'Planning!' WHERE subject = 'Planning'"
        )
        assert await h.sync(BOX) == Done("ok")
        [item] = await h.items(BOX, "calendar")
        errors = await pool.fetch("SELECT direction, reason FROM sync.item_errors")
        if backend == "graph":
            # Graph would mail the attendees an update: refused for this item, named.
            assert item["fields"]["Subject"] == "Planning"
            [error] = errors
            assert error["direction"] == "crm_to_exchange"
            assert "SYNC_MEETING_INVITATIONS" in error["reason"]
            assert "2 attendee(s)" in error["reason"]
        else:
            # EWS writes it with SendToNone: saved, nobody mailed.
            assert item["fields"]["Subject"] == "Planning!" and errors == []
        await pool.execute("DELETE FROM crm.appointments WHERE subject = 'Planning!'")
        assert await h.sync(BOX) == Done("ok")
        remaining = await h.items(BOX, "calendar")
        assert len(remaining) == (1 if backend == "graph" else 0)
        assert nothing_sent(h)


async def test_crm_organized_meetings_invite_update_and_cancel_on_graph(
    pool: asyncpg.Pool,
) -> None:
    async with counting_harness(pool, "graph", ALLOW) as h:
        user, _ = await h.add_user(BOX)
        crm_id = await crm_meeting(h, user)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert sent(h)["invitations"] == 1 and sent(h)["recipients"] == 2
        await pool.execute("UPDATE crm.appointments SET location = 'Room 2' WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        assert sent(h)["updates"] == 1
        # Still the same meeting when read back: no further write, no further message.
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert sent(h)["updates"] == 1
        await pool.execute("DELETE FROM crm.appointments WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        assert sent(h)["cancellations"] == 1
        assert sent(h)["mailboxes"] == {
            BOX: {"invitations": 1, "updates": 1, "cancellations": 1, "recipients": 6}
        }
        # A meeting organized in Outlook stays untouched by a CRM change even so.
        outlook_meeting(h, "Planning")
        assert await h.sync(BOX) == Done("ok")
        await pool.execute(
            "UPDATE crm.appointments SET subject = 'Planning!' WHERE subject = 'Planning'"
        )
        assert await h.sync(BOX) == Done("ok")
        assert sent(h)["updates"] == 1
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 1


async def test_crm_organized_changes_nothing_on_ews(pool: asyncpg.Pool) -> None:
    # EWS writes every calendar item with SendToNone, whatever the setting (see README).
    async with harness(pool, backend="ews", env=ALLOW) as h:
        user, _ = await h.add_user(BOX)
        crm_id = await crm_meeting(h, user)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        await pool.execute("DELETE FROM crm.appointments WHERE id = $1", crm_id)
        assert await h.sync(BOX) == Done("ok")
        assert nothing_sent(h)
