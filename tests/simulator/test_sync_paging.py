"""SyncFolderItems paging over raw HTTP: a page is never empty or short before the last, a
deletion is reported only for an item the client was given, an item it knows is an Update."""

from __future__ import annotations

import aiohttp

from ews_client.simulator.store import StoredItem
from ews_client.simulator.testing import RunningSimulator
from ews_client.simulator.writes import simple_props

from .conftest import BOX
from .helpers import Answer, call, sync_body


def _contacts(sim: RunningSimulator, count: int) -> list[StoredItem]:
    box = sim.sim.mailboxes[BOX]
    folder = box.folder("contacts")
    props = ({"GivenName": f"P{n}", "Surname": "Example"} for n in range(count))
    return [box.add(folder, "Contact", simple_props("Contact", p)) for p in props]


def _items(answer: Answer) -> list[str]:
    """Ids of the items a page creates or updates, in page order."""
    found = answer.xp("//m:Changes/*[self::t:Create or self::t:Update]/*/t:ItemId")
    return [e.get("Id", "") for e in found]


async def _page(
    session: aiohttp.ClientSession, sim: RunningSimulator, state: str | None, size: int
) -> tuple[Answer, str, bool]:
    answer = await call(session, sim, sync_body("contacts", state, size), BOX)
    assert answer.codes == ["NoError"]
    last = answer.text("//m:IncludesLastItemInRange") == "true"
    return answer, answer.text("//m:SyncState"), last


async def test_deleting_what_the_client_has_not_seen_leaves_no_empty_page(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    box = sim.sim.mailboxes[BOX]
    seeded = set(box.folder("contacts").items)  # the fixture's two contacts
    items = _contacts(sim, 10)
    first, state, last = await _page(session, sim, None, 5)
    given = set(_items(first))
    assert not last and len(given) == 5
    for item in items:
        if item.id not in given:
            box.remove(item)
    second, state, last = await _page(session, sim, state, 5)
    # Nothing left to tell: the last page at once, no page of invisible deletions.
    assert last and _items(second) == [] and second.xp("//t:Delete") == []
    assert given | seeded >= set(box.folder("contacts").items)


async def test_an_old_item_changed_before_the_client_saw_it_is_not_reported_deleted(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    box = sim.sim.mailboxes[BOX]
    oldest = _contacts(sim, 4)[0]
    box.touch(oldest)  # its latest change is now after every other contact's
    first, state, _ = await _page(session, sim, None, 3)
    assert oldest.id not in _items(first)
    box.remove(oldest)
    deleted: list[str] = []
    created = set(_items(first))
    last = False
    while not last:
        page, state, last = await _page(session, sim, state, 3)
        assert _items(page) or page.xp("//t:Delete") or last  # never empty mid-sync
        deleted += [e.get("Id", "") for e in page.xp("//t:Delete/t:ItemId")]
        created |= set(_items(page))
    assert deleted == [] and oldest.id not in created
    assert created == set(box.folder("contacts").items)


async def test_known_items_are_updates_and_their_deletion_is_reported(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    box = sim.sim.mailboxes[BOX]
    items = _contacts(sim, 6)
    _, state, last = await _page(session, sim, None, 512)
    assert last
    box.touch(items[0])
    box.remove(items[1])
    fresh = _contacts(sim, 1)[0]
    box.touch(fresh)  # created and changed since: still a Create for this client
    page, state, last = await _page(session, sim, state, 512)
    assert last and [c.tag.rsplit("}")[1] for c in page.xp("//m:Changes/*")] == [
        "Update",
        "Delete",
        "Create",
    ]
    assert _items(page) == [items[0].id, fresh.id]
    assert page.text("//t:Delete/t:ItemId/@Id") == items[1].id
    box.remove(items[2])
    page, _, _ = await _page(session, sim, state, 512)
    assert page.text("//t:Delete/t:ItemId/@Id") == items[2].id


async def test_an_ignored_item_counts_as_given(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    box = sim.sim.mailboxes[BOX]
    _, state, _ = await _page(session, sim, None, 512)
    mine = _contacts(sim, 1)[0]  # say the client wrote it and tells the server to skip it
    body = sync_body("contacts", state, 512).replace(
        "<m:MaxChangesReturned>",
        f'<m:Ignore><t:ItemId Id="{mine.id}"/></m:Ignore><m:MaxChangesReturned>',
    )
    answer = await call(session, sim, body, BOX)
    assert answer.xp("//m:Changes/*") == []
    box.remove(mine)
    page, _, _ = await _page(session, sim, answer.text("//m:SyncState"), 512)
    assert page.text("//t:Delete/t:ItemId/@Id") == mine.id
