"""The pure parts of an overlapping listing: where the next page is asked for, and whether it
joins on to the pages before it."""

from __future__ import annotations

from ews_client.graph.listing import anchored, next_page
from ews_client.graph.responses import Page

BASE = "https://graph.example/v1.0/users/a%40b/calendar/events?$top=10"


def _page(*ids: str) -> Page:
    return Page(tuple({"id": i} for i in ids), (), None, None)


def test_the_next_page_starts_earlier_than_the_server_said() -> None:
    nxt = next_page(f"{BASE}&$skip=250&$orderby=createdDateTime", received=250, overlap=16)
    assert nxt.link == f"{BASE}&$skip=234&$orderby=createdDateTime" and nxt.overlapping


def test_an_encoded_skip_is_moved_too_and_never_below_zero() -> None:
    nxt = next_page(f"{BASE}&%24skip=3", received=50, overlap=16)
    assert nxt.link == f"{BASE}&%24skip=0"


def test_the_overlap_is_smaller_than_the_page_so_the_listing_moves_on() -> None:
    assert next_page(f"{BASE}&$skip=20", received=10, overlap=16).link == f"{BASE}&$skip=11"
    single = next_page(f"{BASE}&$skip=20", received=1, overlap=16)
    assert single.link == f"{BASE}&$skip=20" and not single.overlapping


def test_an_opaque_next_link_is_followed_as_it_is() -> None:
    link = f"{BASE}&$skiptoken=abc"
    assert next_page(link, received=10) == next_page(link, received=10, overlap=0)
    assert not next_page(link, received=10).overlapping


def test_a_page_joins_on_when_it_begins_with_an_item_seen_before() -> None:
    assert anchored(_page("b", "c"), {"a", "b"})
    assert not anchored(_page("c", "b"), {"a", "b"})
    assert not anchored(_page(), {"a"})
