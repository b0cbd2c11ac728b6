"""FindItem and FindFolder paging as exchangelib walks it: IndexedPagingOffset on every page,
so that a walk over more than one page ends and yields every item exactly once."""

from __future__ import annotations

from exchangelib.folders import DEEP, SHALLOW, FolderCollection

from ews_client.simulator.testing import RunningSimulator

from .conftest import account, add_contacts, in_thread


async def test_a_walk_over_1000_contacts_yields_each_once_page_by_page(
    sim: RunningSimulator,
) -> None:
    stored = {item.id for item in add_contacts(sim, 1_050)}
    acc = account(sim)

    def walk(page_size: int) -> list[str]:
        query = acc.contacts.all().only("given_name")
        query.page_size = page_size
        return [item.id for item in query]

    before = sim.sim.requests["FindItem"]
    ids = await in_thread(walk, 100)
    assert len(ids) == 1_050 and set(ids) == stored  # every contact, none twice
    assert sim.sim.requests["FindItem"] - before == 11  # 10 full pages and a short one
    ids = await in_thread(walk, 37)  # pages that do not divide the folder
    assert len(ids) == 1_050 and set(ids) == stored
    assert sim.sim.requests["FindItem"] - before == 11 + 29


async def test_a_slice_starts_at_its_offset_and_stops_at_its_end(sim: RunningSimulator) -> None:
    items = add_contacts(sim, 250)
    acc = account(sim)

    def names() -> list[str | None]:
        return [c.given_name for c in acc.contacts.all().only("given_name")[120:135]]

    assert await in_thread(names) == [i.props.findtext("{*}GivenName") for i in items[120:135]]


async def test_find_folder_pages_shallow_and_deep(sim: RunningSimulator) -> None:
    acc = account(sim)

    def find(depth: str) -> list[str | None]:
        top = FolderCollection(account=acc, folders=[acc.msg_folder_root])
        return [f.name for f in top.find_folders(depth=depth, page_size=2)]

    assert await in_thread(find, SHALLOW) == ["Calendar", "Contacts", "Inbox", "Tasks"]

    def deep() -> list[str | None]:
        below_root = FolderCollection(account=acc, folders=[acc.root])
        return [f.name for f in below_root.find_folders(depth=DEEP, page_size=3)]

    assert await in_thread(deep) == [
        "Top of Information Store",
        "Calendar",
        "Contacts",
        "Inbox",
        "Tasks",
    ]
