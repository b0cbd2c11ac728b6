"""Benchmark (1): the initial sync of N mailboxes x (200 contacts + 100 appointments + 50 tasks).

The simulator runs with its default (Exchange Online) throttling and 20 ms + 1 ms/item latency;
the CRM overlaps half of each folder and holds CRM-only records (a tenth of each folder). The
service (`python -m sync_service run`, roles api,engine) runs every initial pass the CLI
requested; figures come from the simulator's counters and per-mailbox tallies, the service's
/proc entries and its own `sync.runs` table. Sizes and latency are parameters:

    python -m benchmarks.bench_initial 2 --items 5000,1500,500 --latency 150,2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import bound, crm_seed, profiling, stack, timeline
from ews_client import ThrottleLimits
from ews_client.simulator.config import ThrottlePolicy

ITEMS = (200, 100, 50)  # contacts, appointments, tasks per mailbox
SHAPE = crm_seed.proportional(ITEMS)
LATENCY = "20,1"  # ms per request, ms per item
# The simulator's EWSMaxConcurrency per mailbox (its default policy, which the runs use).
SIM_MAX_CONCURRENCY = ThrottlePolicy().max_concurrency


@dataclass(frozen=True, slots=True)
class InitialConfig:
    mailboxes: int
    timeout_s: float = 1200.0
    rate: float = 2000.0
    concurrency: int = 200
    max_concurrent_mailboxes: int = 500
    pool_size: int = 40  # SYNC_DATABASE_POOL_SIZE
    latency: str = LATENCY
    profile: str | None = None  # path prefix for a py-spy profile of the service
    items: tuple[int, int, int] = ITEMS

    @property
    def shape(self) -> crm_seed.CrmShape:
        return crm_seed.proportional(self.items)

    def limits(self) -> bound.Limits:
        """What the service may keep in flight: its client's per-mailbox limit (under the
        simulator's EWSMaxConcurrency) and the server's registered concurrency and rate."""
        per_mailbox = min(ThrottleLimits().per_mailbox, SIM_MAX_CONCURRENCY)
        return bound.Limits(per_mailbox, self.concurrency, self.rate)


async def run_stats(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        outcomes = await stack.group_counts(
            conn, "SELECT coalesce(outcome, 'unfinished'), count(*) FROM sync.runs GROUP BY 1"
        )
        totals = await conn.fetchrow(
            "SELECT coalesce(sum(requests), 0) AS requests, "
            "coalesce(sum(throttled), 0) AS throttled FROM sync.runs"
        )
        links = await conn.fetchval("SELECT count(*) FROM sync.item_links")
        done = await conn.fetchval("SELECT count(*) FROM sync.mailboxes WHERE initial_done")
        states = await stack.group_counts(
            conn, "SELECT state, count(*) FROM sync.mailboxes GROUP BY 1"
        )
        writes: dict[str, int] = {}
        for (counts,) in await conn.fetch("SELECT counts FROM sync.runs"):
            data = json.loads(counts) if isinstance(counts, str) else counts
            for entity, directions in data.items():
                for direction, ops in directions.items():
                    key = f"{entity} {direction}"
                    writes[key] = writes.get(key, 0) + sum(ops.values())
    finally:
        await conn.close()
    return {
        "run_outcomes": outcomes,
        "service_requests": int(totals["requests"]) if totals else 0,
        "service_throttled": int(totals["throttled"]) if totals else 0,
        "item_links": int(links),
        "initial_done": int(done),
        "mailbox_states": states,
        "writes": writes,
    }


async def run(cfg: InitialConfig) -> dict[str, Any]:
    n = cfg.mailboxes
    t0 = time.monotonic()
    sim, base = await stack.start_simulator(n, cfg.items, latency=cfg.latency)
    seeded_s = time.monotonic() - t0
    service = None
    try:
        async with stack.fresh_database("bench_initial") as url:
            env = stack.service_env(
                url,
                stack.free_port(),
                SYNC_ROLES="api,engine",
                SYNC_MAX_CONCURRENT_MAILBOXES=str(cfg.max_concurrent_mailboxes),
                SYNC_DATABASE_POOL_SIZE=str(cfg.pool_size),
            )
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = Path(tmp) / "mailboxes.csv"
                await stack.cli(env, "migrate")
                await crm_seed.seed(url, n, cfg.shape, csv_path)
                await stack.register(env, base, csv_path, cfg.rate, cfg.concurrency)
            await stack.cli(env, "sync", "--server", "sim", "--mode", "initial")
            before, tallies_before = await stack.sim_counters(base), await stack.sim_tallies(base)
            sim_before = sim.sample()
            service = await stack.start_service(env)
            started = time.monotonic()
            svc_before, pg_before = service.sample(), stack.postgres_cpu_s()
            spy = profiling.attach(service.pid, cfg.profile) if cfg.profile else None
            async with timeline.recording(base) as seen:
                drained = await stack.wait_drained(url, cfg.timeout_s)
            wall = time.monotonic() - started
            svc_after, sim_after = service.sample(), sim.sample()
            pg_cpu = stack.postgres_cpu_s() - pg_before
            after, tallies_after = await stack.sim_counters(base), await stack.sim_tallies(base)
            profile = profiling.finish(spy) if spy else None
            stats = await run_stats(url)
    finally:
        if service is not None:
            service.stop()
        sim.stop()
    delta = stack.counter_delta(after, before)
    requests = sum(delta["requests"].values())
    throttled = sum(delta["throttled"].values())
    items = stats["item_links"]
    cpu = svc_after.cpu_s - svc_before.cpu_s
    failed = sum(v for k, v in stats["run_outcomes"].items() if k != "ok")
    tallies = bound.tallies_between(tallies_after, tallies_before)
    latency = bound.Latency.parse(cfg.latency)
    # the simulator runs with its default throttling: its budget is a bound too
    budget = bound.simulator_budget()
    limit = bound.round_trip_bound(tallies, latency, cfg.limits(), wall, cfg.items, budget)
    return {
        "benchmark": "initial_sync",
        "mailboxes": n,
        "exchange_items_per_mailbox": dict(
            zip(("contacts", "appointments", "tasks"), cfg.items, strict=True)
        ),
        "crm_records_per_mailbox": cfg.shape.per_user(),
        "latency_ms": cfg.latency,
        "server_limits": {"rate_per_s": cfg.rate, "max_concurrency": cfg.concurrency},
        "database_pool_size": cfg.pool_size,
        "simulator_seed_s": round(seeded_s, 1),
        "wall_s": round(wall, 2),
        "drain_s": round(drained, 2),
        "items_synced": items,
        "items_per_s": round(items / wall, 1),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "requests_by_operation": delta["requests"],
        "throttled": throttled,
        "throttled_share": round(throttled / requests, 4) if requests else 0.0,
        "throttled_by_operation": delta["throttled"],
        "early_retries": delta["early_retries"],
        "failed_passes": failed,
        "service_cpu_s": round(cpu, 2),
        "service_cpu_s_per_1000_items": round(1000 * cpu / items, 3) if items else None,
        "service_cpu_ms_per_item": round(1000 * cpu / items, 3) if items else None,
        "service_peak_rss_mb": round(svc_after.hwm_kb / 1024, 1),
        "simulator_cpu_s": round(sim_after.cpu_s - sim_before.cpu_s, 2),
        "postgres_cpu_s": round(pg_cpu, 2),
        # Where the machine's two cores went, per synced item: the ceiling of items/s here.
        "machine_cpu_ms_per_item": {
            "service": round(1000 * cpu / items, 3) if items else None,
            "simulator": round(1000 * (sim_after.cpu_s - sim_before.cpu_s) / items, 3)
            if items
            else None,
            "postgres": round(1000 * pg_cpu / items, 3) if items else None,
        },
        **stats,
        "round_trip_bound": limit,
        "timeline": seen.summary(),
        "profile": profile,
    }


def _args(argv: list[str] | None = None) -> InitialConfig:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_initial")
    parser.add_argument("mailboxes", type=int, nargs="?", default=5)
    add_size_arguments(parser)
    parser.add_argument("--profile", help="path prefix for a py-spy profile of the service")
    args = parser.parse_args(argv)
    return InitialConfig(
        args.mailboxes, items=args.items, latency=args.latency, profile=args.profile
    )


def latency_text(text: str) -> str:
    """A latency argument checked now, not by the simulator after seeding."""
    bound.Latency.parse(text)
    return text


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """--items and --latency, shared with the baseline's command line."""
    parser.add_argument(
        "--items",
        type=stack.arg_type(crm_seed.parse_items),
        default=ITEMS,
        help="CONTACTS,APPOINTMENTS,TASKS per mailbox (default 200,100,50)",
    )
    parser.add_argument(
        "--latency",
        type=stack.arg_type(latency_text),
        default=LATENCY,
        help="simulator latency BASE_MS[,PER_ITEM_MS] (default 20,1)",
    )


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(_args())), indent=2))
