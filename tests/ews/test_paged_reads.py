"""A sync's GetItem reads start while later SyncFolderItems pages are still asked for: which
read counts for an item named on several pages, and which items are not read at all."""

from __future__ import annotations

import asyncio

from ews_client.errors import ExchangeError, ItemNotFoundError
from ews_client.ews.items import FetchedItem
from ews_client.ews.sync import SyncChange, SyncPage
from ews_client.io.ews import _Reads
from ews_client.models import Contact, ItemRef


def _page(*changes: tuple[str, str, str]) -> SyncPage:
    return SyncPage("state", False, tuple(SyncChange(k, ItemRef(i, ck)) for k, i, ck in changes))  # type: ignore[arg-type]


def _fetched(value: str | ExchangeError) -> FetchedItem | ExchangeError:
    return value if isinstance(value, ExchangeError) else FetchedItem(Contact(surname=value))


def _read(*subjects: str | ExchangeError) -> asyncio.Task[list[FetchedItem | ExchangeError]]:
    async def answer() -> list[FetchedItem | ExchangeError]:
        return [_fetched(s) for s in subjects]

    return asyncio.get_running_loop().create_task(answer())


async def test_an_item_named_again_is_taken_from_its_later_read() -> None:
    reads = _Reads(None)
    [first] = await reads.wanted(_page(("create", "X", "ck1"), ("create", "Y", "ck1")), 50)
    reads.started(first, _read("X as first read", "Y"))
    [second] = await reads.wanted(_page(("update", "X", "ck2")), 50)
    reads.started(second, _read("X as read again"))
    await asyncio.sleep(0)
    got = reads.results([ItemRef("Y", "ck1"), ItemRef("X", "ck2")])
    assert [f.item.surname for f in got] == ["Y", "X as read again"]  # type: ignore[union-attr]


async def test_items_at_the_known_key_and_gone_items_are_left_out() -> None:
    async def known() -> dict[str, str]:
        return {"K": "ck7"}

    reads = _Reads(known)
    page = _page(("update", "K", "ck7"), ("create", "G", "ck1"), ("delete", "D", ""))
    [chunk] = await reads.wanted(page, 50)
    assert [r.id for r in chunk] == ["G"]  # K is at the caller's key, D is a deletion
    reads.started(chunk, _read(ItemNotFoundError("gone", code="ErrorItemNotFound")))
    await asyncio.sleep(0)
    assert reads.results([ItemRef("K", "ck7"), ItemRef("G", "ck1")]) == []


async def test_batches_are_cut_to_size() -> None:
    reads = _Reads(None)
    page = _page(*(("create", f"I{n}", "ck") for n in range(7)))
    assert [len(c) for c in await reads.wanted(page, 3)] == [3, 3, 1]


async def test_an_item_a_page_carries_whole_is_not_read_and_the_later_mention_wins() -> None:
    reads = _Reads(None)
    whole = SyncChange("create", ItemRef("W", "ck1"), Contact(surname="W as listed"))
    page = SyncPage("state", False, (whole, SyncChange("create", ItemRef("R", "ck1"))))
    [chunk] = await reads.wanted(page, 50)
    assert [r.id for r in chunk] == ["R"]  # W needs no GetItem
    reads.started(chunk, _read("R as read"))
    # R is named again, now whole: the page's copy replaces the earlier read.
    again = SyncChange("update", ItemRef("R", "ck2"), Contact(surname="R as listed"))
    assert await reads.wanted(SyncPage("state", True, (again,)), 50) == []
    await asyncio.sleep(0)
    got = reads.results([ItemRef("W", "ck1"), ItemRef("R", "ck2")])
    assert [f.item.surname for f in got] == ["W as listed", "R as listed"]  # type: ignore[union-attr]
