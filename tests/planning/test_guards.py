"""Guards: mass deletions and an emptied mailbox are refused unless forced."""

from __future__ import annotations

import pytest

from sync_service.planning import (
    CONTACTS,
    ConflictPolicy,
    GuardError,
    GuardLimits,
    PassKind,
    bind,
    plan,
    snapshot_crm,
    snapshot_exchange,
)

from .world import World


def mailbox(size: int) -> World:
    world = World(bind(CONTACTS))
    for n in range(size):
        world.crm_put(f"crm{n:03d}", {"first_name": f"P{n}"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    return world


DEFAULT = GuardLimits()


def planned(world: World, limits: GuardLimits = DEFAULT, force: bool = False) -> int:
    result = plan(
        world.binding,
        [snapshot_crm(world.binding, r) for r in world.crm.values()],
        [snapshot_exchange(world.binding, i) for i in world.ex.values()],
        list(world.links.values()),
        limits=limits,
        force=force,
    )
    return result.deletions


def delete_crm(world: World, count: int) -> None:
    for crm_id in sorted(world.crm)[:count]:
        world.crm_delete(crm_id)


def test_many_deletions_beyond_share_and_count_are_refused() -> None:
    world = mailbox(200)
    delete_crm(world, 60)  # 30 % and 60 items: both limits exceeded
    with pytest.raises(GuardError) as caught:
        planned(world)
    assert "60 deletions (30% of 200 items)" in caught.value.summary
    assert caught.value.plan.deletions == 60


def test_forced_plan_goes_through() -> None:
    world = mailbox(200)
    delete_crm(world, 60)
    assert planned(world, force=True) == 60


def test_share_alone_is_not_enough() -> None:
    world = mailbox(100)
    delete_crm(world, 40)  # 40 % but only 40 items
    assert planned(world) == 40


def test_count_alone_is_not_enough() -> None:
    world = mailbox(400)
    delete_crm(world, 60)  # 60 items but 15 %
    assert planned(world) == 60


def test_limits_are_configurable() -> None:
    world = mailbox(20)
    delete_crm(world, 5)
    with pytest.raises(GuardError):
        planned(world, GuardLimits(max_delete_share=0.1, max_delete_count=2))


def test_empty_exchange_folder_with_synced_items_is_refused() -> None:
    world = mailbox(3)
    for item_id in list(world.ex):
        world.ex_delete(item_id)
    with pytest.raises(GuardError, match="Exchange folder is empty"):
        planned(world)
    assert planned(world, force=True) == 3


def test_recover_pass_on_empty_folder_recreates() -> None:
    world = mailbox(3)
    for item_id in list(world.ex):
        world.ex_delete(item_id)
    result = world.plan(PassKind.RECOVER, ConflictPolicy(), force=False)
    assert result.deletions == 0 and len(result.actions) == 3
