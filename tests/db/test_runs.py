"""Run history in SQL: runs end with the hold on their job, counts commit with the links.

Each test plays an engine with the real queue and link store against a real PostgreSQL: what
a worker does at each step, and what a process killed between two steps leaves behind.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from sync_service.db.links import LinkStore, RunEnd
from sync_service.db.migrations import load_migrations, migrate
from sync_service.db.operator_views import OperatorViews
from sync_service.db.pool import connect
from sync_service.db.queue import JobQueue, PassKind, RunClose
from tests.db.test_links import _row
from tests.db.test_queue import _mailboxes

CREATE = {"crm_to_exchange": {"create": 2}}


async def _run(pool: asyncpg.Pool, run_id: int) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM sync.runs WHERE id = $1", run_id)
    assert row is not None
    return dict(row)


async def _claim_and_begin(
    queue: JobQueue, links: LinkStore, mailbox: int, engine: str
) -> tuple[int, int]:
    """(job id, run id) of a pass `engine` has started for `mailbox`."""
    await queue.enqueue(mailbox, PassKind.COMPLETE)
    [job] = await queue.claim(engine, 1)
    begun = await links.begin_run(mailbox, job.id, job.kind.value, False, engine)
    assert begun is not None
    return job.id, begun.run_id


async def test_the_reaper_ends_the_runs_of_a_dead_engine_as_lost(pool: asyncpg.Pool) -> None:
    dead_box, live_box = await _mailboxes(pool, 2)
    links = LinkStore(pool)
    short = JobQueue(pool, lease=timedelta(milliseconds=10))
    long = JobQueue(pool, lease=timedelta(seconds=30))
    _, dead_run = await _claim_and_begin(short, links, dead_box, "killed-engine")
    _, live_run = await _claim_and_begin(long, links, live_box, "live-engine")
    await asyncio.sleep(0.05)  # the killed engine renews nothing

    assert await long.reap() == [dead_box]
    lost = await _run(pool, dead_run)
    assert lost["outcome"] == "lost" and lost["finished_at"] is not None
    assert lost["error"] == "engine killed-engine stopped renewing the lease of its job"
    live = await _run(pool, live_run)
    assert (live["outcome"], live["finished_at"]) == (None, None)


async def test_a_run_the_reaper_ended_keeps_lost_when_its_pass_reports_late(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    short = JobQueue(pool, lease=timedelta(milliseconds=10))
    _, run_id = await _claim_and_begin(short, links, box, "slow-engine")
    await asyncio.sleep(0.05)
    await short.reap()
    await links.finish_run(run_id, RunEnd("ok", requests=7, throttled=1, error=None, plan=None))
    run = await _run(pool, run_id)
    assert (run["outcome"], run["requests"], run["throttled"]) == ("lost", 7, 1)


async def test_handing_a_job_back_ends_the_run_its_engine_left_open(pool: asyncpg.Pool) -> None:
    cancelled_box, crashed_box, lost_box = await _mailboxes(pool, 3)
    links = LinkStore(pool)
    queue = JobQueue(pool, lease=timedelta(seconds=30))

    job, run_id = await _claim_and_begin(queue, links, cancelled_box, "engine-a")
    stopped = RunClose("cancelled", "the service stopped before the pass ended")
    assert await queue.retry_later(job, "engine-a", timedelta(0), "interrupted", stopped)
    run = await _run(pool, run_id)
    assert (run["outcome"], run["error"]) == ("cancelled", stopped.error)
    assert run["finished_at"] is not None

    job, run_id = await _claim_and_begin(queue, links, crashed_box, "engine-a")
    assert await queue.finish(job, "engine-a", failed=True, outcome="crashed") == "failed"
    run = await _run(pool, run_id)
    assert (run["outcome"], run["error"]) == ("failed", "crashed")

    # An engine that no longer holds the job (it was reaped and claimed again) ends nothing:
    # the run of the engine holding it now goes on.
    job, run_id = await _claim_and_begin(queue, links, lost_box, "engine-b")
    assert not await queue.retry_later(job, "engine-a", timedelta(0), "interrupted", stopped)
    assert await queue.finish(job, "engine-a", failed=True, outcome="crashed") is None
    assert (await _run(pool, run_id))["outcome"] is None


async def test_a_run_ended_by_its_pass_is_not_ended_again(pool: asyncpg.Pool) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    job, run_id = await _claim_and_begin(queue, links, box, "engine-a")
    await links.finish_run(run_id, RunEnd("transient", 3, 0, "TransientError: reset", None))
    await queue.retry_later(job, "engine-a", timedelta(seconds=5), "transient")
    run = await _run(pool, run_id)
    assert (run["outcome"], run["error"], run["requests"]) == (
        "transient",
        "TransientError: reset",
        3,
    )


async def test_writes_count_in_the_statement_that_links_them(pool: asyncpg.Pool) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    _, run_id = await _claim_and_begin(queue, links, box, "engine-a")

    await links.upsert_links(
        box, "contact", [_row("c1", "e1"), _row("c2", "e2")], run_id=run_id, written=CREATE
    )
    await links.upsert_links(
        box,
        "contact",
        [_row("c3", "e3")],
        run_id=run_id,
        written={"crm_to_exchange": {"create": 1}, "exchange_to_crm": {"update": 1}},
    )
    await links.delete_link(
        box, "contact", "c1", run_id=run_id, written={"crm_to_exchange": {"delete": 1}}
    )
    await links.upsert_links(box, "task", [_row("t1", "x1")], run_id=run_id, written=CREATE)
    # A statement that fails (two new rows claim one Exchange item) links and counts nothing.
    with pytest.raises(asyncpg.UniqueViolationError):
        await links.upsert_links(
            box, "contact", [_row("c8", "e8"), _row("c9", "e8")], run_id=run_id, written=CREATE
        )
    # No end was recorded (the process was killed here): the counts are already there.
    run = await _run(pool, run_id)
    assert run["outcome"] is None
    assert run["counts"] == {
        "contact": {
            "crm_to_exchange": {"create": 3, "delete": 1},
            "exchange_to_crm": {"update": 1},
        },
        "task": {"crm_to_exchange": {"create": 2}},
    }
    linked = await pool.fetch("SELECT crm_id FROM sync.item_links ORDER BY crm_id")
    assert [r["crm_id"] for r in linked] == ["c2", "c3", "t1"]


@pytest.mark.parametrize(
    ("counts", "entity", "writes", "expected"),
    [
        ({}, "contact", [["exchange_to_crm", "create", 1]],
         {"contact": {"exchange_to_crm": {"create": 1}}}),
        (
            {"contact": {"exchange_to_crm": {"create": 1}}, "task": {"x": {"delete": 4}}},
            "contact",
            [["exchange_to_crm", "create", 2], ["crm_to_exchange", "delete", 1],
             ["exchange_to_crm", "update", 1]],
            {
                "contact": {
                    "exchange_to_crm": {"create": 3, "update": 1},
                    "crm_to_exchange": {"delete": 1},
                },
                "task": {"x": {"delete": 4}},
            },
        ),
        # What older passes recorded for an entity without writes, and no writes at all.
        ({"contact": {}}, "contact", [], {"contact": {}}),
        ({"contact": {}}, "task", [["crm_to_exchange", "create", 1]],
         {"contact": {}, "task": {"crm_to_exchange": {"create": 1}}}),
    ],
)  # fmt: skip
async def test_run_counts_add(
    pool: asyncpg.Pool,
    counts: dict[str, Any],
    entity: str,
    writes: list[list[object]],
    expected: dict[str, Any],
) -> None:
    added = await pool.fetchval(
        "SELECT sync.run_counts_add($1::jsonb, $2, $3::jsonb)", counts, entity, writes
    )
    assert added == expected


async def test_a_create_linked_by_a_later_pass_counts_for_the_run_that_made_it(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    short = JobQueue(pool, lease=timedelta(milliseconds=10))
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    # The killed pass commits the intents of three creates (one of each kind), makes them, and
    # is killed before it links them.
    _, killed = await _claim_and_begin(short, links, box, "killed-engine")
    intents = [_row("c1", "", pending="exchange"), _row("c2", "", pending="exchange"),
               _row("r1", "e9", pending="crm")]  # fmt: skip
    await links.upsert_links(box, "contact", intents, run_id=killed)
    await asyncio.sleep(0.05)
    await queue.reap()
    # The next pass finds the items and the record made: c1 and r1 are linked as they are,
    # c2 is written again first (a replay that found it). A settled row without "earlier"
    # (c3: this pass's own create) counts only what the statement says.
    _, later = await _claim_and_begin(queue, links, box, "live-engine")
    await links.upsert_links(
        box,
        "contact",
        [_row("c1", "e1") | {"earlier": True}, _row("r1", "e9") | {"earlier": True},
         _row("c3", "e3")],
        run_id=later,
        written={"crm_to_exchange": {"create": 1}},
    )  # fmt: skip
    await links.upsert_links(
        box,
        "contact",
        [_row("c2", "e2") | {"earlier": True}],
        run_id=later,
        written={"crm_to_exchange": {"update": 1}},
    )
    # Linked again (already settled): nothing more is counted for anyone.
    await links.upsert_links(box, "contact", [_row("c1", "e1") | {"earlier": True}], run_id=later)
    assert (await _run(pool, killed))["counts"] == {
        "contact": {"crm_to_exchange": {"create": 2}, "exchange_to_crm": {"create": 1}}
    }
    assert (await _run(pool, later))["counts"] == {
        "contact": {"crm_to_exchange": {"create": 1, "update": 1}}
    }


async def test_an_intent_committed_again_keeps_the_run_that_first_committed_it(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    await links.upsert_links(box, "contact", [_row("c1", "", pending="exchange")], run_id=11)
    await links.upsert_links(box, "contact", [_row("c1", "", pending="exchange")], run_id=12)
    assert await pool.fetchval("SELECT intent_run FROM sync.item_links") == 11
    await links.upsert_links(box, "contact", [_row("c1", "e1")], run_id=12)
    assert await pool.fetchval("SELECT intent_run FROM sync.item_links") is None
    await links.upsert_links(box, "contact", [_row("c1", "e1", pending="crm")], run_id=13)
    assert await pool.fetchval("SELECT intent_run FROM sync.item_links") == 13


async def test_a_pending_row_deleted_after_its_create_counts_the_create_for_its_run(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    queue = JobQueue(pool, lease=timedelta(seconds=30))
    job, first = await _claim_and_begin(queue, links, box, "engine-a")
    await links.upsert_links(box, "contact", [_row("c1", "", pending="exchange")], run_id=first)
    await links.upsert_links(box, "contact", [_row("c2", "", pending="exchange")], run_id=first)
    assert await queue.retry_later(job, "engine-a", timedelta(0), "interrupted")
    _, second = await _claim_and_begin(queue, links, box, "engine-a")
    deleted = {"crm_to_exchange": {"delete": 1}}
    await links.delete_link(box, "contact", "c1", run_id=second, written=deleted, earlier=True)
    await links.delete_link(box, "contact", "c2", run_id=second)  # an unlink: nothing known
    assert (await _run(pool, first))["counts"] == {"contact": {"crm_to_exchange": {"create": 1}}}
    assert (await _run(pool, second))["counts"] == {"contact": {"crm_to_exchange": {"delete": 1}}}


async def test_a_first_express_pass_is_recorded_as_initial(pool: asyncpg.Pool) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    first = await links.begin_run(box, 1, PassKind.EXPRESS.value, False, "engine-a")
    assert first is not None and first.kind == "initial"
    await pool.execute("UPDATE sync.mailboxes SET initial_done = true WHERE id = $1", box)
    later = await links.begin_run(box, 2, PassKind.EXPRESS.value, False, "engine-a")
    complete = await links.begin_run(box, 3, PassKind.COMPLETE.value, False, "engine-a")
    assert later is not None and later.kind == "express"
    assert complete is not None and complete.kind == "complete"
    kinds = await pool.fetch("SELECT kind FROM sync.runs ORDER BY id")
    assert [r["kind"] for r in kinds] == ["initial", "express", "complete"]


async def test_only_runs_under_a_live_lease_count_as_running(pool: asyncpg.Pool) -> None:
    live_box, dead_box = await _mailboxes(pool, 2)
    links = LinkStore(pool)
    views = OperatorViews(pool)
    long = JobQueue(pool, lease=timedelta(seconds=30))
    short = JobQueue(pool, lease=timedelta(milliseconds=10))
    await _claim_and_begin(long, links, live_box, "live-engine")
    await _claim_and_begin(short, links, dead_box, "killed-engine")
    await asyncio.sleep(0.05)  # the killed engine's lease runs out; nobody has reaped it yet

    since = await views.now() - timedelta(hours=1)
    summary = {r["outcome"]: r["passes"] for r in await views.runs_summary(since)}
    assert summary == {"running": 1, "lost": 1}
    runs = {r["engine"]: r["outcome"] for r in await views.runs(None, since, 10)}
    assert runs == {"live-engine": None, "killed-engine": "lost"}
    depth = await long.depth()
    assert (depth.queued, depth.running, depth.stalled) == (0, 1, 1)

    await long.reap()
    summary = {r["outcome"]: r["passes"] for r in await views.runs_summary(since)}
    assert summary == {"running": 1, "lost": 1}
    depth = await long.depth()
    assert (depth.queued, depth.running, depth.stalled) == (1, 1, 0)


async def test_the_migration_ends_runs_that_older_engines_left_open(empty_db_url: str) -> None:
    migrations = load_migrations()
    before = [m for m in migrations if m.version < 6]
    conn = await connect(empty_db_url)
    try:
        await migrate(conn, before)
        await conn.execute(
            "INSERT INTO sync.servers (name, backend, url, auth_kind) "
            "VALUES ('ex', 'ews', 'https://ex.example/EWS/Exchange.asmx', 'basic')"
        )
        await conn.execute(
            "INSERT INTO sync.mailboxes (crm_user_id, email, server_id) "
            "VALUES ('u1', 'a@example.com', 1), ('u2', 'b@example.com', 1)"
        )
        # Job 1: its engine still holds it. Job 2: done long ago, its run never ended.
        await conn.execute(
            "INSERT INTO sync.jobs (mailbox_id, kind, status, lease_owner, lease_expires_at) "
            "VALUES (1, 'express', 'running', 'old-engine', now() + interval '1 minute'), "
            "(2, 'express', 'done', NULL, NULL)"
        )
        await conn.execute(
            "INSERT INTO sync.runs (mailbox_id, job_id, kind, engine, started_at) "
            "VALUES (1, 1, 'express', 'old-engine', now()), (2, 2, 'express', 'old-engine', now())"
        )
        applied = await migrate(conn, [m for m in migrations if m.version == 6])
        assert applied == ["0006_run_states.sql"]
        rows = await conn.fetch("SELECT job_id, outcome, error FROM sync.runs ORDER BY job_id")
        assert [(r["job_id"], r["outcome"]) for r in rows] == [(1, None), (2, "lost")]
        assert "migration 0006" in rows[1]["error"]
    finally:
        await conn.close()
