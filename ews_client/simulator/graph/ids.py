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
