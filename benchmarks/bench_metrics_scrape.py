"""Benchmark: /metrics under a scrape flood leaves the operator API responsive (issue 22).

    python -m benchmarks.bench_metrics_scrape [--mailboxes 100000] [--scrapers 1500]
                                               [--seconds 30] [--refresh 15s]

A fresh database with the mailboxes inserted by one SQL statement; the service with the api
role only (`python -m sync_service run`, a real process); a second process of this module
(`--scrape`) keeps `--scrapers` unauthenticated GET /metrics in flight, each re-sent as soon
as it is answered; meanwhile this process times an authenticated GET /api/v1/status, one after
another. The scrapers are a process of their own so that their event loop does not delay the
timing of /status. Refresh queries are counted by the service's own
`sync_metrics_refreshes_total`, read before and after the flood (pg_stat_statements is not
available here). Exits 1 if the p95 of /status reaches 100 ms, or if there were more
refreshes than one per interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import stack
from sync_service.config import parse_duration

STATUS_P95_LIMIT_MS = 100.0
IDLE_REQUESTS = 30  # /status timed before the flood, for comparison
LOADED = "loaded"  # the scraper process's line once every scraper had an answer
WINDOW_END = "window end"  # and once the measured window is over (its JSON follows)
SERVER_SQL = """
INSERT INTO sync.servers (name, backend, url, auth_kind, username, secret_env)
VALUES ('bench', 'ews', 'https://bench.example/EWS/Exchange.asmx', 'basic', 'svc', 'BENCH_PW')
RETURNING id
"""
# Mostly active, some of every other state, so that the GROUP BY has several groups.
MAILBOXES_SQL = """
INSERT INTO sync.mailboxes (crm_user_id, email, server_id, state)
SELECT 'u' || n, 'user' || n || '@bench.example', $1,
       CASE WHEN n % 100 = 0 THEN 'disabled' WHEN n % 250 = 0 THEN 'quarantined'
            WHEN n % 1000 = 1 THEN 'needs_recovery' ELSE 'active' END
FROM generate_series(1, $2) AS n
"""


@dataclass(frozen=True, slots=True)
class ScrapeConfig:
    mailboxes: int = 100_000
    scrapers: int = 1500
    seconds: float = 30.0
    refresh: str = "15s"


async def seed(url: str, mailboxes: int) -> float:
    """One server and the mailboxes, in two statements; the seconds it took."""
    started = time.monotonic()
    conn = await asyncpg.connect(url)
    try:
        server_id = await conn.fetchval(SERVER_SQL)
        await conn.execute(MAILBOXES_SQL, server_id, mailboxes)
        await conn.execute("ANALYZE sync.mailboxes")
    finally:
        await conn.close()
    return time.monotonic() - started


# ---------------------------------------------------------------- the scraper process


async def flood(base: str, scrapers: int, seconds: float) -> dict[str, Any]:
    """`scrapers` GET /metrics always in flight, each sent again as soon as it is answered;
    measured for `seconds` from the moment every scraper had its first answer."""
    answered: dict[str, int] = {}
    in_flight = [0]
    first = asyncio.Semaphore(0)
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)  # one connection per scraper
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def scraper() -> None:
            seen_first = False
            while not stop.is_set():
                in_flight[0] += 1
                try:
                    async with http.get(f"{base}/metrics") as resp:
                        await resp.read()
                        key = str(resp.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    key = type(exc).__name__
                finally:
                    in_flight[0] -= 1
                answered[key] = answered.get(key, 0) + 1
                if not seen_first:
                    seen_first = True
                    first.release()

        tasks = [asyncio.create_task(scraper()) for _ in range(scrapers)]
        ramp_started = time.monotonic()
        for _ in range(scrapers):
            await first.acquire()
        ramp = time.monotonic() - ramp_started
        print(LOADED, flush=True)
        before, started = dict(answered), time.monotonic()
        samples = []
        while time.monotonic() - started < seconds:
            await asyncio.sleep(0.1)
            samples.append(in_flight[0])
        during = {k: v - before.get(k, 0) for k, v in answered.items()}
        window = time.monotonic() - started
        print(WINDOW_END, flush=True)
        stop.set()
        await asyncio.gather(*tasks)
    return {
        "ramp_s": round(ramp, 2),
        "window_s": round(window, 2),
        "answers": during,
        "in_flight_min": min(samples),
        "in_flight_mean": round(sum(samples) / len(samples)),
    }


async def _scraper_process(cfg: ScrapeConfig, base: str) -> asyncio.subprocess.Process:
    argv = ["-m", "benchmarks.bench_metrics_scrape", "--scrape", base]
    argv += ["--scrapers", str(cfg.scrapers), "--seconds", str(cfg.seconds)]
    return await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=stack.ROOT, stdout=asyncio.subprocess.PIPE
    )


# ---------------------------------------------------------------- the timing process


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_summary(ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p95_ms": round(percentile(ms, 0.95), 1),
        "max_ms": round(max(ms), 1),
    }


async def time_status(
    http: aiohttp.ClientSession, base: str, done: Callable[[int], bool]
) -> list[float]:
    """GET /api/v1/status back to back until `done(requests so far)`; each one's milliseconds."""
    headers = {"Authorization": f"Bearer {stack.API_TOKEN}"}
    out: list[float] = []
    while not done(len(out)):
        started = time.perf_counter()
        async with http.get(f"{base}/api/v1/status", headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET /api/v1/status answered {resp.status}")
        out.append(1000 * (time.perf_counter() - started))
    return out


async def refresh_counts(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The service's own count of gauge refreshes, by outcome, from one scrape."""
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    counts = {"ok": 0.0, "failed": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name == "sync_metrics_refreshes":
            for s in family.samples:
                if s.name.endswith("_total"):
                    counts[s.labels["outcome"]] = s.value
    return counts


async def _first_refresh(http: aiohttp.ClientSession, base: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not (await refresh_counts(http, base))["ok"]:
            await asyncio.sleep(0.1)


async def _expect(stream: asyncio.StreamReader, line: str, timeout: float) -> None:
    got = await asyncio.wait_for(stream.readline(), timeout)
    if got.decode().strip() != line:
        raise RuntimeError(f"scraper process: expected {line!r}, got {got!r}")


async def measure(cfg: ScrapeConfig, base: str, service: stack.Proc) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        await _first_refresh(http, base)
        idle = await time_status(http, base, lambda n: n >= IDLE_REQUESTS)
        before, counted_from = await refresh_counts(http, base), time.monotonic()
        scrapers = await _scraper_process(cfg, base)
        assert scrapers.stdout is not None
        await _expect(scrapers.stdout, LOADED, 300.0)
        cpu0 = service.sample().cpu_s
        window_end = asyncio.ensure_future(_expect(scrapers.stdout, WINDOW_END, 600.0))
        loaded = await time_status(http, base, lambda _: window_end.done())
        await window_end
        cpu = service.sample().cpu_s - cpu0
        flood_result = json.loads(await scrapers.stdout.read())
        if await scrapers.wait() != 0:
            raise RuntimeError("the scraper process failed")
        after, counted_for = await refresh_counts(http, base), time.monotonic() - counted_from
    window = flood_result["window_s"]
    ok_scrapes = flood_result["answers"].get("200", 0)
    # A timer of interval I ticks at most floor(S / I) + 1 times in S seconds.
    allowed = math.floor(counted_for / parse_duration(cfg.refresh)) + 1
    return {
        "status_idle": latency_summary(idle),
        "status_under_load": latency_summary(loaded),
        "scrapes_per_s": round(ok_scrapes / window, 1),
        "scrape_answers": flood_result["answers"],
        "scrapers_ramp_s": flood_result["ramp_s"],
        "scrapes_in_flight_min": flood_result["in_flight_min"],
        "scrapes_in_flight_mean": flood_result["in_flight_mean"],
        "load_window_s": window,
        "refresh_queries": {k: int(after[k] - before[k]) for k in after},
        "refresh_queries_allowed": allowed,
        "refresh_counted_s": round(counted_for, 1),
        "service_cpu_s": round(cpu, 1),
    }


async def run(cfg: ScrapeConfig) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "metrics_scrape", "machine": stack.machine()}
    result["config"] = asdict(cfg)
    async with stack.fresh_database("bench_scrape") as url:
        port = stack.free_port()
        env = stack.service_env(url, port, SYNC_ROLES="api", SYNC_METRICS_REFRESH=cfg.refresh)
        await stack.cli(env, "migrate")
        result["seed_s"] = round(await seed(url, cfg.mailboxes), 1)
        service = await stack.start_service(env)
        try:
            result |= await measure(cfg, f"http://127.0.0.1:{port}", service)
        finally:
            service.stop()
    p95 = result["status_under_load"]["p95_ms"]
    refreshes = sum(result["refresh_queries"].values())
    met = p95 < STATUS_P95_LIMIT_MS and refreshes <= result["refresh_queries_allowed"]
    result["verdict"] = "met" if met else "MISSED"
    return result


def _print(r: dict[str, Any]) -> None:
    m, c = r["machine"], r["config"]
    idle, load = r["status_idle"], r["status_under_load"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores; commit {m['commit']}")
    print(f"{c['mailboxes']} mailboxes (inserted in {r['seed_s']} s), {c['scrapers']} scrapers")
    for name, t in (("idle:      ", idle), ("under load:", load)):
        print(
            f"status {name} p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, max {t['max_ms']} ms"
            f" ({t['n']} requests)"
        )
    print(f"scrapes: {r['scrapes_per_s']}/s over {r['load_window_s']} s, {r['scrape_answers']}")
    print(
        f"scrapes in flight (sampled every 0.1 s): min {r['scrapes_in_flight_min']},"
        f" mean {r['scrapes_in_flight_mean']}"
    )
    print(
        f"refresh queries in the {r['refresh_counted_s']} s around the flood:"
        f" {r['refresh_queries']} (every {c['refresh']}: at most {r['refresh_queries_allowed']})"
    )
    print(f"service CPU during the flood: {r['service_cpu_s']} s")
    print(f"status p95 < {STATUS_P95_LIMIT_MS:.0f} ms, refreshes within the bound: {r['verdict']}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_metrics_scrape")
    default = ScrapeConfig()
    parser.add_argument("--mailboxes", type=int, default=default.mailboxes)
    parser.add_argument("--scrapers", type=int, default=default.scrapers)
    parser.add_argument("--seconds", type=float, default=default.seconds)
    parser.add_argument("--refresh", default=default.refresh)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--scrape", metavar="URL", help=argparse.SUPPRESS)  # the child's role
    args = parser.parse_args()
    if args.scrape:
        print(json.dumps(asyncio.run(flood(args.scrape, args.scrapers, args.seconds))))
        return 0
    cfg = ScrapeConfig(args.mailboxes, args.scrapers, args.seconds, args.refresh)
    result = asyncio.run(run(cfg))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if result["verdict"] == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
