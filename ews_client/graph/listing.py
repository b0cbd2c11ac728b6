"""Offset-paged listings that lose nothing when items are deleted while they are read.

Graph pages `/calendar/events` by `$skip`: its next link says "skip the N events you have
seen". An event deleted between two page requests moves every later event one place up, and
the event that crossed the page boundary is listed on neither page. A full read takes what it
did not list for absent, so an initial pass would create that event once more from the CRM.

So each next page is asked for `OVERLAP` places earlier than the link says, in an order that
edits do not change (`$orderby=createdDateTime`), and it must begin with an event already
listed. Then no event that existed throughout was passed over: it came after that first event
before, so it still does. A page that begins with an unseen event (more than `OVERLAP`
deletions between two requests) or an empty later page may hide a gap: the listing restarts.
A next link without `$skip` (an opaque `$skiptoken`) is followed as it is.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ews_client.graph.responses import Page

OVERLAP = 16  # deletions between two page requests that a listing absorbs without restarting
_SKIP = re.compile(r"([?&](?:\$|%24)skip=)(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NextPage:
    link: str
    overlapping: bool  # asked for earlier than the server said: must begin with a seen item


def next_page(link: str, received: int, overlap: int = OVERLAP) -> NextPage:
    """The server's next link moved back by `overlap` places, and by fewer than the `received`
    items of the page it came with, so that every request still moves the listing on."""
    overlap = min(overlap, received - 1)
    found = _SKIP.search(link)
    if found is None or overlap <= 0:
        return NextPage(link, overlapping=False)
    skip = max(0, int(found.group(2)) - overlap)
    return NextPage(link[: found.start(2)] + str(skip) + link[found.end(2) :], overlapping=True)


def anchored(page: Page, seen: Collection[str]) -> bool:
    """Whether an overlapping page joins on to what was listed before it: it begins with an
    item already seen (an empty page proves nothing, so it does not)."""
    return bool(page.values) and str(page.values[0]["id"]) in seen
