"""SyncFolderItems as exchangelib pages through it: 1,000 items each once; changes between two
pages of one synchronization are delivered once, deletions only of items the client was given,
and no page short of MaxChangesReturned before the last."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from ews_client.simulator.testing import RunningSimulator

from .conftest import account, add_contacts, in_thread, mailbox

Change = tuple[str, str]  # (create | update | delete, item id)


def _changes(stream: Iterator[tuple[str, Any]], count: int | None = None) -> list[Change]:
    return [(kind, item.id) for kind, item in islice(stream, count)]


async def test_a_first_synchronization_of_1000_contacts_creates_each_once(
    sim: RunningSimulator,
) -> None:
    stored = {item.id for item in add_contacts(sim, 1_000)}
    acc = account(sim)

    def sync(state: str | None) -> tuple[list[Change], str]:
        found = _changes(acc.contacts.sync_items(sync_state=state, max_changes_returned=100))
        return found, acc.contacts.item_sync_state

    changes, state = await in_thread(sync, None)
    assert [kind for kind, _ in changes] == ["create"] * 1_000
    assert {item_id for _, item_id in changes} == stored
    assert sim.sim.requests["SyncFolderItems"] == 10
    assert (await in_thread(sync, state))[0] == []  # nothing changed since


async def test_changes_between_two_pages_are_delivered_once_and_never_unseen_deletions(
    sim: RunningSimulator,
) -> None:
    box = mailbox(sim)
    items = add_contacts(sim, 300)
    acc = account(sim)
    stream: list[Iterator[tuple[str, Any]]] = []

    def first_page() -> list[Change]:
        stream.append(acc.contacts.sync_items(max_changes_returned=100))
        return _changes(stream[0], 100)

    seen = await in_thread(first_page)
    assert len(seen) == 100 and sim.sim.requests["SyncFolderItems"] == 1
    given = {item_id for _, item_id in seen}
    unseen = [i for i in items if i.id not in given]
    # The owner works in Outlook between the client's pages.
    for item in unseen[:50]:
        box.remove(item)  # never given: never reported
    for item in [i for i in items if i.id in given][:15]:
        box.remove(item)  # given: reported deleted
    for item in [i for i in items if i.id in given][15:25] + unseen[50:60]:
        box.touch(item)  # updated: seen ones are updates, unseen ones still creates
    rest = await in_thread(lambda: _changes(stream[0]))
    kinds = {kind: [i for k, i in rest if k == kind] for kind in ("create", "update", "delete")}
    assert len(kinds["create"]) == 150 and not given & set(kinds["create"])
    assert len(kinds["update"]) == 10 and set(kinds["update"]) <= given
    assert len(kinds["delete"]) == 15 and set(kinds["delete"]) <= given
    assert len(rest) == len({item_id for _, item_id in rest})  # each once
    # 175 changes after the first page: one full page and one of 75, nothing empty or short.
    assert sim.sim.requests["SyncFolderItems"] == 3
    known = (given | set(kinds["create"])) - set(kinds["delete"])
    assert known == set(box.folder("contacts").items)
