"""Dry-run rendering, crash recovery details, and the engine's freedom from I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

from sync_service.planning import (
    CONTACTS,
    ConflictPolicy,
    CreateExchange,
    PassKind,
    Policy,
    Update,
    bind,
    referenced_crm_ids,
    render,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning.actions import Plan

from .world import World

ENGINE = Path(__file__).resolve().parents[2] / "sync_service" / "planning"


def test_engine_imports_no_io_library() -> None:
    banned = {"aiohttp", "asyncpg", "asyncio", "socket", "ssl", "sqlite3", "requests"}
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


def test_render_lists_every_action_and_a_summary() -> None:
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"first_name": "Ann", "last_name": "Lee"})
    world.crm_put("crm2", {"first_name": "Bob"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    world.ex_put("new", {"first_name": "Cy"}, None)
    world.crm_delete("crm2")
    fields = snapshot_crm(world.binding, world.crm["crm1"]).fields
    world.crm_put("crm1", {**fields, "job_title": "CEO"})
    item_id = next(r.exchange_id for r in world.links.values() if r.crm_id == "crm1")
    ex_fields = snapshot_exchange(world.binding, world.ex[item_id]).fields
    world.ex_put(item_id, {**ex_fields, "job_title": "CTO", "city": "Oslo"}, "crm1")
    result = world.plan(PassKind.COMPLETE, ConflictPolicy(Policy.MERGE))
    text = render(result)
    assert text.splitlines()[0] == "contact (complete pass)"
    lines = text.splitlines()
    assert lines[1].startswith('  create in CRM      "Cy" from exchange new as ')
    assert lines[2] == (
        '  update             "Ann Lee" crm crm1: CRM fields city; Exchange fields job_title'
        " [conflict on job_title: merge, merged]"
    )
    assert lines[3] == '  delete in Exchange "Bob" exchange ex00003 (crm crm2)'
    assert text.splitlines()[-1] == (
        "  = contact complete: create_crm=1, delete_exchange=1, update=1 (items=2)"
    )


def test_empty_plan_renders() -> None:
    empty = Plan(CONTACTS.entity, PassKind.EXPRESS, ())
    assert render(empty).endswith("nothing to do (items=0)")


def test_lost_link_commit_is_paired_by_crm_id_not_duplicated() -> None:
    """A create whose link row never reached the database at all (no intent row either)."""
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"first_name": "Ann"})
    result = world.plan(PassKind.COMPLETE, ConflictPolicy())
    (create,) = result.actions
    assert isinstance(create, CreateExchange)
    world.ex_put("ex1", create.fields, "crm1")  # the item exists, the link table knows nothing
    (link,) = world.plan(PassKind.COMPLETE, ConflictPolicy()).actions
    assert type(link).__name__ == "Link"
    assert link.row.exchange_id == "ex1"


def test_express_pass_needs_referenced_records() -> None:
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"first_name": "Ann"})
    world.sync(PassKind.EXPRESS, ConflictPolicy(), crash_at=1)  # created, never committed
    world.links.clear()  # even the intent row was lost
    (item_id,) = world.ex
    exchange = [snapshot_exchange(world.binding, world.ex[item_id])]
    assert referenced_crm_ids(exchange, []) >= {"crm1"}
    world.sync(PassKind.EXPRESS, ConflictPolicy())
    assert len(world.crm) == len(world.ex) == len(world.links) == 1


def test_update_carries_the_optimistic_version() -> None:
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"first_name": "Ann"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    (item_id,) = world.ex
    world.ex_put(item_id, {"first_name": "Anna"}, "crm1")
    (update,) = world.plan(PassKind.COMPLETE, ConflictPolicy()).actions
    assert isinstance(update, Update) and update.crm_version == world.crm["crm1"].version
