"""The database goes away during passes: the scenario shared by the restart and outage tests.

Two replicas (`api,dispatcher` and `api,engine`) run as processes against a private
PostgreSQL and a slowed simulator, so that every mailbox's initial pass is mid-way (writes
counted, more to come) when the database goes. It stays away for `down_s`, comes back, and
then: no replica exited, each answered /readyz with "not ready" while the database was gone
and "ready" again after it returned, the passes cut off ended as transient failures and were
run again, every run is closed, and each mailbox and its CRM user hold every item once.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from ews_client.simulator.config import LatencyConfig, SimulatorConfig
from sync_service.db.queue import PassKind
from tests.e2e.harness import SECRET_DIR, SECRET_ENV, Harness, harness
from tests.scale.readiness import ReadyLog, exited, start_replica, wait_all_ready, watch_ready
from tests.service_process import ServiceProcess

MAILBOXES = 8
CRM_ONLY = 60  # contacts made in Exchange by the sync: CreateItem batches of 50
EXCHANGE_ONLY = 10  # contacts made in the CRM by the sync
# A batch of 50 creates takes 5 s: every pass is mid-way for seconds.
SLOW = SimulatorConfig(latency=LatencyConfig(base_s=0.05, per_item_s=0.1))
Action = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutageFigures:
    down_s: float
    not_ready_after_s: dict[str, float]  # from the database going to /readyz not 200
    ready_again_after_s: dict[str, float]  # from the database returning to /readyz 200
    cut_off_passes: int  # runs open when the database went
    transient_runs: int  # runs that ended as transient failures
    retried_ok: int  # of the mailboxes with a transient run, those whose later pass was ok
    outcomes: dict[str, int]

    def line(self, what: str) -> str:
        return (
            f"{what}: down {self.down_s:.1f}s; /readyz false after "
            f"{_fmt(self.not_ready_after_s)}; true again after {_fmt(self.ready_again_after_s)} "
            f"once the database was back; {self.cut_off_passes} passes in flight, "
            f"{self.transient_runs} runs transient, {self.retried_ok} mailboxes retried to ok; "
            f"outcomes {self.outcomes}"
        )


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in values.items())


async def _seed(h: Harness) -> list[str]:
    emails = []
    for n in range(MAILBOXES):
        email = f"outage{n}@sim.example"
        user, mailbox = await h.add_user(email)
        await h.pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
            "SELECT $1, 'Crm', 'C' || i, 'c' || i || '.' || $2::text || '@example.com' "
            "FROM generate_series(1, $3::int) AS i",
            user,
            str(n),
            CRM_ONLY,
        )
        box = h.sim.sim.mailboxes[email]
        for i in range(EXCHANGE_ONLY):
            await h.owner(
                "POST",
                f"/mailboxes/{box.address}/items",
                {"folder": "contacts", "fields": {"GivenName": "Ex", "Surname": f"E{i}"}},
            )
        await h.queue.enqueue(mailbox.id, PassKind.INITIAL)
        emails.append(email)
    return emails


async def _open_runs_with_writes(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM sync.runs WHERE outcome IS NULL "
            "AND counts -> 'contact' -> 'crm_to_exchange' ? 'create'"
        )
    )


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}") from None


async def _drained(pool: asyncpg.Pool) -> bool:
    # Retries wait out their back-off (seconds); pull them forward to keep the test short.
    await pool.execute("UPDATE sync.jobs SET run_after = now() WHERE status = 'queued'")
    return not await pool.fetchval(
        "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
    )


async def _check_items(h: Harness, emails: list[str]) -> None:
    """Nothing lost, nothing duplicated, counted on both sides."""
    expected = sorted(
        [f"C{i}" for i in range(1, CRM_ONLY + 1)] + [f"E{i}" for i in range(EXCHANGE_ONLY)]
    )
    for email in emails:
        surnames = sorted(i["fields"]["Surname"] for i in await h.items(email, "contacts"))
        crm = await h.pool.fetch(
            "SELECT c.last_name FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
            "WHERE u.email = $1",
            email,
        )
        assert surnames == expected, (email, len(surnames))
        assert sorted(r["last_name"] for r in crm) == expected, (email, len(crm))
        assert await h.links(email) == len(expected), email


def _readiness(
    log: ReadyLog, names: list[str], cut_at: float, back_at: float
) -> tuple[dict[str, float], dict[str, float]]:
    went, came = {}, {}
    for name in names:
        false_at = log.first(name, cut_at, ready=False)
        assert false_at is not None and false_at < back_at, (name, "never not ready")
        true_at = log.first(name, back_at, ready=True)
        assert true_at is not None, (name, "not ready again")
        # 0: the replica did not answer at all, which a live process always does
        assert 0 not in log.statuses(name, cut_at, true_at), (name, "stopped answering")
        went[name], came[name] = false_at - cut_at, true_at - back_at
    return went, came


async def _run_figures(pool: asyncpg.Pool, cut_off: int) -> tuple[int, int, dict[str, int]]:
    runs = await pool.fetch("SELECT mailbox_id, id, outcome, error, finished_at FROM sync.runs")
    assert all(r["outcome"] is not None and r["finished_at"] is not None for r in runs), [
        r for r in runs if r["finished_at"] is None
    ]
    outcomes: dict[str, int] = {}
    for r in runs:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    # A pass the database's absence cut off ends as a transient failure; none failed for good.
    assert set(outcomes) <= {"ok", "transient"}, [dict(r) for r in runs if r["outcome"] != "ok"]
    transient = [r for r in runs if r["outcome"] == "transient"]
    assert len(transient) >= cut_off, (cut_off, outcomes)
    retried = 0
    cut_mailboxes = {r["mailbox_id"] for r in transient}
    for mailbox in cut_mailboxes:
        last = max((r for r in runs if r["mailbox_id"] == mailbox), key=lambda r: r["id"])
        retried += last["outcome"] == "ok"
    assert retried == len(cut_mailboxes), "a pass cut off was not run again to the end"
    return len(transient), retried, outcomes


async def run_outage(
    pool: asyncpg.Pool,
    service_url: str,
    logs: Path,
    *,
    cut: Action,
    restore: Action,
    down_s: float,
    lease: str = "6s",
) -> OutageFigures:
    """The scenario: `cut` takes the database away, `restore` brings it back `down_s` later."""
    async with harness(pool, SLOW) as h:
        emails = await _seed(h)
        env = {
            "SYNC_DATABASE_URL": service_url,
            "SYNC_JOB_LEASE": lease,
            "SYNC_MAX_CONCURRENT_MAILBOXES": str(MAILBOXES),
            "SYNC_DISPATCHER_POLL": "1s",
            "SYNC_LOG_LEVEL": "INFO",
            "SYNC_SECRET_DIR": SECRET_DIR,
            SECRET_ENV: os.environ[SECRET_ENV],
        }
        replicas: dict[str, ServiceProcess] = {
            "dispatcher": start_replica(env, "outage-dispatcher", "api,dispatcher", logs),
            "engine": start_replica(env, "outage-engine", "api,engine", logs),
        }
        try:
            await wait_all_ready(replicas)
            await _until(lambda: _at_least(_open_runs_with_writes(pool), 3), 60, "passes mid-way")
            async with watch_ready(replicas) as ready_log:
                cut_off = int(
                    await pool.fetchval("SELECT count(*) FROM sync.runs WHERE outcome IS NULL")
                )
                cut_at = time.monotonic()
                await cut()
                await asyncio.sleep(down_s)
                await restore()
                back_at = time.monotonic()
                await pool.expire_connections()
                await wait_all_ready(replicas, timeout=down_s + 60)
                await asyncio.sleep(0.3)  # a last sample after the return
            assert not exited(replicas), exited(replicas)
            went, came = _readiness(ready_log, list(replicas), cut_at, back_at)
            await _until(lambda: _drained(pool), 120, "every job to end")
            await _check_items(h, emails)
            transient, retried, outcomes = await _run_figures(pool, cut_off)
            assert await _leader(pool) == "outage-dispatcher"
            assert not exited(replicas), exited(replicas)
        finally:
            codes = {name: await asyncio.to_thread(r.terminate) for name, r in replicas.items()}
        assert codes == dict.fromkeys(replicas, 0), {n: replicas[n].output()[-3000:] for n in codes}
    return OutageFigures(back_at - cut_at, went, came, cut_off, transient, retried, outcomes)


async def _at_least(value: Awaitable[int], wanted: int) -> bool:
    return await value >= wanted


async def _leader(pool: asyncpg.Pool) -> Any:
    """The dispatcher leads again (its heartbeat fresh) after the database came back."""
    async with asyncio.timeout(30):
        while True:
            row = await pool.fetchrow(
                "SELECT leader, now() - heartbeat_at < interval '5 seconds' AS fresh "
                "FROM sync.dispatcher"
            )
            if row is not None and row["fresh"]:
                return row["leader"]
            await asyncio.sleep(0.2)
