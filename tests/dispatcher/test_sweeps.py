"""The schedule tick against a real database, driven by explicit instants."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.db.store import Server
from sync_service.dispatcher import schedule
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.operator.operations import Operations
from tests.dispatcher.conftest import add_mailboxes, add_server, make_settings, open_jobs


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def _set_last_pass(pool: asyncpg.Pool, ids: list[int], at: datetime) -> None:
    await pool.execute(
        "UPDATE sync.mailboxes SET last_express_at = $2, initial_done = true "
        "WHERE id = ANY($1::bigint[])",
        ids,
        at,
    )


async def _request(
    pool: asyncpg.Pool, kind: PassKind, server: Server, groups: list[str] | None = None
) -> list[int]:
    """An operator's request for a server, as the CLI and the API make it: the ids queued."""
    request = await Operations(pool).request_sync(server=server.name, groups=groups, mode=kind)
    ids = {r["email"]: r["id"] for r in await pool.fetch("SELECT id, email FROM sync.mailboxes")}
    return [ids[job.mailbox] for job in request.jobs]


async def test_complete_pass_at_local_time_across_dst(pool: asyncpg.Pool) -> None:
    """Berlin, 02:30 local, no spread: the night of the spring change runs at 03:30 CEST."""
    server = await add_server(pool, time_zone="Europe/Berlin", complete_at=time(2, 30))
    box, new = await add_mailboxes(pool, server, ["a@x.example", "new@x.example"])
    sweeper = Sweeper(pool, make_settings(SYNC_COMPLETE_WINDOW="1"))
    zone = ZoneInfo("Europe/Berlin")
    await _set_last_pass(pool, [box], utc(2030, 1, 1))  # keep the express sweep quiet
    # `new` never had its initial pass: it is asked for an express (which becomes the
    # initial pass), never a complete one

    async def tick_local(*wall: int) -> tuple[int, ...]:
        now = datetime(*wall, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]
        report = await sweeper.tick(now)
        if report.complete:
            await pool.execute(
                "UPDATE sync.jobs SET status = 'done', finished_at = now() WHERE kind = 'complete'"
            )
        return report.complete

    assert await tick_local(2026, 3, 27, 23, 0) == ()  # first tick: the schedule starts here
    assert await tick_local(2026, 3, 28, 2, 29) == ()
    assert await tick_local(2026, 3, 28, 2, 31) == (box,)  # CET night
    assert await tick_local(2026, 3, 28, 23, 0) == ()
    assert await tick_local(2026, 3, 29, 1, 59) == ()
    assert await tick_local(2026, 3, 29, 3, 29) == ()  # 02:30 does not exist this night
    assert await tick_local(2026, 3, 29, 3, 31) == (box,)
    assert await tick_local(2026, 3, 30, 2, 29) == ()
    assert await tick_local(2026, 3, 30, 2, 31) == (box,)  # CEST night, 00:31 UTC
    assert await tick_local(2026, 3, 30, 12, 0) == ()
    kinds = await pool.fetch("SELECT mailbox_id, kind FROM sync.jobs ORDER BY id")
    assert [(r["mailbox_id"], r["kind"]) for r in kinds] == [(new, "express")] + [
        (box, "complete")
    ] * 3


async def test_complete_passes_spread_over_the_window(pool: asyncpg.Pool) -> None:
    server = await add_server(pool, complete_at=time(2, 0))
    ids = await add_mailboxes(pool, server, [f"u{i}@x.example" for i in range(300)])
    await _set_last_pass(pool, ids, utc(2030, 1, 1))
    sweeper = Sweeper(pool, make_settings(SYNC_COMPLETE_WINDOW="1h"))
    await sweeper.tick(utc(2026, 6, 1, 1, 0))
    started: dict[int, datetime] = {}
    now = utc(2026, 6, 1, 1, 55)
    while now <= utc(2026, 6, 1, 3, 5):
        for i in (await sweeper.tick(now)).complete:
            started[i] = now
        now += timedelta(minutes=5)
    assert sorted(started) == sorted(ids)  # each mailbox exactly once (a dict would hide repeats)
    per_tick = list(map(list(started.values()).count, set(started.values())))
    assert max(per_tick) <= 50  # 300 over 12 ticks of 5 minutes: about 25 each
    assert min(started.values()) >= utc(2026, 6, 1, 2) and max(started.values()) <= utc(
        2026, 6, 1, 3, 5
    )


async def test_express_sweep_skips_mailboxes_push_kept_fresh(pool: asyncpg.Pool) -> None:
    server = await add_server(pool, express_interval=timedelta(minutes=10))
    pushed, polled, fresh = await add_mailboxes(
        pool, server, ["pushed@x.example", "polled@x.example", "fresh@x.example"]
    )
    now = utc(2026, 6, 1, 12)
    await _set_last_pass(pool, [pushed, polled], now - timedelta(hours=1))
    await _set_last_pass(pool, [fresh], now - timedelta(minutes=9))
    covered = {pushed}
    sweeper = Sweeper(pool, make_settings(), lambda: covered)
    report = await sweeper.tick(now)
    assert report.express == (polled,)
    assert await open_jobs(pool) == {polled: ("express", "schedule")}
    # a minute later: `fresh` reached its interval; `polled` is not asked for again before
    # its job ran
    assert (await sweeper.tick(now + timedelta(minutes=1))).express == (fresh,)
    # once its stream is down, the pushed mailbox is polled like any other
    covered.clear()
    assert (await sweeper.tick(now + timedelta(minutes=2))).express == (pushed,)
    # their jobs never ran: each is asked for again one interval after the last request
    assert (await sweeper.tick(now + timedelta(minutes=11))).express == (polled, fresh)


async def test_group_limited_sweeps_and_requests(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    a = await add_mailboxes(pool, server, ["a1@x.example", "a2@x.example"], group="a")
    b = await add_mailboxes(pool, server, ["b1@x.example"], group="b")
    c = await add_mailboxes(pool, server, ["c1@x.example"], group="c")
    none = await add_mailboxes(pool, server, ["n1@x.example"])
    chosen = await _request(pool, PassKind.COMPLETE, server, groups=["a", "c"])
    assert sorted(chosen) == sorted(a + c)
    assert set(await open_jobs(pool)) == set(a + c)
    await pool.execute("DELETE FROM sync.jobs")
    sweeper = Sweeper(pool, make_settings(), groups={"b"})
    assert (await sweeper.tick(utc(2026, 6, 1, 12))).express == tuple(b)
    assert set(await open_jobs(pool)) == set(b)
    everything = await _request(pool, PassKind.EXPRESS, server)
    assert sorted(everything) == sorted(a + b + c + none)


async def test_auto_recover_only_when_enabled(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    ok, restored = await add_mailboxes(pool, server, ["ok@x.example", "restored@x.example"])
    await _set_last_pass(pool, [ok, restored], utc(2030, 1, 1))
    await pool.execute("UPDATE sync.mailboxes SET state = 'needs_recovery' WHERE id = $1", restored)
    now = utc(2026, 6, 1, 12)
    assert (await Sweeper(pool, make_settings()).tick(now)).recover == ()
    assert await open_jobs(pool) == {}
    report = await Sweeper(pool, make_settings(SYNC_AUTO_RECOVER="true")).tick(now)
    assert report.recover == (restored,)
    assert await open_jobs(pool) == {restored: ("recover", "auto-recover")}


async def test_retention_purges_exactly_what_is_older(pool: asyncpg.Pool) -> None:
    server = await add_server(pool)
    [box] = await add_mailboxes(pool, server, ["r@x.example"])
    now = utc(2026, 6, 15, 3)
    cutoff = schedule.retention_cutoff(now, 14)
    just_older, at_cutoff = cutoff - timedelta(microseconds=1), cutoff
    for stamp in (just_older, at_cutoff, now):
        await pool.execute(
            "INSERT INTO sync.runs (mailbox_id, kind, started_at, outcome) "
            "VALUES ($1, 'express', $2, 'ok')",
            box,
            stamp,
        )
        await pool.execute(
            "INSERT INTO sync.item_errors (mailbox_id, entity, direction, reason, created_at) "
            "VALUES ($1, 'contact', 'to_crm', 'too long', $2)",
            box,
            stamp,
        )
        for status in ("done", "failed"):
            await pool.execute(
                "INSERT INTO sync.jobs (mailbox_id, kind, status, finished_at) "
                "VALUES ($1, 'express', $2, $3)",
                box,
                status,
                stamp,
            )
    # an unfinished job is never purged, however old
    await pool.execute(
        "INSERT INTO sync.jobs (mailbox_id, kind, status, requested_at) "
        "VALUES ($1, 'express', 'queued', $2)",
        box,
        just_older - timedelta(days=100),
    )
    sweeper = Sweeper(pool, make_settings(SYNC_RETENTION_DAYS="14"))
    assert await sweeper.retention(now) == {"runs": 1, "item_errors": 1, "jobs": 2, "audit": 0}
    assert await pool.fetchval("SELECT min(started_at) FROM sync.runs") == at_cutoff
    assert await pool.fetchval("SELECT min(created_at) FROM sync.item_errors") == at_cutoff
    finished = await pool.fetch(
        "SELECT finished_at FROM sync.jobs WHERE status IN ('done', 'failed')"
    )
    assert min(r["finished_at"] for r in finished) == at_cutoff
    assert await pool.fetchval("SELECT count(*) FROM sync.jobs WHERE status = 'queued'") == 1
    # daily: a second call the same day purges nothing, even with older rows again
    await pool.execute(
        "INSERT INTO sync.runs (mailbox_id, kind, started_at) VALUES ($1, 'express', $2)",
        box,
        just_older,
    )
    assert await sweeper.retention(now + timedelta(hours=23)) == {}
    assert (await sweeper.retention(now + timedelta(days=1)))["runs"] == 2
