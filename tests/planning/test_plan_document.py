"""A dry run's plan as data: each action with its direction and before -> after, values bounded."""

from __future__ import annotations

from sync_service.planning import (
    CONTACTS,
    ConflictPolicy,
    PassKind,
    Policy,
    bind,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning.render import LIST_MAX, VALUE_MAX, bounded, plan_document

from .world import World


def test_an_update_on_both_sides_lists_each_field_before_and_after() -> None:
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"first_name": "Ann", "last_name": "Lee", "job_title": "Clerk"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    fields = snapshot_crm(world.binding, world.crm["crm1"]).fields
    world.crm_put("crm1", {**fields, "job_title": "CEO"})
    item_id = next(r.exchange_id for r in world.links.values() if r.crm_id == "crm1")
    ex_fields = snapshot_exchange(world.binding, world.ex[item_id]).fields
    world.ex_put(item_id, {**ex_fields, "city": "Oslo"}, "crm1")
    world.crm_put("crm2", {"first_name": "Bob", "notes": "x" * 1000})

    doc = plan_document([world.plan(PassKind.COMPLETE, ConflictPolicy(Policy.MERGE))])

    by_action = {item["action"]: item for item in doc["items"]}
    update = by_action["update"]
    assert (update["direction"], update["crm_id"], update["title"]) == ("both", "crm1", "Ann Lee")
    assert update["changes"] == [
        {"field": "city", "side": "crm", "before": None, "after": "Oslo"},
        {"field": "job_title", "side": "exchange", "before": "Clerk", "after": "CEO"},
    ]
    create = by_action["create_exchange"]
    assert create["direction"] == "crm_to_exchange" and create["exchange_id"] is None
    notes = next(c for c in create["changes"] if c["field"] == "notes")
    assert notes["after"] == "x" * VALUE_MAX + "... (1000 characters)"
    assert doc["entities"] == [
        {
            "entity": "contact",
            "kind": "complete",
            "items": 1,
            "planned": {"create_exchange": 1, "update": 1},
            "summary": "contact complete: create_exchange=1, update=1 (items=1)",
        }
    ]
    assert doc["omitted"] == 0 and doc["ambiguities"] == []


def test_the_items_kept_are_bounded_and_the_rest_counted() -> None:
    world = World(bind(CONTACTS))
    for n in range(5):
        world.crm_put(f"crm{n}", {"last_name": f"N{n}"})
    doc = plan_document([world.plan(PassKind.COMPLETE, ConflictPolicy())], max_items=2)
    assert len(doc["items"]) == 2 and doc["omitted"] == 3
    assert doc["entities"][0]["planned"] == {"create_exchange": 5}


def test_bounded_cuts_text_lists_and_objects() -> None:
    assert bounded("short") == "short"
    many = bounded([str(n) for n in range(LIST_MAX + 5)])
    assert isinstance(many, list) and len(many) == LIST_MAX + 1 and many[-1] == "... (5 more)"
    nested = bounded({"body": "y" * (VALUE_MAX + 1), "n": 3})
    assert nested == {"body": "y" * VALUE_MAX + f"... ({VALUE_MAX + 1} characters)", "n": 3}
