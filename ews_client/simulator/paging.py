"""Indexed paging of FindItem and FindFolder (IndexedPageItemView, IndexedPageFolderView).

A page answers with the paging attributes Exchange puts on `m:RootFolder`: `TotalItemsInView`
(everything that passes the restriction), `IncludesLastItemInRange`, and, for an indexed
view, `IndexedPagingOffset`, the offset to ask for next. Without it a client cannot page past
the first answer: exchangelib then assumes offset 1 and walks the same items again
(ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from lxml import etree

from .context import OpError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Which part of a result set a request asked for."""

    offset: int = 0  # from the BasePoint
    limit: int | None = None  # MaxEntriesReturned
    from_end: bool = False  # BasePoint="End"
    indexed: bool = False  # an indexed view was given (answers carry IndexedPagingOffset)


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    last: bool
    next_offset: int | None  # None: no indexed view asked for


def parse_window(view: etree._Element | None) -> Window:
    """The window of an m:IndexedPage*View element (None: everything, unpaged)."""
    if view is None:
        return Window()
    offset = int(view.get("Offset", "0"))
    limit_text = view.get("MaxEntriesReturned")
    limit = int(limit_text) if limit_text is not None else None
    if offset < 0 or (limit is not None and limit < 1):
        raise OpError("ErrorInvalidIndexedPagingParameters", "Offset or MaxEntriesReturned")
    return Window(offset, limit, view.get("BasePoint") == "End", True)


def page_of(items: Sequence[T], window: Window) -> tuple[list[T], Page]:
    """The items in `window` (in result order) and the paging attributes of the answer."""
    total = len(items)
    limit = total if window.limit is None else window.limit
    if window.from_end:
        # Seeking from the end moves back by the offset, then by the page (EWS reference,
        # IndexedPageItemView): items [total - offset - limit, total - offset).
        stop = max(0, total - window.offset)
        start = max(0, stop - limit)
        chosen = list(items[start:stop])
        last = start == 0
    else:
        start = min(window.offset, total)
        chosen = list(items[start : start + limit])
        last = start + len(chosen) >= total
    following = window.offset + len(chosen) if window.indexed else None
    return chosen, Page(total, last, following)


def set_paging(holder: etree._Element, page: Page) -> None:
    """The paging attributes of an m:RootFolder, in the schema's attribute group order."""
    if page.next_offset is not None:
        holder.set("IndexedPagingOffset", str(page.next_offset))
    holder.set("IncludesLastItemInRange", "true" if page.last else "false")
    holder.set("TotalItemsInView", str(page.total))
