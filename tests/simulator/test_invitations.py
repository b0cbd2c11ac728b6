"""The simulator counts what a real Exchange would have mailed to attendees: invitations,
updates and cancellations, per mailbox and in total, through EWS and through Graph."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lxml import etree

from ews_client.io.auth import OAuthClientCredentials
from ews_client.simulator import invitations
from ews_client.simulator.testing import (
    SENT_LOG,
    RunningSimulator,
    SentRecord,
    running_simulator,
    unexpected_messages,
)
from ews_client.simulator.writes import simple_props
from ews_client.simulator.xmlutil import insert_ordered, t

from .helpers import call

BOX = "user00001@sim.example"
GUESTS = ("ann@guest.example", "bob@guest.example")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
async def counting() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(tls=True, count_invitations=True) as running:
        running.sim.add_numbered(2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


@pytest.fixture
async def session(counting: RunningSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    tls = ssl.create_default_context(cafile=counting.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as s:
        yield s


def sent(sim: RunningSimulator) -> dict[str, Any]:
    return sim.sim.outbox.counters()


# -- EWS ------------------------------------------------------------------------------------
def _attendees(addresses: tuple[str, ...]) -> str:
    people = "".join(
        f"<t:Attendee><t:Mailbox><t:EmailAddress>{a}</t:EmailAddress></t:Mailbox></t:Attendee>"
        for a in addresses
    )
    return f"<t:RequiredAttendees>{people}</t:RequiredAttendees>" if addresses else ""


def create_meeting(mode: str, attendees: tuple[str, ...] = GUESTS) -> str:
    return (
        f'<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="{mode}">'
        '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
        "<m:Items><t:CalendarItem><t:Subject>Review</t:Subject>"
        "<t:Start>2026-05-04T09:00:00Z</t:Start><t:End>2026-05-04T10:00:00Z</t:End>"
        f"{_attendees(attendees)}</t:CalendarItem></m:Items></m:CreateItem>"
    )


def update_meeting(item: tuple[str, str], mode: str, field: str, value: str) -> str:
    return (
        '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AutoResolve" '
        f'SendMeetingInvitationsOrCancellations="{mode}"><m:ItemChanges><t:ItemChange>'
        f'<t:ItemId Id="{item[0]}" ChangeKey="{item[1]}"/><t:Updates><t:SetItemField>'
        f'<t:FieldURI FieldURI="{field}"/><t:CalendarItem>{value}</t:CalendarItem>'
        "</t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )


def delete_meeting(item_id: str, mode: str) -> str:
    return (
        f'<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="{mode}">'
        f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:DeleteItem>'
    )


async def _ews_create(
    session: aiohttp.ClientSession, sim: RunningSimulator, body: str
) -> tuple[str, str]:
    answer = await call(session, sim, body, BOX)
    assert answer.codes == ["NoError"]
    node = answer.xp("//t:ItemId")[0]
    return node.get("Id", ""), node.get("ChangeKey", "")


async def test_ews_create_with_invitations_counts_one_invitation_per_meeting(
    counting: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await _ews_create(session, counting, create_meeting("SendToNone"))
    assert sent(counting)["invitations"] == 0
    await _ews_create(session, counting, create_meeting("SendToAllAndSaveCopy"))
    await _ews_create(session, counting, create_meeting("SendOnlyToAll", ()))  # no attendees
    counters = sent(counting)
    assert (counters["invitations"], counters["recipients"]) == (1, 2)
    assert counters["mailboxes"] == {
        BOX: {"invitations": 1, "updates": 0, "cancellations": 0, "recipients": 2}
    }
    assert counting.sim.counters()["sent"] == counters


async def test_ews_update_sends_to_all_or_to_the_changed_attendees(
    counting: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    item = await _ews_create(session, counting, create_meeting("SendToNone"))
    subject = "<t:Subject>Moved</t:Subject>"
    three = _attendees((*GUESTS, "cy@guest.example"))
    steps = (
        ("SendToNone", "item:Subject", subject, (0, 0, 0)),
        ("SendToAllAndSaveCopy", "item:Subject", subject, (0, 1, 2)),
        ("SendToChangedAndSaveCopy", "calendar:RequiredAttendees", three, (1, 1, 3)),
    )
    for mode, field, value, expected in steps:
        answer = await call(session, counting, update_meeting(item, mode, field, value), BOX)
        assert answer.codes == ["NoError"]
        item = (item[0], answer.xp("//t:ItemId")[0].get("ChangeKey", ""))
        counters = sent(counting)
        assert (counters["invitations"], counters["updates"], counters["recipients"]) == expected
    assert counting.sim.outbox.messages[-1].recipients == ("cy@guest.example",)


async def test_ews_delete_sends_cancellations_unless_send_to_none(
    counting: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    quiet = await _ews_create(session, counting, create_meeting("SendToNone"))
    loud = await _ews_create(session, counting, create_meeting("SendToNone"))
    for item_id, mode in ((quiet[0], "SendToNone"), (loud[0], "SendToAllAndSaveCopy")):
        assert (await call(session, counting, delete_meeting(item_id, mode), BOX)).codes == [
            "NoError"
        ]
    counters = sent(counting)
    assert (counters["cancellations"], counters["recipients"]) == (1, 2)


def invited_by_someone_else(sim: RunningSimulator, item_id: str) -> None:
    """Make the mailbox's copy an attendee's copy: another address organizes the meeting."""
    stored = sim.sim.mailboxes[BOX].items[item_id]
    organizer = etree.Element(t("Organizer"))
    etree.SubElement(
        etree.SubElement(organizer, t("Mailbox")), t("EmailAddress")
    ).text = "boss@other.example"
    insert_ordered(stored.props, organizer, "CalendarItemType")
    sim.sim.mailboxes[BOX].touch(stored)


async def test_ews_an_attendees_copy_mails_nobody(
    counting: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    # The mailbox was invited by someone else: deleting its copy is its own business.
    item = await _ews_create(session, counting, create_meeting("SendToNone"))
    invited_by_someone_else(counting, item[0])
    answer = await call(session, counting, delete_meeting(item[0], "SendToAllAndSaveCopy"), BOX)
    assert answer.codes == ["NoError"]
    assert sent(counting)["cancellations"] == 0


# -- Graph ----------------------------------------------------------------------------------
class Graph:
    def __init__(self, sim: RunningSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session
        self.auth = OAuthClientCredentials(
            authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
            scope=GRAPH_SCOPE, ca_file=sim.ca_file,
        )  # fmt: skip

    async def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = await self.auth.headers()
        url = f"{self.sim.graph_url}/users/{BOX}/{path}"
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data


@pytest.fixture
async def graph(counting: RunningSimulator, session: aiohttp.ClientSession) -> AsyncIterator[Graph]:
    client = Graph(counting, session)
    yield client
    client.auth.close()


def event(attendees: tuple[str, ...] = GUESTS) -> dict[str, Any]:
    return {
        "subject": "Review",
        "start": {"dateTime": "2026-05-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-04T10:00:00", "timeZone": "UTC"},
        "attendees": [{"type": "required", "emailAddress": {"address": a}} for a in attendees],
    }


async def test_graph_create_with_attendees_counts_an_invitation(
    counting: RunningSimulator, graph: Graph
) -> None:
    status, _ = await graph("POST", "events", event(()))
    assert status == 201 and sent(counting)["invitations"] == 0
    status, _ = await graph("POST", "events", event())
    assert status == 201
    counters = sent(counting)
    assert (counters["invitations"], counters["recipients"]) == (1, 2)
    assert counters["mailboxes"][BOX]["invitations"] == 1
    assert counting.sim.outbox.messages[0].endpoint == "graph"


async def test_graph_patch_of_what_attendees_see_sends_an_update(
    counting: RunningSimulator, graph: Graph
) -> None:
    _, created = await graph("POST", "events", event())
    path = f"events/{created['id']}"
    prop = {"id": "String {6c3f4b2e-8a1d-4e57-9b0c-2d5e7f9a1c34} Name CrmId", "value": "c-1"}
    # The owner's own data (categories, reminders, extended properties): no update.
    for body in ({"categories": ["CRM"]}, {"isReminderOn": False},
                 {"singleValueExtendedProperties": [prop]}):  # fmt: skip
        status, _ = await graph("PATCH", path, body)
        assert status == 200
    assert sent(counting)["updates"] == 0
    status, _ = await graph("PATCH", path, {"subject": "Moved"})
    assert status == 200
    assert (sent(counting)["updates"], sent(counting)["recipients"]) == (1, 4)
    # Attendees alone: only the one added hears of it.
    more = event((*GUESTS, "cy@guest.example"))["attendees"]
    status, _ = await graph("PATCH", path, {"attendees": more})
    assert status == 200
    assert (sent(counting)["updates"], sent(counting)["invitations"]) == (1, 2)
    assert counting.sim.outbox.messages[-1].recipients == ("cy@guest.example",)


async def test_graph_delete_and_cancel_send_cancellations(
    counting: RunningSimulator, graph: Graph
) -> None:
    _, alone = await graph("POST", "events", event(()))
    _, first = await graph("POST", "events", event())
    _, second = await graph("POST", "events", event())
    assert (await graph("DELETE", f"events/{alone['id']}"))[0] == 204
    assert sent(counting)["cancellations"] == 0
    assert (await graph("DELETE", f"events/{first['id']}"))[0] == 204
    status, _ = await graph("POST", f"events/{second['id']}/cancel", {"comment": "off"})
    assert status == 202
    assert (await graph("GET", f"events/{second['id']}"))[0] == 404
    counters = sent(counting)
    assert (counters["cancellations"], counters["recipients"]) == (2, 8)


async def test_graph_cancel_is_for_the_organizer_only(
    counting: RunningSimulator, graph: Graph, session: aiohttp.ClientSession
) -> None:
    made = await session.post(
        f"{counting.admin_url}/mailboxes/{BOX}/items",
        json={"folder": "calendar", "fields": {"Subject": "Their meeting",
              "Start": "2026-05-04T09:00:00Z", "End": "2026-05-04T10:00:00Z"}},
    )  # fmt: skip
    invited_by_someone_else(counting, (await made.json())["id"])
    _, listed = await graph("GET", "events")
    graph_id = next(e["id"] for e in listed["value"] if e["subject"] == "Their meeting")
    status, body = await graph("POST", f"events/{graph_id}/cancel", {})
    assert status == 400 and "organizer" in body["error"]["message"]


async def test_the_admin_api_lists_what_would_have_been_sent(
    counting: RunningSimulator, graph: Graph, session: aiohttp.ClientSession
) -> None:
    await graph("POST", "events", event())
    async with session.get(f"{counting.admin_url}/sent") as resp:
        listing = await resp.json()
    assert listing["invitations"] == 1
    assert listing["messages"] == [
        {"mailbox": BOX, "kind": "invitations", "endpoint": "graph",
         "recipients": list(GUESTS), "subject": "Review"}
    ]  # fmt: skip
    async with session.get(f"{counting.admin_url}/counters") as resp:
        assert (await resp.json())["sent"]["invitations"] == 1


# -- the session check ----------------------------------------------------------------------
async def test_every_simulator_records_what_it_sent_when_it_stops() -> None:
    before = len(SENT_LOG)
    async with running_simulator(count_invitations=True) as running:
        box = running.sim.add_mailbox(BOX)
        item = box.add(box.folder("calendar"), "CalendarItem",
                       simple_props("CalendarItem", {"Subject": "Alone"}))  # fmt: skip
        invitations.graph_deleted(running.sim.quota, box, item)  # no attendees: nothing sent
    record = SENT_LOG[before]
    assert record.counting and record.messages == 0
    assert record.test.endswith("test_every_simulator_records_what_it_sent_when_it_stops")


def test_only_simulators_opened_to_count_may_have_sent() -> None:
    quiet = SentRecord("t::quiet", False, 0, {})
    counted = SentRecord("t::counted", True, 3, {})
    stray = SentRecord("t::stray", False, 1, {"invitations": 1})
    assert unexpected_messages([quiet, counted, stray]) == [stray]
