"""Graph ids are the EWS ids in URL-safe form (the same item through both protocols)."""

from __future__ import annotations

from ..store import StoredItem

_TO_GRAPH = str.maketrans("+/", "-_")
_TO_EWS = str.maketrans("-_", "+/")


def graph_id(ews_id: str) -> str:
    return ews_id.translate(_TO_GRAPH)


def ews_id(value: str) -> str:
    return value.translate(_TO_EWS)


def etag(item: StoredItem) -> str:
    """A weak ETag from the change key: every write changes both."""
    return f'W/"{item.change_key}"'


def route_path(path: str) -> str:
    """The path a route matches: generated SDKs call functions with parentheses (`delta()`),
    hand-written clients without; Graph answers both the same."""
    return path.replace("/delta()", "/delta") if path.endswith("/delta()") else path
