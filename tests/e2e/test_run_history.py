"""Run history after a stop: SIGTERM and SIGKILL during an initial sync, then a restart.

The service runs as a real process against a slowed simulator (so that passes are mid-way
when the signal comes); the restart runs against a fast one and finishes the work. Afterwards
every run has a final state, the runs' counts add up to what Exchange and the CRM really
received, and `status` shows nothing running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import asyncpg

from ews_client.simulator.config import LatencyConfig, SimulatorConfig
from sync_service.db.queue import PassKind
from tests.e2e.harness import SECRET_ENV, Harness, harness
from tests.service_process import ServiceProcess, free_port, run_cli, service_env

MAILBOXES = 3
CRM_ONLY = 600  # made in Exchange by the sync: 12 CreateItem batches of 50 per mailbox
EXCHANGE_ONLY = 20  # made in the CRM by the sync
# Slow enough that a pass lasts well beyond the 20 s a stop waits for it (a batch of 50 items
# takes 10 s, and a mailbox's 12 batches go 4 at a time: 30 s), so that a SIGTERM cancels
# passes that have linked part of their writes.
SLOW = SimulatorConfig(latency=LatencyConfig(base_s=0.02, per_item_s=0.2))
TOKEN = "history-test-token"


async def _seed(h: Harness) -> list[str]:
    """Mailboxes whose first pass is queued as express (it runs as initial)."""
    emails = []
    for n in range(MAILBOXES):
        email = f"history{n}@sim.example"
        user, mailbox = await h.add_user(email)
        await h.pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
            "SELECT $1, 'Crm', 'C' || i, 'c' || i || '.' || $2::text || '@example.com' "
            "FROM generate_series(1, $3::int) AS i",
            user,
            str(n),
            CRM_ONLY,
        )
        for i in range(EXCHANGE_ONLY):
            await h.owner(
                "POST",
                f"/mailboxes/{email}/items",
                {
                    "folder": "contacts",
                    "fields": {
                        "GivenName": "Ex",
                        "Surname": f"E{i}",
                        "EmailAddresses": {"EmailAddress1": f"e{i}.{n}@example.com"},
                    },
                },
            )
        await h.queue.enqueue(mailbox.id, PassKind.EXPRESS)
        emails.append(email)
    return emails


def _env(db_url: str) -> dict[str, str]:
    return service_env(
        SYNC_DATABASE_URL=db_url,
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        SYNC_API_TOKEN=TOKEN,
        SYNC_ROLES="engine,api",
        SYNC_JOB_LEASE="2s",
        SYNC_MAX_CONCURRENT_MAILBOXES=str(MAILBOXES),
        **{SECRET_ENV: os.environ[SECRET_ENV]},
    )


async def _until(pool: asyncpg.Pool, sql: str, wanted: int, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await pool.fetchval(sql) < wanted:
            await asyncio.sleep(0.05)


async def _mid_way(pool: asyncpg.Pool, engine: str) -> None:
    """Every mailbox's pass of `engine` has linked (and counted) writes and goes on."""
    await _until(
        pool,
        f"SELECT count(*) FROM sync.runs WHERE engine = '{engine}' AND outcome IS NULL "
        "AND counts -> 'contact' -> 'crm_to_exchange' ? 'create'",
        MAILBOXES,
    )


def _fast(h: Harness) -> None:
    """The simulator answers at once from now on: the restart finishes quickly."""
    h.sim.sim.config = dataclasses.replace(h.sim.sim.config, latency=LatencyConfig())


async def _finish(pool: asyncpg.Pool, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Restart the service, let it finish every job, and read its status over the API."""
    service = ServiceProcess(env, log)
    try:
        await asyncio.to_thread(service.wait_ready)
        await _until(
            pool,
            "SELECT count(*) = 0 FROM sync.jobs WHERE status IN ('queued', 'running')",
            1,
            timeout=90,
        )
        status = await asyncio.to_thread(_api_status, service.port)
    finally:
        assert await asyncio.to_thread(service.terminate) == 0, service.output()
    return status


def _api_status(port: int) -> dict[str, Any]:
    request = Request(
        f"http://127.0.0.1:{port}/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urlopen(request, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


def _cli_status(env: dict[str, str]) -> dict[str, Any]:
    done = run_cli(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _nothing_running(status: dict[str, Any]) -> None:
    assert status["queue"]["running"] == 0, status["queue"]
    assert "running" not in status["last_hour"]["passes"], status["last_hour"]


async def _created_by_sync(h: Harness, emails: list[str]) -> dict[str, int]:
    """What Exchange and the CRM really received: the items each side holds beyond the seed."""
    in_exchange = in_crm = 0
    for n, email in enumerate(emails):
        surnames = [i["fields"]["Surname"] for i in await h.items(email, "contacts")]
        assert len(surnames) == len(set(surnames)), f"duplicates in {email}"
        in_exchange += len(surnames) - EXCHANGE_ONLY
        crm = await h.pool.fetchval(
            "SELECT count(*) FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
            "WHERE u.email = $1",
            email,
        )
        in_crm += crm - CRM_ONLY
        assert await h.links(email) == CRM_ONLY + EXCHANGE_ONLY, n
    assert (in_exchange, in_crm) == (MAILBOXES * CRM_ONLY, MAILBOXES * EXCHANGE_ONLY)
    return {"crm_to_exchange": in_exchange, "exchange_to_crm": in_crm}


async def _counted_creates(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT d.key AS direction, sum((d.value ->> 'create')::int) AS n "
        "FROM sync.runs r, jsonb_each(r.counts -> 'contact') AS d GROUP BY 1"
    )
    return {r["direction"]: int(r["n"]) for r in rows}


async def _every_run_ended(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    runs = await pool.fetch(
        "SELECT id, engine, kind, outcome, error, finished_at, requests, counts "
        "FROM sync.runs ORDER BY id"
    )
    assert all(r["outcome"] is not None and r["finished_at"] is not None for r in runs), runs
    assert {r["kind"] for r in runs} == {"initial"}  # queued as express: every one a first pass
    return runs


async def test_sigterm_mid_initial_sync_ends_every_run_and_counts_every_write(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    async with harness(pool, SLOW) as h:
        emails = await _seed(h)
        env = _env(db_url)
        stopped = ServiceProcess({**env, "SYNC_ENGINE_NAME": "stopped"}, tmp_path / "stop.log")
        await _mid_way(pool, "stopped")
        # The passes outlast the 20 s a stop waits for them: cancelled, jobs handed back.
        assert await asyncio.to_thread(stopped.terminate, 60) == 0, stopped.output()

        runs = await _every_run_ended(pool)
        cancelled = [r for r in runs if r["outcome"] == "cancelled"]
        assert cancelled, runs
        for run in cancelled:
            assert run["error"] == "the service stopped before the pass ended"
            assert run["requests"] > 0 and run["counts"]["contact"]["crm_to_exchange"]["create"]
        _nothing_running(await asyncio.to_thread(_cli_status, env))

        _fast(h)
        status = await _finish(pool, {**env, "SYNC_ENGINE_NAME": "restarted"}, tmp_path / "r.log")
        await _every_run_ended(pool)
        assert await _counted_creates(pool) == await _created_by_sync(h, emails)
        _nothing_running(status)
        assert status["last_hour"]["passes"]["cancelled"] == len(cancelled)


async def test_sigkill_mid_initial_sync_leaves_runs_lost_and_counts_every_write(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    async with harness(pool, SLOW) as h:
        emails = await _seed(h)
        env = _env(db_url)
        killed = ServiceProcess({**env, "SYNC_ENGINE_NAME": "killed"}, tmp_path / "kill.log")
        await _mid_way(pool, "killed")
        killed.kill()
        linked = await _counted_creates(pool)  # committed with the links before the kill

        # No engine is alive: once the leases run out nothing counts as running, though no
        # one has reaped the jobs yet (their runs read as lost).
        await asyncio.sleep(2.5)
        status = await asyncio.to_thread(_cli_status, env)
        _nothing_running(status)
        assert status["queue"]["stalled"] == MAILBOXES
        assert status["last_hour"]["passes"] == {"lost": MAILBOXES}

        _fast(h)
        status = await _finish(pool, {**env, "SYNC_ENGINE_NAME": "restarted"}, tmp_path / "r.log")
        runs = await _every_run_ended(pool)
        lost = [r for r in runs if r["engine"] == "killed"]
        assert [r["outcome"] for r in lost] == ["lost"] * MAILBOXES
        assert {r["error"] for r in lost} == {"engine killed stopped renewing the lease of its job"}
        counted = await _counted_creates(pool)
        assert counted == await _created_by_sync(h, emails)
        # The killed passes kept what they linked, and the creates they made but had not
        # linked yet were counted for them by the passes that found them.
        killed_creates = sum(r["counts"]["contact"]["crm_to_exchange"]["create"] for r in lost)
        assert killed_creates >= linked["crm_to_exchange"]
        _nothing_running(status)
        assert status["last_hour"]["passes"]["lost"] == MAILBOXES
