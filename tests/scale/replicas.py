"""Several replicas against two simulated Exchange servers: the scenario of the multi-replica
test (tests/scale/test_replicas.py) and of the replica benchmark (benchmarks/bench_replicas.py).

`api,dispatcher` replicas and `engine` replicas run as separate `sync-service run` processes
against one database; half the mailboxes live on an EWS simulator, half on a Graph one (each
its own process, provisioned through /_sim/). Every mailbox is queued for its initial pass;
with `kill` the replicas are SIGKILLed mid-pass (one engine with passes open, and the leading
dispatcher); then the users edit on both sides (CRM tables and the simulator's owner API), an
operator asks for an express pass of every mailbox, and the scenario waits until every
mailbox holds what it should (tests/scale/replica_checks.py says what that is).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from sync_service.db.queue import JobQueue, JobRequest, PassKind, Priority
from sync_service.db.store import NewServer, Store
from tests.scale import replica_checks as checks
from tests.scale.cpu import cpu_s
from tests.scale.readiness import exited, start_replica, wait_all_ready
from tests.scale.sim_process import SimProcess, owner, provision, start_simulator
from tests.scale.sim_process import items as sim_items
from tests.service_process import ServiceProcess

EWS_SECRET = "EXCHANGE_SCALE_EWS_PASSWORD"
GRAPH_SECRET = "EXCHANGE_SCALE_GRAPH_SECRET"


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    mailboxes: int = 200
    per_folder: int = 2  # seeded Exchange items in each folder of each mailbox
    engines: int = 3
    dispatchers: int = 2
    kill: bool = True  # SIGKILL an engine and the leading dispatcher mid-pass
    edits: bool = True  # then edits on both sides, synced
    lease: str = "4s"
    latency: str = "20,1"  # the simulators' ms per request, ms per item
    engine_pool: int = 8  # SYNC_DATABASE_POOL_SIZE of an engine
    timeout_s: float = 300.0


@dataclass
class ReplicaFigures:
    mailboxes: int
    engines: int
    initial_s: float = 0.0  # first initial pass started to the last one ended
    items: int = 0  # item links after the initial sync
    items_per_s: float = 0.0
    edits_s: float = 0.0  # from the operator's request to every edit synced
    takeover_s: float | None = None  # from the leader's SIGKILL to the other leading
    killed: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, during the initial

    def line(self) -> str:
        return (
            f"{self.mailboxes} mailboxes, {self.engines} engines: initial {self.items} items in "
            f"{self.initial_s:.1f}s ({self.items_per_s:.0f} items/s); edits synced in "
            f"{self.edits_s:.1f}s; killed {self.killed}, takeover {self.takeover_s}; runs "
            f"{self.outcomes}; CPU s {self.cpu_s}"
        )


@dataclass
class Deployment:
    pool: asyncpg.Pool
    sims: dict[str, SimProcess]
    homes: dict[str, SimProcess]  # mailbox -> its simulator
    dispatchers: dict[str, ServiceProcess]
    engines: dict[str, ServiceProcess]
    killed: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> dict[str, ServiceProcess]:
        return {**self.dispatchers, **self.engines}

    def assert_alive(self) -> None:
        """Every replica the scenario did not kill is still running."""
        gone = exited({n: r for n, r in self.replicas.items() if n not in self.killed})
        assert not gone, gone


@contextlib.asynccontextmanager
async def simulators(cfg: ReplicaConfig, logs: Path) -> AsyncIterator[dict[str, SimProcess]]:
    sims: dict[str, SimProcess] = {}
    try:
        sims["ews"] = start_simulator("sim-ews", logs, tls=False, latency=cfg.latency)
        sims["graph"] = start_simulator("sim-graph", logs, tls=True, latency=cfg.latency)
        yield sims
    finally:
        for sim in sims.values():
            sim.stop()


async def _register(pool: asyncpg.Pool, sims: dict[str, SimProcess]) -> dict[str, int]:
    # The daily complete pass 12 hours away: the run measures initial and express passes.
    complete_at = (datetime.now(UTC) + timedelta(hours=12)).time().replace(second=0, microsecond=0)
    common: dict[str, Any] = {"complete_at": complete_at, "max_concurrency": 200,
                              "rate_per_second": 2000.0}  # fmt: skip
    ews, graph = sims["ews"].facts, sims["graph"].facts
    store = Store(pool)
    made = [
        await store.add_server(NewServer("ews", "ews", ews["ews_url"], "basic",
                                         username=ews["username"], secret_env=EWS_SECRET,
                                         **common)),
        await store.add_server(NewServer("graph", "graph", graph["graph_url"], "oauth",
                                         tenant=graph["tenant"], client_id=graph["client_id"],
                                         authority=graph["authority"], secret_env=GRAPH_SECRET,
                                         ca_file=graph["ca_file"], **common)),
    ]  # fmt: skip
    return {s.name: s.id for s in made}


async def _seed_crm(
    pool: asyncpg.Pool, homes: dict[str, SimProcess], servers: dict[str, int]
) -> None:
    """A CRM user per mailbox with three contacts, a meeting and a task; the mailboxes."""
    emails = list(homes)
    await pool.execute(
        "INSERT INTO crm.users (email, display_name) SELECT e, e FROM unnest($1::text[]) e", emails
    )
    await pool.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
        "SELECT u.id, 'Crm', n FROM crm.users u, unnest($1::text[]) n",
        list(checks.CRM_CONTACTS),
    )
    await pool.execute(
        "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
        "SELECT id, 'Crm meeting', t, t + interval '1 hour' FROM crm.users, "
        "(SELECT timestamptz '2026-03-02 09:00Z' AS t) AS start"
    )
    await pool.execute(
        "INSERT INTO crm.tasks (owner_id, subject) SELECT id, 'Crm task' FROM crm.users"
    )
    await pool.execute(
        "INSERT INTO sync.mailboxes (crm_user_id, email, server_id, contacts_mode, calendar_mode, "
        "tasks_mode) SELECT u.id::text, u.email, s.id, 'two-way', 'two-way', 'two-way' "
        "FROM crm.users u JOIN unnest($1::text[], $2::text[]) AS x (e, server) ON x.e = u.email "
        "JOIN sync.servers s ON s.name = x.server",
        emails,
        [homes[e].name.removeprefix("sim-") for e in emails],
    )
    assert await pool.fetchval("SELECT count(*) FROM sync.mailboxes") == len(emails), servers


async def _enqueue_all(pool: asyncpg.Pool, kind: PassKind, source: str) -> None:
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM sync.mailboxes ORDER BY id")]
    queue = JobQueue(pool, timedelta(seconds=60))
    await queue.enqueue_for([JobRequest(i, kind, int(Priority.OPERATOR), source) for i in ids])


async def _drained(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval(
        "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
    )


async def _converge(dep: Deployment, cfg: ReplicaConfig, http: aiohttp.ClientSession,
                    edited: bool, deadline: float) -> None:  # fmt: skip
    """Until every mailbox holds what it should (the queue drained first each time)."""
    wrong: dict[str, Any] = {}
    while time.monotonic() < deadline:
        dep.assert_alive()
        if await _drained(dep.pool):
            wrong = await checks.divergent(dep.pool, http, dep.homes, cfg.per_folder, edited)
            if not wrong:
                return
        await asyncio.sleep(1.0)
    sample = dict(list(wrong.items())[:3])
    raise AssertionError(f"{len(wrong)} mailboxes did not converge, e.g. {sample}")


async def _initial_window(pool: asyncpg.Pool) -> tuple[float, int]:
    """Seconds from the first initial pass's start to the last one's end; the items linked."""
    row = await pool.fetchrow(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 AS s "
        "FROM sync.runs WHERE kind = 'initial'"
    )
    links = await pool.fetchval("SELECT count(*) FROM sync.item_links")
    return float(row["s"] if row and row["s"] is not None else 0.0), int(links)


async def _owner_edits(http: aiohttp.ClientSession, dep: Deployment) -> None:
    """In every mailbox: a seeded contact renamed and a new one, as its owner in Outlook."""

    async def edit(email: str) -> None:
        sim = dep.homes[email]
        listing = await sim_items(http, sim, email)
        seed0 = next(i for i in listing if i["fields"].get("GivenName") == "Seed0")
        await owner(http, sim, "PATCH", f"/mailboxes/{email}/items/{seed0['id']}",
                    {"fields": {"Surname": "Contact-edited"}})  # fmt: skip
        new = {"folder": "contacts", "fields": {"GivenName": "Ex", "Surname": "New"}}
        await owner(http, sim, "POST", f"/mailboxes/{email}/items", new)

    emails = list(dep.homes)
    for start in range(0, len(emails), 50):
        await asyncio.gather(*(edit(e) for e in emails[start : start + 50]))


async def _crm_edits(pool: asyncpg.Pool) -> None:
    """For every user: a contact renamed and a new one, as CRM users would."""
    await pool.execute(
        "UPDATE crm.contacts SET last_name = 'P1-edited' WHERE first_name = 'Crm' "
        "AND last_name = 'P1'"
    )
    await pool.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
        "SELECT id, 'Crm', 'New' FROM crm.users"
    )


async def _kill_mid_pass(dep: Deployment, cfg: ReplicaConfig, figures: ReplicaFigures,
                         deadline: float) -> None:  # fmt: skip
    """Once a third of the initial passes ended: SIGKILL the engine with the most passes open
    and the leading dispatcher; the time until the other dispatcher leads."""
    target = max(1, cfg.mailboxes // 3)
    while True:
        assert time.monotonic() < deadline, "no moment with passes open to kill into"
        done = await dep.pool.fetchval("SELECT count(*) FROM sync.runs WHERE outcome = 'ok'")
        busiest = await dep.pool.fetchrow(
            "SELECT engine, count(*) AS n FROM sync.runs WHERE outcome IS NULL "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        )
        if done >= target and busiest is not None and busiest["engine"] in dep.engines:
            break
        await asyncio.sleep(0.05)
    victim, leader = (
        busiest["engine"],
        await dep.pool.fetchval("SELECT leader FROM sync.dispatcher"),
    )
    assert leader in dep.dispatchers, leader
    for name in (victim, leader):
        figures.cpu_s[name] = round(cpu_s(dep.replicas[name].proc.pid), 2)
        dep.replicas[name].kill()
        dep.killed.append(name)
    killed_at = time.monotonic()
    figures.killed = [f"{victim} ({busiest['n']} passes open)", f"{leader} (leading)"]
    others = set(dep.dispatchers) - {leader}
    if not others:
        return
    while time.monotonic() < deadline:
        row = await dep.pool.fetchrow(
            "SELECT leader, now() - heartbeat_at < interval '3 seconds' AS fresh "
            "FROM sync.dispatcher"
        )
        if row is not None and row["leader"] in others and row["fresh"]:
            figures.takeover_s = round(time.monotonic() - killed_at, 2)
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no other dispatcher took the lead")


def _cpu_now(dep: Deployment, figures: ReplicaFigures) -> dict[str, float]:
    out = {n: cpu_s(r.proc.pid) for n, r in dep.replicas.items() if n not in dep.killed}
    out.update({f"simulator-{n}": s.cpu_s() for n, s in dep.sims.items()})
    return out


def _env(
    db_url: str, cfg: ReplicaConfig, sims: dict[str, SimProcess], logs: Path
) -> dict[str, str]:
    return {
        "SYNC_DATABASE_URL": db_url,
        "SYNC_JOB_LEASE": cfg.lease,
        "SYNC_DISPATCHER_POLL": "1s",
        "SYNC_LOG_LEVEL": "INFO",
        # The Graph simulator's CA file is written among the logs, under the temporary directory.
        "SYNC_SECRET_DIR": tempfile.gettempdir(),
        EWS_SECRET: sims["ews"].facts["password"],
        GRAPH_SECRET: sims["graph"].facts["client_secret"],
    }


async def run_replicas(cfg: ReplicaConfig, pool: asyncpg.Pool, db_url: str, logs: Path,
                       db_cpu: Any = None) -> ReplicaFigures:  # fmt: skip
    """The scenario; its figures. Every check that fails raises AssertionError."""
    figures = ReplicaFigures(cfg.mailboxes, cfg.engines)
    async with simulators(cfg, logs) as sims, aiohttp.ClientSession() as http:
        half = cfg.mailboxes // 2
        homes = dict.fromkeys(
            await provision(http, sims["ews"], 1, half, cfg.per_folder), sims["ews"]
        )
        rest = await provision(http, sims["graph"], half + 1, cfg.mailboxes - half, cfg.per_folder)
        homes.update(dict.fromkeys(rest, sims["graph"]))
        await _seed_crm(pool, homes, await _register(pool, sims))
        await _enqueue_all(pool, PassKind.INITIAL, "test")
        env = _env(db_url, cfg, sims, logs)
        dep = Deployment(pool, sims, homes, {}, {})
        codes: dict[str, int] = {}
        try:
            for n in range(cfg.dispatchers):
                name = f"dispatcher-{n}"
                dep.dispatchers[name] = start_replica(env, name, "api,dispatcher", logs)
            await wait_all_ready(dep.dispatchers)
            before, db_before = _cpu_now(dep, figures), db_cpu() if db_cpu else 0.0
            engine_env = {**env, "SYNC_DATABASE_POOL_SIZE": str(cfg.engine_pool)}
            for n in range(cfg.engines):
                name = f"engine-{n}"
                dep.engines[name] = start_replica(engine_env, name, "engine", logs)
            deadline = time.monotonic() + cfg.timeout_s
            if cfg.kill:
                await _kill_mid_pass(dep, cfg, figures, deadline)
            await _converge(dep, cfg, http, False, deadline)
            figures.initial_s, figures.items = await _initial_window(pool)
            figures.items_per_s = round(figures.items / max(figures.initial_s, 1e-3), 1)
            after = _cpu_now(dep, figures)
            for name, value in after.items():
                figures.cpu_s[name] = round(value - before.get(name, 0.0), 2)
            if db_cpu:
                figures.cpu_s["postgres"] = round(db_cpu() - db_before, 2)
            if cfg.edits:
                await _crm_edits(pool)
                await _owner_edits(http, dep)
                asked = time.monotonic()
                await _enqueue_all(pool, PassKind.EXPRESS, "operator")
                await _converge(dep, cfg, http, True, deadline)
                figures.edits_s = round(time.monotonic() - asked, 2)
            errors = await pool.fetch("SELECT entity, reason FROM sync.item_errors LIMIT 5")
            assert not errors, [dict(r) for r in errors]
            clashes = await checks.overlapping_runs(pool)
            assert not clashes, f"mailboxes synced by two passes at once: {clashes[:5]}"
            outcomes = await checks.run_outcomes(pool)
            figures.outcomes = dict(outcomes)
            assert "open" not in outcomes, outcomes
            assert set(outcomes) <= {"ok", "lost", "transient"}, outcomes
            assert not cfg.kill or outcomes["lost"] >= 1, ("the kill hit no pass", outcomes)
            dep.assert_alive()
        finally:
            for name, replica in dep.replicas.items():
                if name not in dep.killed:
                    codes[name] = await asyncio.to_thread(replica.terminate)
        assert set(codes.values()) <= {0}, {n: dep.replicas[n].output()[-2000:] for n in codes}
    return figures
