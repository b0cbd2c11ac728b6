"""What a listing (SyncFolderItems, FindItem) returns against GetItem, over raw HTTP: no body,
no recipient lists, no whole contact dictionary (its entries by IndexedFieldURI only), the
organizer's name alone (render.py; not tested here: the simulator keeps an organizer only
when a client writes one), 255 characters of a string property, and PidTagNativeBody computed
from the body in every answer."""

from __future__ import annotations

import aiohttp

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX
from .helpers import EXT_URI, call, get_item_body

NATIVE = '<t:ExtendedFieldURI PropertyTag="0x1016" PropertyType="Integer"/>'
EMAIL1 = '<t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress1"/>'
LONG = "x" * 300


def _contact(body: str, crm_id: str) -> str:
    return (
        '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
        '<t:DistinguishedFolderId Id="contacts"/></m:SavedItemFolderId><m:Items><t:Contact>'
        f"{body}<t:ExtendedProperty>{EXT_URI}<t:Value>{crm_id}</t:Value></t:ExtendedProperty>"
        '<t:GivenName>Ada</t:GivenName><t:EmailAddresses><t:Entry Key="EmailAddress1">'
        "ada@example.org</t:Entry></t:EmailAddresses></t:Contact></m:Items></m:CreateItem>"
    )


def _meeting() -> str:
    return (
        '<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="SendToNone">'
        '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
        "<m:Items><t:CalendarItem><t:Subject>Review</t:Subject>"
        '<t:Body BodyType="Text">Agenda</t:Body><t:Start>2026-03-02T09:00:00Z</t:Start>'
        "<t:End>2026-03-02T10:00:00Z</t:End><t:RequiredAttendees><t:Attendee><t:Mailbox>"
        "<t:EmailAddress>bob@example.org</t:EmailAddress></t:Mailbox></t:Attendee>"
        "</t:RequiredAttendees></t:CalendarItem></m:Items></m:CreateItem>"
    )


def _sync_all(folder: str, extra: str) -> str:
    return (
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>"
        f"<t:AdditionalProperties>{extra}</t:AdditionalProperties></m:ItemShape>"
        f'<m:SyncFolderId><t:DistinguishedFolderId Id="{folder}"/></m:SyncFolderId>'
        "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>"
    )


async def _item_ids(session: aiohttp.ClientSession, sim: RunningSimulator, body: str) -> str:
    answer = await call(session, sim, body, BOX)
    assert answer.codes == ["NoError"], answer.codes
    return answer.xp("//t:ItemId")[0].get("Id", "")


async def test_a_contact_listing_leaves_out_the_body_and_the_whole_dictionary(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await _item_ids(session, sim, _contact(f'<t:Body BodyType="Text">{LONG}</t:Body>', LONG))
    listed = await call(session, sim, _sync_all("contacts", EXT_URI + NATIVE + EMAIL1), BOX)
    ours = [c for c in listed.xp("//t:Contact") if c.findtext(f"{{{_T}}}GivenName") == "Ada"]
    [contact] = ours
    names = {child.tag.split("}")[1] for child in contact}
    assert "Body" not in names
    # The dictionary came back with the one entry asked for by IndexedFieldURI.
    entries = contact.findall(f"{{{_T}}}EmailAddresses/{{{_T}}}Entry")
    assert [(e.get("Key"), e.text) for e in entries] == [("EmailAddress1", "ada@example.org")]
    values = [p.findtext(f"{{{_T}}}Value") for p in contact.findall(f"{{{_T}}}ExtendedProperty")]
    assert values == ["x" * 255, "1"]  # the CRM id cut to 255 characters; a text body


async def test_getitem_returns_what_the_listing_leaves_out(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    item = await _item_ids(session, sim, _contact("", "crm-1"))
    shape = EXT_URI + NATIVE + '<t:FieldURI FieldURI="contacts:EmailAddresses"/>'
    answer = await call(session, sim, get_item_body([(item, "")], "IdOnly", shape), BOX)
    [contact] = answer.xp("//t:Contact")
    assert contact.find(f"{{{_T}}}EmailAddresses") is not None
    values = [p.findtext(f"{{{_T}}}Value") for p in contact.findall(f"{{{_T}}}ExtendedProperty")]
    assert values == ["crm-1", "0"]  # no body: PidTagNativeBody 0


async def test_a_meeting_listing_has_no_attendees_and_no_body(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    item = await _item_ids(session, sim, _meeting())
    listed = await call(session, sim, _sync_all("calendar", NATIVE), BOX)
    events = listed.xp("//t:CalendarItem")
    [event] = [e for e in events if e.findtext(f"{{{_T}}}Subject") == "Review"]
    names = {child.tag.split("}")[1] for child in event}
    assert not names & {"Body", "RequiredAttendees"}
    assert event.findtext(f"{{{_T}}}ExtendedProperty/{{{_T}}}Value") == "1"
    read = await call(session, sim, get_item_body([(item, "")], "AllProperties"), BOX)
    assert read.xp("//t:CalendarItem/t:RequiredAttendees/t:Attendee")


_T = "http://schemas.microsoft.com/exchange/services/2006/types"


async def test_a_listed_organizer_is_its_name_alone(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    organizer = (
        "<t:Organizer><t:Mailbox><t:EmailAddress>boss@example.org</t:EmailAddress>"
        "</t:Mailbox></t:Organizer>"
    )
    await _item_ids(
        session,
        sim,
        _meeting().replace("<t:RequiredAttendees>", organizer + "<t:RequiredAttendees>", 1),
    )
    listed = await call(session, sim, _sync_all("calendar", NATIVE), BOX)
    events = listed.xp("//t:CalendarItem")
    [event] = [e for e in events if e.findtext(f"{{{_T}}}Subject") == "Review"]
    mailbox = event.find(f"{{{_T}}}Organizer/{{{_T}}}Mailbox")
    assert mailbox is not None
    # No name was stored: the address stands in as the display name; no EmailAddress listed.
    assert [(c.tag.split("}")[1], c.text) for c in mailbox] == [("Name", "boss@example.org")]
