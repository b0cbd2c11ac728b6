"""Recurring series: one occurrence's change stays one change; deletions stay deleted."""

from __future__ import annotations

from typing import Any

from sync_service.planning import (
    APPOINTMENTS,
    ConflictPolicy,
    PassKind,
    Policy,
    Update,
    bind,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning.series import combine_deleted, combine_modified

from .world import World

WEEKLY = {
    "kind": "weekly",
    "interval": 1,
    "days_of_week": ["sunday"],
    "day_of_month": None,
    "month": None,
    "week_index": None,
    "start_date": "2026-03-01",
    "end_date": None,
    "occurrences": 10,
}
SERIES = {
    "subject": "Weekly",
    "start": "2026-03-01T09:00:00Z",
    "end": "2026-03-01T10:00:00Z",
    "recurrence": WEEKLY,
}


def occurrence(day: int, subject: str) -> dict[str, Any]:
    return {
        "original_start": f"2026-03-{day:02d}T09:00:00Z",
        "start": f"2026-03-{day:02d}T11:00:00Z",
        "end": f"2026-03-{day:02d}T12:00:00Z",
        "subject": subject,
        "location": None,
        "notes": None,
    }


def synced() -> World:
    world = World(bind(APPOINTMENTS))
    world.crm_put("a1", SERIES)
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    return world


def edit_ex(world: World, **changes: Any) -> None:
    (item_id,) = world.ex
    fields = snapshot_exchange(world.binding, world.ex[item_id]).fields
    world.ex_put(item_id, {**fields, **changes}, "a1")


def edit_crm(world: World, **changes: Any) -> None:
    fields = snapshot_crm(world.binding, world.crm["a1"]).fields
    world.crm_put("a1", {**fields, **changes})


def test_one_occurrence_changes_only_the_exceptions_field() -> None:
    world = synced()
    edit_ex(world, modified_occurrences=[occurrence(8, "Moved")])
    (update,) = world.sync(PassKind.COMPLETE, ConflictPolicy()).actions
    assert isinstance(update, Update)
    assert update.crm_changes == {"modified_occurrences"}
    assert not update.model_fields


def test_exceptions_on_both_sides_merge_per_occurrence_under_crm_wins() -> None:
    world = synced()
    edit_crm(world, modified_occurrences=[occurrence(8, "CRM moved")], subject="Weekly (CRM)")
    edit_ex(world, modified_occurrences=[occurrence(15, "Outlook moved")])
    (update,) = world.sync(PassKind.COMPLETE, ConflictPolicy(Policy.CRM_WINS)).actions
    assert isinstance(update, Update)
    assert update.exchange_changes == {"subject", "modified_occurrences"}
    assert update.model_fields == {"subject", "modified_occurrences"}
    fields = snapshot_crm(world.binding, world.crm["a1"]).fields
    assert [o["subject"] for o in fields["modified_occurrences"]] == ["CRM moved", "Outlook moved"]


def test_deleted_occurrences_stay_deleted_whoever_wins() -> None:
    world = synced()
    edit_ex(world, deleted_occurrences=["2026-03-08T09:00:00Z"], subject="Outlook")
    edit_crm(world, deleted_occurrences=["2026-03-15T09:00:00Z"], subject="CRM")
    world.sync(PassKind.COMPLETE, ConflictPolicy(Policy.CRM_WINS))
    for fields in (
        snapshot_crm(world.binding, world.crm["a1"]).fields,
        snapshot_exchange(world.binding, next(iter(world.ex.values()))).fields,
    ):
        assert fields["deleted_occurrences"] == ["2026-03-08T09:00:00Z", "2026-03-15T09:00:00Z"]
        assert fields["subject"] == "CRM"


def test_combine_helpers() -> None:
    a, b = "2026-03-08T09:00:00Z", "2026-03-15T09:00:00Z"
    assert combine_deleted([], [a], [b], [a]) == [a, b]
    old, mine, theirs = occurrence(8, "old"), occurrence(8, "mine"), occurrence(8, "theirs")
    assert combine_modified([old], [mine], [theirs], [theirs]) == [theirs]
    assert combine_modified([old], [mine], [old], [old]) == [mine]
    assert combine_modified([old], [], [old], [old]) == []
