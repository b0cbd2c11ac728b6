"""Meetings as Exchange keeps them: one UID on the organizer's item and on each attendee's copy;
copies made and changed by the meeting messages only (never by a SendToNone write); an
attendee's response recorded on the organizer's item; on EWS and on Graph, schema-valid."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ews_client.io.auth import OAuthClientCredentials
from ews_client.simulator import meetings
from ews_client.simulator.store import Mailbox, StoredItem
from ews_client.simulator.testing import RunningSimulator, running_simulator
from ews_client.simulator.xmlutil import t

from .helpers import Answer, call, get_item_body

ANN, BEN, OUT = "user00001@sim.example", "user00002@sim.example", "guest@elsewhere.example"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(tls=True, count_invitations=True) as running:
        running.sim.add_numbered(2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


@pytest.fixture
async def session(sim: RunningSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    tls = ssl.create_default_context(cafile=sim.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as s:
        yield s


def box(sim: RunningSimulator, address: str) -> Mailbox:
    return sim.sim.mailboxes[address]


def calendar(sim: RunningSimulator, address: str) -> list[StoredItem]:
    mailbox = box(sim, address)
    return [mailbox.items[i] for i in mailbox.folder("calendar").items]


def create(mode: str, subject: str = "Review") -> str:
    people = "".join(
        f"<t:Attendee><t:Mailbox><t:EmailAddress>{a}</t:EmailAddress></t:Mailbox></t:Attendee>"
        for a in (BEN, OUT)
    )
    return (
        f'<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="{mode}">'
        '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
        f"<m:Items><t:CalendarItem><t:Subject>{subject}</t:Subject>"
        "<t:Start>2026-05-04T09:00:00Z</t:Start><t:End>2026-05-04T10:00:00Z</t:End>"
        f"<t:RequiredAttendees>{people}</t:RequiredAttendees></t:CalendarItem></m:Items>"
        "</m:CreateItem>"
    )


def update_subject(item: StoredItem, mode: str, subject: str) -> str:
    return (
        '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite" '
        f'SendMeetingInvitationsOrCancellations="{mode}"><m:ItemChanges><t:ItemChange>'
        f'<t:ItemId Id="{item.id}"/><t:Updates><t:SetItemField>'
        '<t:FieldURI FieldURI="item:Subject"/><t:CalendarItem>'
        f"<t:Subject>{subject}</t:Subject></t:CalendarItem></t:SetItemField></t:Updates>"
        "</t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )


def respond(kind: str, item: StoredItem, disposition: str = "SendAndSaveCopy") -> str:
    return (
        f'<m:CreateItem MessageDisposition="{disposition}"><m:Items><t:{kind}>'
        f'<t:ReferenceItemId Id="{item.id}"/></t:{kind}></m:Items></m:CreateItem>'
    )


async def ews(
    session: aiohttp.ClientSession, sim: RunningSimulator, body: str, mailbox: str
) -> Answer:
    answer = await call(session, sim, body, mailbox)
    assert answer.status == 200
    return answer


async def test_a_write_that_mails_nobody_puts_no_copy_in_the_attendees_calendar(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    answer = await ews(session, sim, create("SendToNone"), ANN)
    assert answer.codes == ["NoError"]
    assert calendar(sim, BEN) == []
    assert sim.sim.outbox.messages == []


async def test_an_invitation_puts_a_copy_with_the_meetings_uid_in_each_local_attendee(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    assert (await ews(session, sim, create("SendToAllAndSaveCopy"), ANN)).codes == ["NoError"]
    [own], [held] = calendar(sim, ANN), calendar(sim, BEN)
    assert meetings.uid_of(own) == meetings.uid_of(held) is not None
    assert own.props.findtext(t("MyResponseType")) == "Organizer"
    assert held.props.findtext(t("MyResponseType")) == "NoResponseReceived"
    assert meetings.organizer_of(box(sim, BEN), held.props) == ANN
    # What the attendee reads over EWS: the organizer, its own response, the same UID.
    answer = await ews(
        session, sim, get_item_body([(held.id, held.change_key)], "AllProperties"), BEN
    )
    assert answer.text("//t:CalendarItem/t:UID") == meetings.uid_of(own)
    assert answer.text("//t:CalendarItem/t:MyResponseType") == "NoResponseReceived"
    assert answer.text("//t:Organizer/t:Mailbox/t:EmailAddress") == ANN
    assert answer.text("//t:CalendarItem/t:IsMeeting") == "true"
    # The external attendee is only counted: one invitation to two recipients.
    assert sim.sim.outbox.counters()["recipients"] == 2


async def test_the_organizers_update_reaches_the_copy_only_when_sent(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await ews(session, sim, create("SendToAllAndSaveCopy"), ANN)
    [own] = calendar(sim, ANN)
    await ews(session, sim, update_subject(own, "SendToNone", "Quiet"), ANN)
    assert calendar(sim, BEN)[0].props.findtext(t("Subject")) == "Review"
    await ews(session, sim, update_subject(own, "SendToAllAndSaveCopy", "Loud"), ANN)
    [held] = calendar(sim, BEN)
    assert held.props.findtext(t("Subject")) == "Loud"
    assert len(calendar(sim, BEN)) == 1  # the copy changed, no second one


async def test_an_attendees_response_is_recorded_on_the_organizers_item(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await ews(session, sim, create("SendToAllAndSaveCopy"), ANN)
    [own], [held] = calendar(sim, ANN), calendar(sim, BEN)
    assert meetings.response_of(own.props, BEN) == "NoResponseReceived"
    # Saved only: the attendee's copy says so, the organizer does not know yet.
    answer = await ews(session, sim, respond("TentativelyAcceptItem", held, "SaveOnly"), BEN)
    assert answer.codes == ["NoError"]
    assert held.props.findtext(t("MyResponseType")) == "Tentative"
    assert meetings.response_of(own.props, BEN) == "NoResponseReceived"
    answer = await ews(session, sim, respond("AcceptItem", held), BEN)
    assert answer.codes == ["NoError"]
    assert meetings.response_of(own.props, BEN) == "Accept"
    answer = await ews(
        session, sim, get_item_body([(own.id, own.change_key)], "AllProperties"), ANN
    )
    path = f"//t:Attendee[t:Mailbox/t:EmailAddress='{BEN}']/t:ResponseType"
    assert answer.text(path) == "Accept"
    # The organizer cannot answer its own meeting.
    answer = await ews(session, sim, respond("DeclineItem", own), ANN)
    assert answer.codes == ["ErrorItemNotFound"]


async def test_a_cancellation_marks_the_copy_cancelled(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await ews(session, sim, create("SendToAllAndSaveCopy"), ANN)
    [own] = calendar(sim, ANN)
    body = (
        '<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToAllAndSaveCopy">'
        f'<m:ItemIds><t:ItemId Id="{own.id}"/></m:ItemIds></m:DeleteItem>'
    )
    await ews(session, sim, body, ANN)
    [held] = calendar(sim, BEN)
    assert held.props.findtext(t("IsCancelled")) == "true"
    answer = await ews(session, sim, respond("AcceptItem", held), BEN)
    assert answer.codes == ["ErrorCalendarIsCancelledForAccept"]


# -- Graph ----------------------------------------------------------------------------------
class Graph:
    def __init__(self, sim: RunningSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session
        self.auth = OAuthClientCredentials(
            authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
            scope=GRAPH_SCOPE, ca_file=sim.ca_file,
        )  # fmt: skip

    async def __call__(
        self, user: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        headers = await self.auth.headers()
        url = f"{self.sim.graph_url}/users/{user}/{path}"
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data


@pytest.fixture
async def graph(sim: RunningSimulator, session: aiohttp.ClientSession) -> AsyncIterator[Graph]:
    client = Graph(sim, session)
    yield client
    client.auth.close()


async def test_graph_shows_one_icaluid_the_organizer_and_each_response(graph: Graph) -> None:
    event = {
        "subject": "Review",
        "start": {"dateTime": "2026-05-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-04T10:00:00", "timeZone": "UTC"},
        "attendees": [{"type": "required", "emailAddress": {"address": a}} for a in (BEN, OUT)],
    }
    status, own = await graph(ANN, "POST", "events", event)
    assert status == 201 and own["isOrganizer"] is True
    assert own["responseStatus"]["response"] == "organizer"
    status, listed = await graph(BEN, "GET", "calendar/events")
    [held] = listed["value"]
    assert held["iCalUId"] == own["iCalUId"]
    assert held["isOrganizer"] is False
    assert held["organizer"]["emailAddress"]["address"] == ANN
    assert held["responseStatus"]["response"] == "notResponded"
    status, _ = await graph(BEN, "POST", f"events/{held['id']}/accept", {"sendResponse": True})
    assert status == 202
    status, again = await graph(ANN, "GET", f"events/{own['id']}")
    statuses = {a["emailAddress"]["address"]: a["status"]["response"] for a in again["attendees"]}
    assert statuses == {BEN: "accepted", OUT: "notResponded"}
    status, mine = await graph(BEN, "GET", f"events/{held['id']}")
    assert mine["responseStatus"]["response"] == "accepted"
    # Declined without telling the organizer: only the attendee's copy changes.
    status, _ = await graph(BEN, "POST", f"events/{held['id']}/decline", {"sendResponse": False})
    assert status == 202
    status, again = await graph(ANN, "GET", f"events/{own['id']}")
    assert {a["status"]["response"] for a in again["attendees"]} == {"accepted", "notResponded"}
    # The organizer's own event takes no response.
    status, _ = await graph(ANN, "POST", f"events/{own['id']}/accept", {})
    assert status == 400


async def test_the_owner_sending_from_outlook_delivers_copies_without_the_outbox(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await ews(session, sim, create("SendToNone"), ANN)
    [own] = calendar(sim, ANN)
    meetings.send_as_owner(sim.sim.quota, box(sim, ANN), own)
    [held] = calendar(sim, BEN)
    assert meetings.uid_of(held) == meetings.uid_of(own)
    assert sim.sim.outbox.messages == []


async def test_the_owner_sends_and_answers_through_the_admin_api(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    base = f"{sim.admin_url}/mailboxes"
    fields = {"Subject": "Standup", "Start": "2026-05-04T09:00:00Z", "End": "2026-05-04T09:15:00Z"}
    async with session.post(
        f"{base}/{ANN}/items", json={"folder": "calendar", "fields": fields}
    ) as r:
        made = await r.json()
    body = {"required": [BEN], "optional": [OUT]}
    async with session.post(f"{base}/{ANN}/items/{made['id']}/send", json=body) as r:
        assert r.status == 200
        sent = await r.json()
    assert sent["fields"]["MyResponseType"] == "Organizer"
    [held] = calendar(sim, BEN)
    assert held.props.findtext(t("UID")) == sent["fields"]["UID"]
    async with session.post(
        f"{base}/{BEN}/items/{held.id}/respond", json={"response": "Tentative"}
    ) as r:
        assert r.status == 200
    [own] = calendar(sim, ANN)
    assert meetings.response_of(own.props, BEN) == "Tentative"
    assert meetings.response_of(own.props, OUT) == "NoResponseReceived"
    async with session.post(
        f"{base}/{ANN}/items/{own.id}/respond", json={"response": "Accept"}
    ) as r:
        assert r.status == 400  # the organizer has nothing to answer
    assert sim.sim.outbox.messages == []
