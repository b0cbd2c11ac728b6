"""Benchmark: one, two and three engine replicas sharing one database; where the CPU goes.

Each size is the scenario of tests/scale/replicas.py without kills or edits: one
`api,dispatcher` replica and N `engine` replicas (separate processes) against an EWS and a
Graph simulator (each its own process, half the mailboxes each, 2 items per folder plus the
CRM's 5 records per user: 11 synced items a mailbox), on a private PostgreSQL so that its CPU
is this run's alone. Items/s is the item links over the initial passes' window (first start
to last end, from sync.runs); CPU seconds per process come from /proc over the same phase.

With `--scenario` it also runs the multi-replica test at this size (two dispatchers, three
engines, an engine and the leader SIGKILLed mid-pass, edits on both sides; its checks raise),
and with `--outage S` the database scenarios of tests/scale/db_outage.py (a restart, and S
seconds unreachable) for their timings.

    python -m benchmarks.bench_replicas 200 --engines 1,2,3 [--scenario] [--outage 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import stack


@dataclass(frozen=True, slots=True)
class ReplicasConfig:
    mailboxes: int = 200
    engines: tuple[int, ...] = (1, 2, 3)
    scenario: bool = False
    outage_s: float = 0.0  # 0: the database scenarios are not run
    latency: str = "20,1"
    timeout_s: float = 1800.0


def role_of(process: str) -> str:
    """`engine-2` -> engine, `simulator-ews` -> simulator, `postgres` -> postgres."""
    return process.split("-", 1)[0]


def cpu_by_role(cpu_s: dict[str, float]) -> dict[str, float]:
    """CPU seconds per role (engines, dispatchers, simulators, PostgreSQL) of one run."""
    out: dict[str, float] = {}
    for process, seconds in cpu_s.items():
        out[role_of(process)] = round(out.get(role_of(process), 0.0) + seconds, 2)
    return out


def cpu_ms_per_item(cpu_s: dict[str, float], items: int) -> dict[str, float | None]:
    """Each role's CPU milliseconds per synced item: what bounds items/s on this machine."""
    return {
        role: (round(1000 * s / items, 3) if items else None)
        for role, s in cpu_by_role(cpu_s).items()
    }


def scaling(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Items/s of each engine count over that of the smallest count run."""
    if not runs or not runs[0].get("items_per_s"):
        return {}
    base = float(runs[0]["items_per_s"])
    return {f"{r['engines']} engines": round(float(r["items_per_s"]) / base, 2) for r in runs}


async def _on_private_pg(work: Any) -> Any:
    """`work(server, url, pool)` against a fresh private PostgreSQL."""
    from sync_service.db.pool import create_pool
    from tests.scale.private_pg import PrivatePostgres, create_database

    server = PrivatePostgres(stack.free_port())
    try:
        await asyncio.to_thread(server.start)
        url = await create_database(server, f"bench_{uuid.uuid4().hex[:8]}")
        pool = await create_pool(url, size=10)
        try:
            return await work(server, url, pool)
        finally:
            await pool.close()
    finally:
        await asyncio.to_thread(server.destroy)


async def _replicas(cfg: ReplicasConfig, engines: int, *, kill: bool, edits: bool,
                    dispatchers: int) -> dict[str, Any]:  # fmt: skip
    from tests.scale.replicas import ReplicaConfig, run_replicas

    # The default lease where nothing is killed; with kills one short enough that the dead
    # engine's jobs are reaped soon, long enough for a busy event loop to renew in time.
    scenario = ReplicaConfig(
        mailboxes=cfg.mailboxes, engines=engines, dispatchers=dispatchers, kill=kill,
        edits=edits, latency=cfg.latency, timeout_s=cfg.timeout_s,
        lease="10s" if kill else "60s",
    )  # fmt: skip

    async def work(server: Any, url: str, pool: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="bench-replicas-") as logs:
            figures = await run_replicas(scenario, pool, url, Path(logs), server.cpu_s)
        out = asdict(figures)
        out["cpu_s_by_role"] = cpu_by_role(figures.cpu_s)
        out["cpu_ms_per_item"] = cpu_ms_per_item(figures.cpu_s, figures.items)
        return out

    started = time.monotonic()
    result: dict[str, Any] = await _on_private_pg(work)
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


async def _outage(seconds: float) -> dict[str, Any]:
    from tests.scale.db_outage import run_outage
    from tests.scale.private_pg import wait_answers
    from tests.scale.proxy import CuttableProxy

    async def restart(server: Any, url: str, pool: Any) -> dict[str, Any]:
        async def stop() -> None:
            await asyncio.to_thread(server.stop, "fast")

        async def start() -> None:
            await asyncio.to_thread(server.start)
            await wait_answers(server.url())

        with tempfile.TemporaryDirectory(prefix="bench-restart-") as logs:
            figures = await run_outage(pool, url, Path(logs), cut=stop, restore=start, down_s=5.0)
        return asdict(figures)

    async def cut_off(server: Any, url: str, pool: Any) -> dict[str, Any]:
        proxy = CuttableProxy(stack.free_port(), server.port)
        await proxy.start()
        via = server.url(url.rsplit("/", 1)[1], port=proxy.listen_port)
        try:
            with tempfile.TemporaryDirectory(prefix="bench-outage-") as logs:
                figures = await run_outage(
                    pool, via, Path(logs), cut=proxy.cut, restore=proxy.restore,
                    down_s=seconds, lease="10s",
                )  # fmt: skip
        finally:
            await proxy.close()
        return asdict(figures)

    return {"restart": await _on_private_pg(restart), "unreachable": await _on_private_pg(cut_off)}


async def run(cfg: ReplicasConfig) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "replicas", "config": asdict(cfg)}
    runs = []
    for engines in cfg.engines:
        print(f"bench_replicas: {cfg.mailboxes} mailboxes, {engines} engines", flush=True)
        runs.append(await _replicas(cfg, engines, kill=False, edits=False, dispatchers=1))
    result["by_engines"] = runs
    result["items_per_s_over_fewest_engines"] = scaling(runs)
    if cfg.scenario:
        print("bench_replicas: the multi-replica scenario (kills, edits)", flush=True)
        try:
            result["scenario"] = await _replicas(cfg, 3, kill=True, edits=True, dispatchers=2)
        except AssertionError as exc:  # a failed check is a result too
            result["scenario"] = {"error": f"check failed: {str(exc)[:2000]}"}
    if cfg.outage_s:
        print(f"bench_replicas: database restart and {cfg.outage_s:g}s outage", flush=True)
        try:
            result["database"] = await _outage(cfg.outage_s)
        except AssertionError as exc:
            result["database"] = {"error": f"check failed: {str(exc)[:2000]}"}
    result["machine"] = stack.machine()
    return result


def _engine_counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(p) for p in text.split(",") if p.strip())
    if not counts or min(counts) < 1:
        raise ValueError(f"engines {text!r}: expected counts >= 1, e.g. 1,2,3")
    return counts


def _args(argv: list[str] | None = None) -> ReplicasConfig:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_replicas")
    parser.add_argument("mailboxes", type=int, nargs="?", default=200)
    parser.add_argument("--engines", type=stack.arg_type(_engine_counts), default=(1, 2, 3))
    parser.add_argument("--scenario", action="store_true", help="also the multi-replica test")
    parser.add_argument("--outage", type=float, default=0.0, help="also the database scenarios")
    parser.add_argument("--latency", default="20,1", help="simulator BASE_MS[,PER_ITEM_MS]")
    args = parser.parse_args(argv)
    return ReplicasConfig(args.mailboxes, args.engines, args.scenario, args.outage, args.latency)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(_args())), indent=2, default=str))
