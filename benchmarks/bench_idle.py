"""Benchmarks (2) idle express cycle, (3) change latency under push, (4) memory per idle mailbox.

One simulator with M small mailboxes, one database. Steps:
- memory at 0 mailboxes: the service (all roles) with the server registered but no mailbox;
- the initial passes of all M mailboxes (setup, reported but not a target);
- push off (roles api,engine): two operator express sweeps (`sync --mode express`), each
  waited until the queue drains. The first one after the initial passes is not idle: it
  reads back the service's own initial writes (reported as `echo_sweep`); the second one is
  the idle cycle: requests per mailbox, wall time, service CPU; then RSS;
- push on (all roles, so the dispatcher subscribes every mailbox): wait until every mailbox
  is subscribed, idle for a period counting every request the simulator receives; then
  changes on both sides spread over a window, each timed until it shows on the other side;
  then RSS.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import crm_seed, latency, profiling, stack

ITEMS = (5, 2, 2)
SHAPE = crm_seed.CrmShape(overlap_contacts=5, overlap_appointments=2, overlap_tasks=2)
STREAM_OPS = {"Subscribe", "GetStreamingEvents", "Unsubscribe"}
SYNCED_FOLDERS = 3


@dataclass(frozen=True, slots=True)
class IdleConfig:
    mailboxes: int
    idle_s: float = 60.0
    changes: int = 100
    change_window_s: float = 60.0
    setup_timeout_s: float = 900.0
    rate: float = 2000.0
    concurrency: int = 200
    profile: str | None = None


async def _wait_subscribed(base: str, want: int, timeout: float) -> float:
    started = time.monotonic()
    seen = 0
    while time.monotonic() - started < timeout:
        seen = int((await stack.sim_counters(base)).get("subscriptions", 0))
        if seen >= want:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"only {seen} of {want} subscriptions after {timeout:.0f}s")


async def _settled_rss(proc: stack.Proc, seconds: float = 5.0) -> int:
    await asyncio.sleep(seconds)
    return proc.sample().rss_kb


async def _memory_empty(env: dict[str, str]) -> int:
    service = await stack.start_service(env)
    try:
        return await _settled_rss(service, 8.0)
    finally:
        service.stop()


async def _sweep(
    env: dict[str, str],
    url: str,
    base: str,
    cfg: IdleConfig,
    procs: tuple[stack.Proc, stack.Proc],
    spy_as: str,
) -> dict[str, Any]:
    svc, sim = procs
    before, cpu0 = await stack.sim_counters(base), svc.sample().cpu_s
    pg0, sim0 = stack.postgres_cpu_s(), sim.sample().cpu_s
    spy = profiling.attach(svc.pid, f"{cfg.profile}-{spy_as}") if cfg.profile else None
    since = await _db_now(url)
    started = time.monotonic()
    await stack.cli(env, "sync", "--server", "sim", "--mode", "express")
    await stack.wait_drained(url, cfg.setup_timeout_s)
    wall = time.monotonic() - started
    span = await _runs_span(url, since)
    cpu = svc.sample().cpu_s - cpu0
    pg_cpu, sim_cpu = stack.postgres_cpu_s() - pg0, sim.sample().cpu_s - sim0
    profile = profiling.finish(spy) if spy else None
    delta = stack.counter_delta(await stack.sim_counters(base), before)
    requests = sum(delta["requests"].values())
    m = cfg.mailboxes
    return {
        "wall_s": round(wall, 2),
        "requests": requests,
        "requests_by_operation": delta["requests"],
        "throttled": sum(delta["throttled"].values()),
        "requests_per_mailbox": round(requests / m, 3),
        "requests_per_folder_per_mailbox": round(requests / m / SYNCED_FOLDERS, 3),
        "service_cpu_s": round(cpu, 2),
        "service_cpu_ms_per_mailbox": round(1000 * cpu / m, 3),
        "postgres_cpu_ms_per_mailbox": round(1000 * pg_cpu / m, 3),
        "simulator_cpu_ms_per_mailbox": round(1000 * sim_cpu / m, 3),
        "passes_span_s": round(span, 2),
        # The fixed part (the CLI starting, the queue's last poll) once, the passes scaled.
        "projected_10000_mailbox_sweep_s": round(wall - span + span * 10_000 / m, 1),
        "profile": profile,
    }


async def _push_idle(base: str, cfg: IdleConfig, svc: stack.Proc) -> dict[str, Any]:
    subscribed_s = await _wait_subscribed(base, cfg.mailboxes, cfg.setup_timeout_s)
    await asyncio.sleep(5.0)  # let the catch-up passes after subscribing finish
    before, cpu0 = await stack.sim_counters(base), svc.sample().cpu_s
    await asyncio.sleep(cfg.idle_s)
    cpu = svc.sample().cpu_s - cpu0
    delta = stack.counter_delta(await stack.sim_counters(base), before)
    polling = {k: v for k, v in delta["requests"].items() if k not in STREAM_OPS}
    streaming = {k: v for k, v in delta["requests"].items() if k in STREAM_OPS}
    m = cfg.mailboxes
    return {
        "subscribed_after_s": round(subscribed_s, 1),
        "idle_period_s": cfg.idle_s,
        "polling_requests": sum(polling.values()),
        "polling_by_operation": polling,
        "polling_requests_per_mailbox": round(sum(polling.values()) / m, 4),
        "streaming_requests": streaming,
        "streaming_requests_per_mailbox": round(sum(streaming.values()) / m, 4),
        "service_cpu_s": round(cpu, 2),
    }


async def run(cfg: IdleConfig) -> dict[str, Any]:
    m = cfg.mailboxes
    sim, base = await stack.start_simulator(m, ITEMS)
    result: dict[str, Any] = {"benchmark": "idle", "mailboxes": m, "latency_ms": "20,1"}
    service: stack.Proc | None = None
    try:
        async with stack.fresh_database("bench_idle") as url:
            port = stack.free_port()
            env_all = stack.service_env(url, port, SYNC_DATABASE_POOL_SIZE="40")
            env_off = dict(env_all, SYNC_ROLES="api,engine")
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = Path(tmp) / "mailboxes.csv"
                await stack.cli(env_all, "migrate")
                await crm_seed.seed(url, m, SHAPE, csv_path)
                await stack.register(env_all, base, None, cfg.rate, cfg.concurrency)
                rss_empty = await _memory_empty(env_all)
                await stack.cli(env_all, "mailboxes", "import", str(csv_path), timeout=600.0)
            await stack.cli(env_all, "sync", "--server", "sim", "--mode", "initial")
            service = await stack.start_service(env_off)
            t0 = time.monotonic()
            await stack.wait_drained(url, cfg.setup_timeout_s)
            result["setup_initial_passes_s"] = round(time.monotonic() - t0, 1)
            result["echo_sweep"] = await _sweep(env_off, url, base, cfg, (service, sim), "echo")
            result["push_off_sweep"] = await _sweep(
                env_off, url, base, cfg, (service, sim), "sweep"
            )
            rss_off = await _settled_rss(service)
            service.stop()
            service = await stack.start_service(env_all)
            result["push_on_idle"] = await _push_idle(base, cfg, service)
            result["latency"] = await latency.measure(
                url, base, m, cfg.changes, cfg.change_window_s
            )
            rss_on = await _settled_rss(service, 2.0)
            result["memory"] = {
                "rss_0_mailboxes_kb": rss_empty,
                "rss_push_off_after_sweep_kb": rss_off,
                "rss_push_on_kb": rss_on,
                "kb_per_idle_mailbox_push_off": round((rss_off - rss_empty) / m, 2),
                "kb_per_idle_mailbox_push_on": round((rss_on - rss_empty) / m, 2),
                "service_peak_rss_mb": round(service.sample().hwm_kb / 1024, 1),
            }
            result["mailbox_states"] = await _states(url)
    finally:
        if service is not None:
            service.stop()
        sim.stop()
    return result


async def _db_now(url: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT now()")
    finally:
        await conn.close()


async def _runs_span(url: str, since: Any) -> float:
    """Seconds from the first pass's start to the last pass's end, of the runs after `since`."""
    conn = await asyncpg.connect(url)
    try:
        span = await conn.fetchval(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM sync.runs "
            "WHERE started_at >= $1",
            since,
        )
    finally:
        await conn.close()
    return float(span or 0.0)


async def _states(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return await stack.group_counts(
            conn, "SELECT state, count(*) FROM sync.mailboxes GROUP BY 1"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    import json
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    cfg = IdleConfig(size, idle_s=20.0, changes=20, change_window_s=10.0)
    print(json.dumps(asyncio.run(run(cfg)), indent=2))
