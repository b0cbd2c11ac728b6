"""Benchmark (5): the baseline a Python team would otherwise write, on exchangelib.

A thread pool, one exchangelib `Account` per mailbox (impersonation, Basic auth, version
Exchange2013_SP1, no autodiscover, exchangelib's own `FaultTolerance` retry policy for
throttling), against the same simulator configuration as benchmark (1) at a smaller size:
- initial: `sync_items()` on contacts, calendar and tasks (full items), match against the
  CRM records in memory (same keys as the service), create the CRM-only records in Exchange
  (`bulk_create`), write the Exchange-only items to the CRM (one batch per mailbox);
- idle: `sync_items(sync_state=...)` on each folder, nothing changed.
It does less than the service (no link table, no id stamping, no conflict handling), so the
ratios flatter the baseline. CPU is this process's own (all threads); its peak RSS is
counted from the start of the run (the kernel's high-water mark is reset first).

    python -m benchmarks.bench_baseline 2 --items 5000,1500,500 --latency 150,2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from exchangelib import IMPERSONATION, Account, Configuration, Credentials, Version
from exchangelib.items import CalendarItem, Contact, Task
from exchangelib.protocol import FaultTolerance
from exchangelib.version import EXCHANGE_2013_SP1

from benchmarks import bound, crm_seed, stack
from benchmarks.bench_initial import ITEMS, LATENCY, add_size_arguments

FOLDERS = ("contacts", "calendar", "tasks")


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    mailboxes: int
    threads: int = 32
    latency: str = LATENCY
    validation: bool = False
    items: tuple[int, int, int] = ITEMS

    @property
    def shape(self) -> crm_seed.CrmShape:
        return crm_seed.proportional(self.items)

    def limits(self) -> bound.Limits:
        """One thread per mailbox, each exchangelib call one request at a time; the pool's
        threads are the requests in flight to the server."""
        return bound.Limits(1, self.threads)


def _config(url: str, threads: int) -> Configuration:
    return Configuration(
        service_endpoint=url,
        credentials=Credentials(stack.SIM_USER, stack.SIM_PASSWORD),
        auth_type="basic",
        version=Version(build=EXCHANGE_2013_SP1),
        retry_policy=FaultTolerance(max_wait=300),
        max_connections=threads,
    )


def _key(folder: str, item: Any) -> tuple[Any, ...]:
    if folder == "contacts":
        return (item.given_name, item.surname)
    if folder == "calendar":
        start = item.start
        return (item.subject, start.isoformat() if isinstance(start, datetime) else start)
    return (item.subject,)


def _crm_key(folder: str, row: asyncpg.Record) -> tuple[Any, ...]:
    if folder == "contacts":
        return (row["first_name"], row["last_name"])
    if folder == "calendar":
        return (row["subject"], row["starts_at"].isoformat())
    return (row["subject"],)


def _new_item(folder: str, account: Account, row: asyncpg.Record) -> Any:
    target = getattr(account, folder)
    if folder == "contacts":
        name = f"{row['first_name']} {row['last_name']}"
        return Contact(
            folder=target,
            given_name=row["first_name"],
            surname=row["last_name"],
            display_name=name,
        )
    if folder == "calendar":
        return CalendarItem(
            folder=target, subject=row["subject"], start=row["starts_at"], end=row["ends_at"]
        )
    return Task(folder=target, subject=row["subject"])


class Baseline:
    def __init__(self, url: str, crm: dict[str, dict[str, list[asyncpg.Record]]], threads: int):
        self.config = _config(url, threads)
        self.crm = crm
        self.accounts: dict[str, Account] = {}
        self.states: dict[tuple[str, str], str | None] = {}
        self.to_crm: list[tuple[str, str, tuple[Any, ...]]] = []

    def initial(self, address: str) -> int:
        account = Account(
            address, config=self.config, autodiscover=False, access_type=IMPERSONATION
        )
        self.accounts[address] = account
        synced = 0
        for folder in FOLDERS:
            f = getattr(account, folder)
            items = [item for _, item in f.sync_items()]
            self.states[(address, folder)] = f.item_sync_state
            crm_rows = {_crm_key(folder, r): r for r in self.crm[address][folder]}
            seen = {_key(folder, i) for i in items}
            missing = [r for k, r in crm_rows.items() if k not in seen]
            if missing:
                f.bulk_create([_new_item(folder, account, r) for r in missing])
            self.to_crm += [(address, folder, k) for k in seen if k not in crm_rows]
            synced += len(seen | set(crm_rows))
        return synced

    def idle(self, address: str) -> int:
        account = self.accounts[address]
        changes = 0
        for folder in FOLDERS:
            f = getattr(account, folder)
            changes += len(list(f.sync_items(sync_state=self.states[(address, folder)])))
            self.states[(address, folder)] = f.item_sync_state
        return changes


async def _load_crm(url: str) -> dict[str, dict[str, list[asyncpg.Record]]]:
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, dict[str, list[asyncpg.Record]]] = {}
        queries = {
            "contacts": "SELECT u.email, c.first_name, c.last_name FROM crm.contacts c",
            "calendar": "SELECT u.email, c.subject, c.starts_at, c.ends_at FROM crm.appointments c",
            "tasks": "SELECT u.email, c.subject FROM crm.tasks c",
        }
        for folder, sql in queries.items():
            for row in await conn.fetch(sql + " JOIN crm.users u ON u.id = c.owner_id"):
                out.setdefault(row["email"], {f: [] for f in FOLDERS})[folder].append(row)
        return out
    finally:
        await conn.close()


async def _write_crm(url: str, rows: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        users = {r["email"]: r["id"] for r in await conn.fetch("SELECT id, email FROM crm.users")}
        contacts = [(users[a], *k) for a, f, k in rows if f == "contacts"]
        await conn.executemany(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, $2, $3)",
            contacts,
        )
        tasks = [(users[a], *k) for a, f, k in rows if f == "tasks"]
        await conn.executemany("INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, $2)", tasks)
        meetings = [(users[a], k[0], datetime.fromisoformat(k[1])) for a, f, k in rows
                    if f == "calendar"]  # fmt: skip
        await conn.executemany(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "VALUES ($1, $2, $3::timestamptz, $3::timestamptz + interval '30 minutes')",
            meetings,
        )
    finally:
        await conn.close()


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux: 5 to /proc/self/clear_refs), so that the peak
    RSS is this run's, not that of whatever ran before it in the process."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _pool_map(threads: int, fn: Any, addresses: list[str]) -> list[int]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, addresses))


async def run(cfg: BaselineConfig) -> dict[str, Any]:
    n = cfg.mailboxes
    sim, base = await stack.start_simulator(
        n, cfg.items, latency=cfg.latency, validation=cfg.validation
    )
    me = os.getpid()
    try:
        async with stack.fresh_database("bench_baseline") as url:
            env = stack.service_env(url, stack.free_port())
            with tempfile.TemporaryDirectory() as tmp:
                await stack.cli(env, "migrate")
                await crm_seed.seed(url, n, cfg.shape, Path(tmp) / "m.csv")
            addresses = [stack.address_of(i) for i in range(1, n + 1)]
            rss_reset = _reset_peak_rss()
            c0, tallies0 = await stack.sim_counters(base), await stack.sim_tallies(base)
            cpu0, t0 = stack.sample(me).cpu_s, time.monotonic()
            crm = await _load_crm(url)
            baseline = Baseline(f"{base}/EWS/Exchange.asmx", crm, cfg.threads)
            synced = await asyncio.to_thread(_pool_map, cfg.threads, baseline.initial, addresses)
            await _write_crm(url, baseline.to_crm)
            wall = time.monotonic() - t0
            cpu, peak_kb = stack.sample(me).cpu_s - cpu0, stack.sample(me).hwm_kb
            c1, tallies1 = await stack.sim_counters(base), await stack.sim_tallies(base)
            # The first sync after the initial one returns the baseline's own creates (echo);
            # the idle cycle is the one after it.
            await asyncio.to_thread(_pool_map, cfg.threads, baseline.idle, addresses)
            c1b = await stack.sim_counters(base)
            cpu0, t1 = stack.sample(me).cpu_s, time.monotonic()
            changes = await asyncio.to_thread(_pool_map, cfg.threads, baseline.idle, addresses)
            idle_wall, idle_cpu = time.monotonic() - t1, stack.sample(me).cpu_s - cpu0
            c2 = await stack.sim_counters(base)
    finally:
        sim.stop()
    initial, idle = stack.counter_delta(c1, c0), stack.counter_delta(c2, c1b)
    items, requests = sum(synced), sum(initial["requests"].values())
    idle_requests = sum(idle["requests"].values())
    tallies = bound.tallies_between(tallies1, tallies0)
    latency = bound.Latency.parse(cfg.latency)
    # the simulator runs with its default throttling: its budget is a bound too
    budget = bound.simulator_budget()
    limit = bound.round_trip_bound(tallies, latency, cfg.limits(), wall, cfg.items, budget)
    return {
        "benchmark": "baseline_exchangelib",
        "mailboxes": n,
        "threads": cfg.threads,
        "simulator_request_validation": cfg.validation,
        "exchange_items_per_mailbox": dict(
            zip(("contacts", "appointments", "tasks"), cfg.items, strict=True)
        ),
        "crm_records_per_mailbox": cfg.shape.per_user(),
        "latency_ms": cfg.latency,
        "initial": {
            "wall_s": round(wall, 2),
            "items_synced": items,
            "items_per_s": round(items / wall, 1),
            "requests": requests,
            "requests_per_s": round(requests / wall, 1),
            "requests_by_operation": initial["requests"],
            "throttled": sum(initial["throttled"].values()),
            "throttled_share": round(sum(initial["throttled"].values()) / requests, 4),
            "throttled_by_operation": initial["throttled"],
            "early_retries": initial["early_retries"],
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_item": round(1000 * cpu / items, 3),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "peak_rss_since": "run start" if rss_reset else "process start",
            "round_trip_bound": limit,
        },
        "idle": {
            "wall_s": round(idle_wall, 2),
            "changes_seen": sum(changes),
            "requests": idle_requests,
            "requests_by_operation": idle["requests"],
            "requests_per_mailbox": round(idle_requests / n, 3),
            "cpu_s": round(idle_cpu, 2),
            "cpu_ms_per_mailbox": round(1000 * idle_cpu / n, 3),
        },
    }


def _args(argv: list[str] | None = None) -> BaselineConfig:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_baseline")
    parser.add_argument("mailboxes", type=int, nargs="?", default=5)
    add_size_arguments(parser)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--validation", action="store_true", help="simulator checks requests")
    args = parser.parse_args(argv)
    return BaselineConfig(
        args.mailboxes,
        threads=args.threads,
        latency=args.latency,
        validation=args.validation,
        items=args.items,
    )


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(_args())), indent=2))
