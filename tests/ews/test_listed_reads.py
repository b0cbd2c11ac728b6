"""A SyncFolderItems page carries what a listing can return of contacts and tasks; an item
that has no body is read from the page alone, and equals what GetItem reads of it. Over
real HTTP against the simulator, which lists as stingily as Exchange does."""

from __future__ import annotations

import dataclasses
from typing import Any

from ews_client.ews.sync import parse_sync_folder_items
from ews_client.models import Contact, EntityKind, Item, Task, Upsert
from tests.ews.test_builders import APPOINTMENT, CONTACT, TASK
from tests.ews.test_roundtrip import MBX, session

BARE_CONTACT = dataclasses.replace(CONTACT, notes=None)
BARE_TASK = dataclasses.replace(TASK, notes=None)


def _gets(counters: dict[str, Any]) -> int:
    return int(counters["requests"].get("GetItem", 0))


async def _synced(client: Any, entity: EntityKind) -> list[Item]:
    result = await client.sync_changes(MBX, entity, None)
    return [c.item for c in result.changes if isinstance(c, Upsert)]


async def test_bodiless_items_come_from_the_page_and_equal_what_getitem_reads() -> None:
    async with session() as (sim, client):
        for item in (BARE_CONTACT, dataclasses.replace(BARE_CONTACT, given_name="Bo")):
            await client.create_item(MBX, item)
        await client.create_item(MBX, BARE_TASK)
        before = _gets(sim.sim.counters())
        contacts = await _synced(client, EntityKind.CONTACT)
        tasks = await _synced(client, EntityKind.TASK)
        assert _gets(sim.sim.counters()) == before  # nothing was read item by item
        refs = [i.ref for i in (*contacts, *tasks) if i.ref is not None]
        read = [f.item for f in await client.get_items(MBX, refs[:2], EntityKind.CONTACT)]
        read += [f.item for f in await client.get_items(MBX, refs[2:], EntityKind.TASK)]
    assert [*contacts, *tasks] == read
    assert isinstance(contacts[0], Contact) and contacts[0].emails == CONTACT.emails
    assert isinstance(tasks[0], Task) and tasks[0].due == TASK.due


async def test_an_item_with_a_body_is_read_with_getitem() -> None:
    async with session() as (sim, client):
        await client.create_item(MBX, CONTACT)  # notes: "Met at the fair"
        await client.create_item(MBX, BARE_CONTACT)
        before = _gets(sim.sim.counters())
        contacts = await _synced(client, EntityKind.CONTACT)
        assert _gets(sim.sim.counters()) == before + 1  # one GetItem, for the one with notes
    assert sorted(str(c.notes) for c in contacts if isinstance(c, Contact)) == [
        "Met at the fair",
        "None",
    ]


async def test_calendar_items_are_always_read_with_getitem() -> None:
    single = dataclasses.replace(APPOINTMENT, notes=None, recurrence=None)
    async with session() as (sim, client):
        await client.create_item(MBX, single)
        before = _gets(sim.sim.counters())
        [event] = await _synced(client, EntityKind.APPOINTMENT)
        assert _gets(sim.sim.counters()) == before + 1
    assert event.required_attendees == single.required_attendees  # type: ignore[union-attr]


def _page_with(contact_children: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body>'
        "<m:SyncFolderItemsResponse><m:ResponseMessages>"
        '<m:SyncFolderItemsResponseMessage ResponseClass="Success">'
        "<m:ResponseCode>NoError</m:ResponseCode><m:SyncState>S</m:SyncState>"
        "<m:IncludesLastItemInRange>true</m:IncludesLastItemInRange><m:Changes><t:Create>"
        f'<t:Contact><t:ItemId Id="C1" ChangeKey="K1"/>{contact_children}</t:Contact>'
        "</t:Create></m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages>"
        "</m:SyncFolderItemsResponse></s:Body></s:Envelope>"
    ).encode()


NO_BODY = (
    '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1016" PropertyType="Integer"/>'
    "<t:Value>0</t:Value></t:ExtendedProperty>"
)


def test_a_listed_item_the_client_cannot_read_is_left_to_getitem() -> None:
    good = parse_sync_folder_items(_page_with(NO_BODY + "<t:GivenName>Ada</t:GivenName>"))
    assert isinstance(good.changes[0].listed, Contact)
    bad = parse_sync_folder_items(_page_with(NO_BODY + "<t:Birthday>not a date</t:Birthday>"))
    assert bad.changes[0].listed is None  # read again with GetItem, not a failed page
    assert bad.changes[0].ref.id == "C1"
