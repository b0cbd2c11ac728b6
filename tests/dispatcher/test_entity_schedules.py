"""Express schedules per entity, per server and per server groups: the pure rule, and the tick
against a real database driven by explicit instants (the passes' times set as a pass would).
And push: a job covers the entities whose folders changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ews_client import EntityKind
from sync_service.db.queue import Entities, JobQueue
from sync_service.db.schedules import ScheduleRow
from sync_service.db.store import Store
from sync_service.dispatcher import schedule
from sync_service.dispatcher.graph_push import GraphChanges, enqueue_change
from sync_service.dispatcher.push import PushManager
from sync_service.dispatcher.schedule import entities_of
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.operator.operations import NotFound, Operations
from sync_service.operator.schedules import Schedules, ScheduleSpec
from sync_service.operator.server_specs import InvalidInput
from tests.dispatcher.conftest import add_mailboxes, add_server, make_settings

CONTACT, APPOINTMENT, TASK = EntityKind.CONTACT, EntityKind.APPOINTMENT, EntityKind.TASK
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _rule(
    server: int | None = 1,
    groups: set[str] | None = None,
    entities: set[EntityKind] | None = None,
    every: timedelta | None = 15 * MIN,
) -> ScheduleRow:
    return ScheduleRow(
        server,
        None if groups is None else frozenset(groups),
        None if entities is None else frozenset(entities),
        every,
    )


def test_the_most_specific_schedule_decides() -> None:
    rules = [
        _rule(entities={CONTACT}, every=15 * MIN),
        _rule(entities={APPOINTMENT}, every=5 * MIN),
        _rule(groups={"paris"}, every=60 * MIN),
        _rule(server=None, groups={"paris"}, entities={TASK}, every=None),
        _rule(server=2, every=MIN),
    ]
    default = 30 * MIN

    def interval(group: str | None, entity: EntityKind) -> timedelta | None:
        return schedule.express_interval(rules, default, 1, group, entity)

    assert interval(None, CONTACT) == 15 * MIN
    assert interval(None, APPOINTMENT) == 5 * MIN
    assert interval(None, TASK) == default  # nothing of server 1 names tasks without a group
    assert interval("london", TASK) == default
    assert interval("paris", CONTACT) == 60 * MIN  # a group schedule beats the server's
    assert interval("paris", TASK) is None  # the group's tasks: no express sweep
    assert schedule.express_interval([], default, 1, "paris", TASK) == default


def test_equally_specific_schedules_take_the_shortest_interval() -> None:
    rules = [_rule(groups={"a"}, every=20 * MIN), _rule(groups={"a", "b"}, every=10 * MIN)]
    assert schedule.express_interval(rules, MIN, 1, "a", TASK) == 10 * MIN
    off_and_on = [_rule(groups={"a"}, every=None), _rule(groups={"a"}, every=20 * MIN)]
    assert schedule.express_interval(off_and_on, MIN, 1, "a", TASK) == 20 * MIN


def test_due_entities_each_at_its_own_interval() -> None:
    intervals = {CONTACT: 15 * MIN, APPOINTMENT: 5 * MIN, TASK: None}
    last = {CONTACT: T0, APPOINTMENT: T0, TASK: None}
    active = (CONTACT, APPOINTMENT, TASK)
    assert schedule.due_entities(active, last, intervals, T0 + 4 * MIN, {}) == frozenset()
    assert schedule.due_entities(active, last, intervals, T0 + 5 * MIN, {}) == {APPOINTMENT}
    assert schedule.due_entities(active, last, intervals, T0 + 15 * MIN, {}) == {
        CONTACT,
        APPOINTMENT,
    }
    # asked for by a sweep a minute ago: not again before its interval
    swept = {APPOINTMENT: T0 + 14 * MIN}
    assert schedule.due_entities(active, last, intervals, T0 + 15 * MIN, swept) == {CONTACT}


async def _passed(pool: asyncpg.Pool, mailbox: int, at: datetime, entities: Entities) -> None:
    """What an ok pass of `entities` leaves behind (the runs trigger dates them)."""
    names = None if entities is None else sorted(e.value for e in entities)
    await pool.execute(
        "INSERT INTO sync.runs (mailbox_id, kind, started_at, entities) VALUES ($1, 'express', $2,"
        " $3::text[])",
        mailbox,
        at,
        names,
    )
    await pool.execute(
        "UPDATE sync.runs SET outcome = 'ok', finished_at = $2 WHERE mailbox_id = $1 "
        "AND outcome IS NULL",
        mailbox,
        at,
    )
    await pool.execute(
        "UPDATE sync.mailboxes SET last_express_at = $2, initial_done = true WHERE id = $1",
        mailbox,
        at,
    )


async def _run_jobs(pool: asyncpg.Pool, at: datetime) -> dict[int, Entities]:
    """The queued express jobs, each as if its pass ran at `at`: {mailbox: entities}."""
    rows = await pool.fetch(
        "UPDATE sync.jobs SET status = 'done', finished_at = now() WHERE status = 'queued' "
        "RETURNING mailbox_id, entities"
    )
    ran: dict[int, Entities] = {}
    for r in rows:
        scope = None if r["entities"] is None else frozenset(map(EntityKind, r["entities"]))
        ran[r["mailbox_id"]] = scope
        await _passed(pool, r["mailbox_id"], at, scope)
    return ran


async def test_each_entity_is_swept_at_its_own_cadence(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    [box] = await add_mailboxes(pool, server, ["a@x.example"])
    ops = Operations(pool)
    schedules = Schedules(ops)
    for name, entity, every in (("c", "contacts", "15m"), ("a", "calendar", "5m"),
                                ("t", "tasks", "1h")):  # fmt: skip
        await schedules.set(name, ScheduleSpec(server="ex1", entities=[entity], every=every))
    await _passed(pool, box, T0, None)
    sweeper = Sweeper(pool, make_settings())
    seen: dict[int, Entities] = {}
    for minute in range(5, 65, 5):
        now = T0 + minute * MIN
        report = await sweeper.tick(now)
        ran = await _run_jobs(pool, now)
        assert ran == report.scopes
        seen[minute] = ran.get(box, frozenset())
    assert seen[5] == seen[10] == {APPOINTMENT}
    assert seen[15] == seen[30] == seen[45] == {APPOINTMENT, CONTACT}
    assert seen[20] == seen[25] == seen[35] == {APPOINTMENT}
    assert seen[60] is None  # all three due at once: one job for every entity


async def test_a_group_schedule_runs_only_its_groups(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    [paris] = await add_mailboxes(pool, server, ["p@x.example"], group="paris")
    [rome] = await add_mailboxes(pool, server, ["r@x.example"], group="rome")
    [london] = await add_mailboxes(pool, server, ["l@x.example"], group="london")
    [none] = await add_mailboxes(pool, server, ["n@x.example"])
    for box in (paris, rome, london, none):
        await _passed(pool, box, T0, None)
    schedules = Schedules(Operations(pool))
    # the server's own sweep off; two groups of any server every 5 minutes
    await schedules.set("quiet", ScheduleSpec(server="ex1", every="off"))
    await schedules.set("south", ScheduleSpec(groups=["paris", "rome"], every="5m"))
    sweeper = Sweeper(pool, make_settings())
    for minute in (5, 10, 15, 30, 60):
        report = await sweeper.tick(T0 + minute * MIN)
        assert sorted(report.express) == sorted([paris, rome]), minute
        assert report.scopes == {paris: None, rome: None}
        await _run_jobs(pool, T0 + minute * MIN)
    # without the server-wide "off" the others keep the server's interval (15 minutes)
    await schedules.remove("quiet")
    report = await sweeper.tick(T0 + 65 * MIN)
    assert set(report.express) == {paris, rome, london, none}


async def test_a_mailbox_without_a_dated_pass_falls_back_to_its_last_pass(
    pool: asyncpg.Pool,
) -> None:
    server = await add_server(pool)
    [box] = await add_mailboxes(pool, server, ["a@x.example"], modes=("two-way", "off", "two-way"))
    await pool.execute(
        "UPDATE sync.mailboxes SET last_express_at = $2, initial_done = true WHERE id = $1",
        box,
        T0,
    )
    await Schedules(Operations(pool)).set(
        "tasks", ScheduleSpec(server="ex1", entities=["tasks"], every="5m")
    )
    sweeper = Sweeper(pool, make_settings())
    assert (await sweeper.tick(T0 + 4 * MIN)).scopes == {}
    # the calendar is off: never asked for; contacts keep the server's 15 minutes
    assert (await sweeper.tick(T0 + 5 * MIN)).scopes == {box: frozenset({TASK})}
    await pool.execute("UPDATE sync.jobs SET status = 'done', finished_at = now()")  # no pass
    # every entity whose mode is not off due at once: one job for every entity
    assert (await sweeper.tick(T0 + 15 * MIN)).scopes == {box: None}


async def test_schedules_are_checked_named_and_listed(pool: asyncpg.Pool) -> None:
    await add_server(pool)
    schedules = Schedules(Operations(pool))
    bad = {
        "no target": ("s", ScheduleSpec(every="5m"), "server"),
        "bad name": ("-s", ScheduleSpec(server="ex1", every="5m"), "name"),
        "bad every": ("s", ScheduleSpec(server="ex1", every="soon"), "every"),
        "too often": ("s", ScheduleSpec(server="ex1", every="1s"), "every"),
        "bad entity": ("s", ScheduleSpec(server="ex1", entities=["notes"], every="5m"), "entities"),
        "no groups": ("s", ScheduleSpec(groups=[], every="5m"), "groups"),
    }
    for case, (name, spec, field) in bad.items():
        with pytest.raises(InvalidInput) as refused:
            await schedules.set(name, spec)
        assert refused.value.field == field, case
    with pytest.raises(NotFound):
        await schedules.set("s", ScheduleSpec(server="nowhere", every="5m"))
    made, new = await schedules.set(
        "cal", ScheduleSpec(server="ex1", entities=["appointment", "calendar"], every="5m")
    )
    assert new and (made.entities, made.every, made.server) == (["calendar"], "300s", "ex1")
    again, new = await schedules.set("cal", ScheduleSpec(groups=["b", "a", "a"], every="off"))
    assert not new and (again.server, again.groups, again.every) == (None, ["a", "b"], "off")
    assert [s.name for s in await schedules.list("ex1")] == ["cal"]
    many = [f"g{i:04d}" for i in range(2_000)]  # no limit a deployment would meet
    wide, _ = await schedules.set("wide", ScheduleSpec(groups=many, every="1h"))
    assert wide.groups == many
    await schedules.remove("wide")
    await schedules.remove("cal")
    assert await schedules.list() == []
    with pytest.raises(NotFound):
        await schedules.remove("cal")


# -- push: the entities whose folders changed ------------------------------------------------


def test_a_notification_covers_the_entities_of_its_folders() -> None:
    folders = {"f-contacts": CONTACT, "f-calendar": APPOINTMENT}
    assert entities_of(["f-contacts", "f-contacts"], folders) == {CONTACT}
    assert entities_of(["f-calendar", "f-contacts"], folders) == {CONTACT, APPOINTMENT}
    # a folder not watched, or an event without one: every entity, never a missed change
    assert entities_of(["f-contacts", "elsewhere"], folders) is None
    assert entities_of([None], folders) is None
    assert entities_of([], folders) is None


async def _open_scopes(pool: asyncpg.Pool) -> dict[int, list[str] | None]:
    rows = await pool.fetch("SELECT mailbox_id, entities FROM sync.jobs WHERE status = 'queued'")
    return {r["mailbox_id"]: r["entities"] for r in rows}


async def test_an_ews_burst_queues_a_job_of_the_entities_it_named(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    a, b, c = await add_mailboxes(pool, server, ["a@x.example", "b@x.example", "c@x.example"])
    now = [T0]
    push = PushManager(pool, make_settings(), clock=lambda: now[0])
    push._on_event(a, frozenset({CONTACT}))
    push._on_event(a, frozenset({CONTACT}))
    push._on_event(b, frozenset({APPOINTMENT}))
    push._on_event(b, None)  # a folder it could not tell
    push._on_catch_up([c])
    now[0] = T0 + timedelta(seconds=5)
    assert sorted(await push.flush()) == [a, b, c]
    assert await _open_scopes(pool) == {a: ["contact"], b: None, c: None}
    # the next burst of a starts afresh (its job is still queued: the sets merge there)
    push._on_event(a, frozenset({TASK}))
    now[0] = T0 + timedelta(seconds=10)
    await push.flush()
    assert (await _open_scopes(pool))[a] == ["contact", "task"]


async def test_graph_notifications_queue_a_job_of_their_entities(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    await add_mailboxes(pool, server, ["a@x.example", "b@x.example"])
    await add_mailboxes(pool, server, ["gone@x.example"])
    await pool.execute("UPDATE sync.mailboxes SET state = 'disabled' WHERE email LIKE 'gone%'")
    changes = GraphChanges()
    changes.record("a@x.example", CONTACT, T0)
    changes.record("a@x.example", CONTACT, T0 + MIN)
    changes.record("a@x.example", TASK, T0 + MIN)
    changes.record("b@x.example", APPOINTMENT, T0)
    changes.record("b@x.example", None, T0)  # a notification whose entity is not known
    changes.record("gone@x.example", TASK, T0)
    taken = changes.take()
    assert len(changes) == 0 and taken["a@x.example"].first_at == T0
    queue, store = JobQueue(pool, timedelta(seconds=30)), Store(pool)
    queued = {e: await enqueue_change(queue, store, e, c) for e, c in taken.items()}
    assert queued == {"a@x.example": True, "b@x.example": True, "gone@x.example": False}
    rows = await pool.fetch(
        "SELECT m.email, j.entities, j.source, j.oldest_change_at FROM sync.jobs j "
        "JOIN sync.mailboxes m ON m.id = j.mailbox_id ORDER BY m.email"
    )
    assert [(r["email"], r["entities"], r["source"]) for r in rows] == [
        ("a@x.example", ["contact", "task"], "push"),
        ("b@x.example", None, "push"),
    ]
    assert rows[0]["oldest_change_at"] == T0
