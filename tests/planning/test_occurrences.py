"""A series renamed by a write: the occurrences that showed its old subject or location show
the new one in the planner's target (what Outlook shows once the write is made)."""

from __future__ import annotations

from typing import Any

from sync_service.planning.occurrences import follow_series


def occurrence(start: str, subject: str | None, location: str | None = None) -> dict[str, Any]:
    return {"original_start": start, "start": start, "end": start, "subject": subject,
            "location": location, "notes": None}  # fmt: skip


def test_occurrences_showing_the_old_values_follow_the_series() -> None:
    target = {
        "subject": "Daily standup",
        "location": "Room 2",
        "modified_occurrences": [
            occurrence("a", "Standup", "Room 1"),  # moved in Outlook: showed the series'
            occurrence("b", "Retro", "Room 1"),  # its own subject stays, the location follows
            occurrence("c", None, None),  # nothing of its own is named: nothing to follow
        ],
    }
    exchange = {"subject": "Standup", "location": "Room 1"}
    followed = follow_series(target, exchange)
    assert [(o["subject"], o["location"]) for o in followed["modified_occurrences"]] == [
        ("Daily standup", "Room 2"),
        ("Retro", "Room 2"),
        (None, None),
    ]
    assert target["modified_occurrences"][0]["subject"] == "Standup"  # the input is untouched


def test_no_rename_no_change() -> None:
    target = {"subject": "Standup", "modified_occurrences": [occurrence("a", "Standup")]}
    assert follow_series(target, {"subject": "Standup"}) is target
    assert follow_series({"subject": "New"}, {"subject": "Old"}) == {"subject": "New"}
    # A series without a subject before: no occurrence can have shown it.
    unnamed = {"subject": "New", "modified_occurrences": [occurrence("a", None)]}
    assert follow_series(unnamed, {"subject": None}) is unnamed
