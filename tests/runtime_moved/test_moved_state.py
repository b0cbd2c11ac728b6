"""The `moved` mailbox state against a real database: no schedule, feed, push channel or
worker picks a moved mailbox; it is shown apart from failures (status, /metrics, listings,
the API document); an operator's enable makes it active again. How a pass comes to give it
(Exchange's answer for a mailbox moved away) is tests/e2e/test_mailbox_move.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from sync_service import metrics
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.enums import MAILBOX_STATES, MailboxState
from sync_service.db.queue import JobQueue, PassKind
from sync_service.db.store import Store
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.operator import api
from sync_service.operator.operations import Operations
from sync_service.runtime.moved import moved_reason
from tests.dispatcher.conftest import add_mailboxes, add_server, make_settings, open_jobs

REASON = moved_reason("gone@x.example", "ex1", RuntimeError("No mailbox with such guid."), ["eo"])


async def _one_moved(pool: asyncpg.Pool) -> tuple[int, int]:
    """An active mailbox and a moved one on server ex1: their ids."""
    server = await add_server(pool)
    active, moved = await add_mailboxes(pool, server, ["stays@x.example", "gone@x.example"])
    await Store(pool).set_mailbox_state(moved, MailboxState.MOVED, REASON)
    return active, moved


async def test_no_schedule_feed_or_push_channel_picks_a_moved_mailbox(pool: asyncpg.Pool) -> None:
    active, _ = await _one_moved(pool)
    report = await Sweeper(pool, make_settings()).tick(datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert report.express == (active,)
    assert set(await open_jobs(pool)) == {active}
    state = DispatcherState(pool)
    async with pool.acquire() as conn:
        users = await state.mailboxes_of_users(conn, ["stays@x.example", "gone@x.example"])
        assert users == [(active, "stays@x.example")]
        assert [m.id for m in await state.scheduled_mailboxes(conn, None, None)] == [active]
    assert [m.id for m in await state.push_mailboxes()] == [active]
    # An operator's request for the whole server skips it, saying why.
    request = await Operations(pool).request_sync(server="ex1")
    assert [job.mailbox for job in request.jobs] == ["stays@x.example"]
    assert request.skipped == [{"mailbox": "gone@x.example", "state": "moved"}]


async def test_a_queued_job_of_a_moved_mailbox_waits_until_it_is_enabled(
    pool: asyncpg.Pool,
) -> None:
    _, moved = await _one_moved(pool)
    queue = JobQueue(pool, timedelta(seconds=60))
    await queue.enqueue(moved, PassKind.EXPRESS)
    assert await queue.claim("e1", 10) == []
    enabled = await Operations(pool).set_state("gone@x.example", True)
    assert (enabled.state, enabled.state_reason) == (MailboxState.ACTIVE, None)
    assert [job.mailbox_id for job in await queue.claim("e1", 10)] == [moved]


async def test_a_moved_mailbox_is_shown_apart_from_the_failed_ones(pool: asyncpg.Pool) -> None:
    await _one_moved(pool)
    ops = Operations(pool)
    status = await ops.status()
    assert status["mailboxes"] == {s: 0 for s in MAILBOX_STATES} | {"active": 1, "moved": 1}
    await ops.refresh_gauges()
    gauge = metrics.REGISTRY.get_sample_value
    assert gauge("sync_mailboxes", {"state": "moved"}) == 1.0
    assert gauge("sync_mailboxes", {"state": "disabled"}) == 0.0
    page = await ops.list_mailboxes(state="moved")
    assert [(m["email"], m["state"], m["reason"]) for m in page.mailboxes] == [
        ("gone@x.example", "moved", REASON)
    ]
    assert (await ops.list_mailboxes(state="disabled")).mailboxes == []
    listing = api.openapi_document()["paths"]["/api/v1/mailboxes"]["get"]["parameters"]
    [state] = [p for p in listing if p["name"] == "state"]
    assert "moved" in state["schema"]["enum"]


def test_the_reason_names_the_target_when_one_other_server_is_configured() -> None:
    error = RuntimeError("No mailbox with such guid.")
    one = moved_reason("a@x.example", "onprem", error, ["online"])
    assert one.startswith("moved: onprem no longer holds this mailbox (No mailbox with such guid.)")
    assert one.endswith("run: sync-service mailboxes move a@x.example --to online")
    several = moved_reason("a@x.example", "onprem", error, [f"s{n}" for n in range(7)])
    assert several.endswith("--to SERVER (the server that holds it now: s0, s1, s2, s3, s4, ...)")
    none = moved_reason("a@x.example", "onprem", error, [])
    assert none.endswith("--to SERVER (the server that holds it now: add it with "
                         "sync-service servers add)")  # fmt: skip


async def test_a_job_waiting_for_a_moved_mailbox_is_not_counted_as_queued_work(
    pool: asyncpg.Pool,
) -> None:
    """A rerun asked for while the pass that found the move ran stays queued until the
    mailbox moves: it waits for an operator, not for an engine (no SyncQueueStale)."""
    active, moved = await _one_moved(pool)
    queue = JobQueue(pool, timedelta(seconds=60))
    await queue.enqueue(moved, PassKind.EXPRESS)
    await pool.execute("UPDATE sync.jobs SET requested_at = now() - interval '2 hours'")
    depth = await queue.depth()
    assert (depth.queued, depth.oldest_queued_seconds) == (0, 0.0)
    await queue.enqueue(active, PassKind.EXPRESS)
    depth = await queue.depth()
    assert depth.queued == 1 and depth.oldest_queued_seconds < 60
    await Operations(pool).set_state("gone@x.example", True)
    depth = await queue.depth()
    assert depth.queued == 2 and depth.oldest_queued_seconds > 7000
