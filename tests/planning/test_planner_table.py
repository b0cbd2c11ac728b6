"""Table tests: every row of the decision table and every policy, on all three entities."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from sync_service.planning import (
    APPOINTMENTS,
    CONTACTS,
    TASKS,
    ConflictPolicy,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Direction,
    EntityMap,
    Link,
    PassKind,
    Plan,
    Policy,
    Side,
    Unlink,
    Update,
    bind,
    snapshot_crm,
    snapshot_exchange,
)

from .world import World


@dataclass(frozen=True)
class Case:
    map: EntityMap
    base: dict[str, Any]
    a: tuple[str, Any, Any]  # a field, a CRM-side value, an Exchange-side value
    b: tuple[str, Any, Any]


CASES = {
    "contact": Case(
        CONTACTS,
        {"first_name": "Ann", "last_name": "Lee", "emails": ["ann@x.com"]},
        ("job_title", "CEO", "CTO"),
        ("city", "Paris", "Oslo"),
    ),
    "task": Case(
        TASKS,
        {"subject": "Call", "due": "2026-03-01T09:00:00Z"},
        ("notes", "crm notes", "exchange notes"),
        ("importance", "high", "low"),
    ),
    "appointment": Case(
        APPOINTMENTS,
        {"subject": "Review", "start": "2026-03-01T09:00:00Z", "end": "2026-03-01T10:00:00Z"},
        ("location", "Room 1", "Room 2"),
        ("sensitivity", "private", "confidential"),
    ),
}
ENTITIES = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


def synced(case: Case, direction: Direction = Direction.TWO_WAY) -> World:
    world = World(bind(case.map, direction))
    world.crm_put("crm1", case.base)
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    assert len(world.links) == 1
    return world


def crm_edit(world: World, **changes: Any) -> None:
    current = snapshot_crm(world.binding, world.crm["crm1"]).fields
    world.crm_put("crm1", {**current, **changes})


def item_id(world: World) -> str:
    return next(iter(world.ex))


def ex_edit(world: World, **changes: Any) -> None:
    item = world.ex[item_id(world)]
    current = snapshot_exchange(world.binding, item).fields
    world.ex_put(item_id(world), {**current, **changes}, item.crm_id)


def kinds(result: Plan) -> list[type]:
    return [type(action) for action in result.actions]


def converge(world: World, policy: ConflictPolicy, kind: PassKind = PassKind.COMPLETE) -> Plan:
    """Apply one pass, check that a second pass plans nothing, return the first plan."""
    result = world.sync(kind, policy)
    assert world.plan(PassKind.COMPLETE, policy).actions == ()
    return result


def values(world: World, name: str) -> tuple[Any, Any]:
    crm = snapshot_crm(world.binding, world.crm["crm1"]).fields[name]
    ex = snapshot_exchange(world.binding, world.ex[item_id(world)]).fields[name]
    return crm, ex


# -- the decision table ------------------------------------------------------------------------


@ENTITIES
@pytest.mark.parametrize("kind", [PassKind.COMPLETE, PassKind.EXPRESS])
def test_unchanged_plans_nothing(case: Case, kind: PassKind) -> None:
    world = synced(case)
    assert world.plan(kind, ConflictPolicy()).actions == ()


@ENTITIES
@pytest.mark.parametrize("kind", [PassKind.COMPLETE, PassKind.EXPRESS])
def test_crm_change_updates_exchange_fields_only(case: Case, kind: PassKind) -> None:
    world = synced(case)
    name, crm_value, _ = case.a
    crm_edit(world, **{name: crm_value})
    result = converge(world, ConflictPolicy(), kind)
    (update,) = result.actions
    assert isinstance(update, Update)
    assert update.crm_changes == frozenset()
    assert update.exchange_changes == {name}
    assert values(world, name)[1] == values(world, name)[0]


@ENTITIES
@pytest.mark.parametrize("kind", [PassKind.COMPLETE, PassKind.EXPRESS])
def test_exchange_change_updates_crm(case: Case, kind: PassKind) -> None:
    world = synced(case)
    name, _, ex_value = case.a
    ex_edit(world, **{name: ex_value})
    (update,) = converge(world, ConflictPolicy(), kind).actions
    assert isinstance(update, Update)
    assert update.crm_changes == {name} and update.model_fields == frozenset()
    assert update.crm_version == world.crm["crm1"].version - 1 or kind == PassKind.EXPRESS


@ENTITIES
def test_same_change_on_both_sides_only_links(case: Case) -> None:
    world = synced(case)
    name, value, _ = case.a
    crm_edit(world, **{name: value})
    ex_edit(world, **{name: value})
    assert kinds(converge(world, ConflictPolicy())) == [Link]


@ENTITIES
def test_exchange_noise_only_refreshes_the_change_key(case: Case) -> None:
    world = synced(case)
    world.ex_touch(item_id(world))
    result = converge(world, ConflictPolicy())
    assert kinds(result) == [Link]


@ENTITIES
@pytest.mark.parametrize("kind", [PassKind.COMPLETE, PassKind.EXPRESS])
def test_crm_deleted_exchange_unchanged_deletes_item(case: Case, kind: PassKind) -> None:
    world = synced(case)
    world.crm_delete("crm1")
    assert kinds(converge(world, ConflictPolicy(), kind)) == [DeleteExchange]
    assert world.ex == {} and world.links == {}


@ENTITIES
@pytest.mark.parametrize("kind", [PassKind.COMPLETE, PassKind.EXPRESS])
def test_exchange_deleted_crm_unchanged_deletes_record(case: Case, kind: PassKind) -> None:
    world = synced(case)
    world.ex_delete(item_id(world))
    assert kinds(converge(world, ConflictPolicy(), kind)) == [DeleteCrm]
    assert world.crm == {} and world.links == {}


@ENTITIES
def test_crm_deleted_exchange_modified_recreates_in_crm(case: Case) -> None:
    world = synced(case)
    name, _, ex_value = case.a
    world.crm_delete("crm1")
    ex_edit(world, **{name: ex_value})
    assert kinds(converge(world, ConflictPolicy(Policy.CRM_WINS))) == [CreateCrm]
    (record,) = world.crm.values()
    assert snapshot_crm(world.binding, record).fields[name] is not None


@ENTITIES
def test_exchange_deleted_crm_modified_recreates_item(case: Case) -> None:
    world = synced(case)
    name, crm_value, _ = case.a
    world.ex_delete(item_id(world))
    crm_edit(world, **{name: crm_value})
    assert kinds(converge(world, ConflictPolicy(Policy.EXCHANGE_WINS))) == [CreateExchange]
    assert values(world, name)[0] == values(world, name)[1]


@ENTITIES
def test_deleted_on_both_sides_unlinks(case: Case) -> None:
    world = synced(case)
    world.crm_delete("crm1")
    world.ex_delete(item_id(world))
    assert kinds(converge(world, ConflictPolicy())) == [Unlink]
    assert world.links == {}


@ENTITIES
def test_new_items_are_created_on_the_other_side(case: Case) -> None:
    world = World(bind(case.map))
    world.crm_put("crm1", case.base)
    world.ex_put("exA", {**case.base, case.a[0]: case.a[2]}, None)
    result = converge(world, ConflictPolicy())
    assert sorted(type(a).__name__ for a in result.actions) == ["CreateCrm", "CreateExchange"]
    assert len(world.crm) == len(world.ex) == 2


# -- conflict policies -------------------------------------------------------------------------


def conflicting(case: Case) -> World:
    """CRM changed field a, Exchange changed field a (differently) and field b, later."""
    world = synced(case)
    a, crm_a, ex_a = case.a
    b, _, ex_b = case.b
    crm_edit(world, **{a: crm_a})
    ex_edit(world, **{a: ex_a, b: ex_b})
    return world


@ENTITIES
@pytest.mark.parametrize(
    ("policy", "a_from", "b_from"),
    [
        (ConflictPolicy(Policy.CRM_WINS), Side.CRM, Side.CRM),
        (ConflictPolicy(Policy.EXCHANGE_WINS), Side.EXCHANGE, Side.EXCHANGE),
        (ConflictPolicy(Policy.NEWEST_WINS), Side.EXCHANGE, Side.EXCHANGE),
        (ConflictPolicy(Policy.MERGE, Policy.CRM_WINS), Side.CRM, Side.EXCHANGE),
        (ConflictPolicy(Policy.MERGE, Policy.EXCHANGE_WINS), Side.EXCHANGE, Side.EXCHANGE),
        (ConflictPolicy(Policy.MERGE, Policy.NEWEST_WINS), Side.EXCHANGE, Side.EXCHANGE),
    ],
    ids=["crm_wins", "exchange_wins", "newest_wins", "merge/crm", "merge/exchange", "merge/new"],
)
def test_policies(case: Case, policy: ConflictPolicy, a_from: Side, b_from: Side) -> None:
    world = conflicting(case)
    crm_before = snapshot_crm(world.binding, world.crm["crm1"]).fields
    ex_before = snapshot_exchange(world.binding, world.ex[item_id(world)]).fields
    (update,) = converge(world, policy).actions
    assert isinstance(update, Update) and update.conflict is not None
    assert update.conflict.fields == {case.a[0]}
    for (name, *_), side in ((case.a, a_from), (case.b, b_from)):
        expected = (crm_before if side == Side.CRM else ex_before)[name]
        assert values(world, name) == (expected, expected), (name, side)


@ENTITIES
def test_newest_wins_takes_the_crm_when_it_changed_last(case: Case) -> None:
    world = synced(case)
    a, crm_a, ex_a = case.a
    ex_edit(world, **{a: ex_a})
    crm_edit(world, **{a: crm_a})
    converge(world, ConflictPolicy(Policy.NEWEST_WINS))
    assert values(world, a)[1] == snapshot_crm(world.binding, world.crm["crm1"]).fields[a]


def test_newest_wins_prefers_the_crm_on_a_tie() -> None:
    from sync_service.planning.policy import Side3, winner_of

    same = Side3({}, True, None)
    assert winner_of(Policy.NEWEST_WINS, same, same) == Side.CRM


def test_merge_cannot_fall_back_to_merge() -> None:
    with pytest.raises(ValueError, match="fallback"):
        ConflictPolicy(Policy.MERGE, Policy.MERGE)


# -- recover, directions -----------------------------------------------------------------------


@ENTITIES
def test_recover_recreates_instead_of_deleting(case: Case) -> None:
    world = synced(case)
    world.ex_delete(item_id(world))
    assert kinds(converge(world, ConflictPolicy(), PassKind.RECOVER)) == [CreateExchange]
    world.crm_delete("crm1")
    assert kinds(converge(world, ConflictPolicy(), PassKind.RECOVER)) == [CreateCrm]
    assert len(world.crm) == len(world.ex) == 1


@ENTITIES
def test_crm_to_exchange_mirrors_the_crm(case: Case) -> None:
    world = synced(case, Direction.CRM_TO_EXCHANGE)
    name, _, ex_value = case.a
    ex_edit(world, **{name: ex_value})
    world.ex_put("mine", case.base, None)  # the user's own item: left alone
    (update,) = converge(world, ConflictPolicy(Policy.EXCHANGE_WINS)).actions
    assert isinstance(update, Update) and update.crm_changes == frozenset()
    assert values(world, name)[0] == snapshot_crm(world.binding, world.crm["crm1"]).fields[name]
    assert len(world.crm) == 1 and "mine" in world.ex


@ENTITIES
def test_exchange_to_crm_never_writes_exchange(case: Case) -> None:
    world = synced(case, Direction.TWO_WAY)
    world.binding = bind(case.map, Direction.EXCHANGE_TO_CRM)
    world.links = {k: replace(r, crm_hash="", exchange_hash="") for k, r in world.links.items()}
    name, crm_value, _ = case.a
    crm_edit(world, **{name: crm_value})
    world.crm_put("crm2", case.base)
    result = converge(world, ConflictPolicy(Policy.CRM_WINS))
    assert all(isinstance(a, Update) and not a.model_fields for a in result.actions)
    assert "crm2" in world.crm and len(world.ex) == 1


@ENTITIES
def test_off_plans_nothing(case: Case) -> None:
    world = World(bind(case.map, Direction.OFF))
    world.crm_put("crm1", case.base)
    assert world.plan(PassKind.COMPLETE, ConflictPolicy()).actions == ()


def test_one_way_field_is_owned_by_its_source() -> None:
    world = World(bind(CONTACTS, overrides={"job_title": Direction.CRM_TO_EXCHANGE}))
    world.crm_put("crm1", {"first_name": "Ann", "job_title": "CEO"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    ex_edit(world, job_title="Intern", first_name="Anna")
    (update,) = converge(world, ConflictPolicy(Policy.EXCHANGE_WINS)).actions
    assert isinstance(update, Update)
    assert update.crm_changes == {"first_name"} and update.exchange_changes == {"job_title"}
    assert values(world, "job_title") == ("CEO", "CEO")


def test_field_turned_off_is_neither_compared_nor_written() -> None:
    world = World(bind(CONTACTS, overrides={"notes": Direction.OFF}))
    world.crm_put("crm1", {"first_name": "Ann"})
    world.crm["crm1"] = replace(world.crm["crm1"], notes="secret")
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    assert world.ex[item_id(world)].notes is None
    world._ex_store(item_id(world), replace(world.ex[item_id(world)], notes="outlook only"))
    # A property outside the mapping: the new change key is recorded, nothing is written.
    assert kinds(converge(world, ConflictPolicy())) == [Link]
    assert world.crm["crm1"].notes == "secret"


def test_unknown_field_override_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        bind(CONTACTS, overrides={"shoe_size": Direction.OFF})
