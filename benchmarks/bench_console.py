"""Benchmark: the web console's pages with 10,000 mailboxes, each under 200 ms (issue 19).

    python -m benchmarks.bench_console [--mailboxes 10000] [--runs-per-mailbox 4] [--repeat 20]

A fresh database migrated by `sync-service migrate`, the console's data set written into it
(tests/console/dataset.py: mailboxes on two servers in every state, a day of passes, item
errors, audit rows, queued jobs), and the service with the api role only (`python -m
sync_service run`, a real process). This process signs in once, then GETs every page
`--repeat` times, one request after another, after one warm-up request each. A request's time
runs from sending it to having read the whole answer over loopback: the server's time plus a
little of this client's, so an upper bound of the server time. Prints one line per page and
the JSON of the results; exits 1 if the 95th percentile of any page reaches 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import asyncpg

from benchmarks import stack
from tests.console.dataset import DataSet, seed

LIMIT_MS = 200.0


@dataclass(frozen=True, slots=True)
class PageTime:
    page: str
    status: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    bytes: int


def pages(dry_run: int) -> list[str]:
    """Every kind of page, with the searches and filters an operator uses most."""
    return [
        "/console/sign-in",
        "/console/",
        "/console/mailboxes",
        "/console/mailboxes?q=user0421",
        "/console/mailboxes?q=support",
        "/console/mailboxes?state=quarantined&server=online",
        "/console/mailboxes?state=active&group=emea&after=user05000%40example.com",
        "/console/mailboxes/user00013@example.com",
        "/console/runs",
        "/console/runs?mailbox=user00042@example.com",
        f"/console/runs/{dry_run}",
        "/console/servers",
        "/console/servers/online",
    ]


async def sign_in(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(f"{base}/console/sign-in") as resp:
        nonce = re.search(r'name="nonce" value="([^"]+)"', await resp.text())
    assert nonce, "no sign-in form"
    form = {"nonce": nonce.group(1), "token": stack.API_TOKEN, "next": "/console/"}
    async with http.post(f"{base}/console/sign-in", data=form, allow_redirects=False) as resp:
        if resp.status != 303:
            raise SystemExit(f"bench_console: sign-in answered {resp.status}")


async def time_page(http: aiohttp.ClientSession, url: str, repeat: int) -> PageTime:
    async with http.get(url) as resp:  # warm-up: templates compiled, plans cached
        await resp.read()
    times, status, size = [], 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with http.get(url, allow_redirects=False) as resp:
            body = await resp.read()
        times.append((time.perf_counter() - started) * 1000)
        status, size = resp.status, len(body)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    path = url.split("/", 3)[3]
    return PageTime(f"/{path}", status, statistics.median(times), p95, times[-1], size)


async def measure(base: str, dry_run: int, repeat: int) -> list[PageTime]:
    jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an address: keep its cookies
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        await sign_in(http, base)
        return [await time_page(http, f"{base}{p}", repeat) for p in pages(dry_run)]


async def run(data: DataSet, repeat: int) -> dict[str, Any]:
    async with stack.fresh_database("bench_console") as url:
        port = stack.free_port()
        env = stack.service_env(url, port, SYNC_ROLES="api")
        await stack.cli(env, "migrate")
        conn = await asyncpg.connect(url)
        try:
            started = time.monotonic()
            await seed(conn, data)
            seeded = time.monotonic() - started
            dry_run = int(await conn.fetchval("SELECT min(id) FROM sync.runs WHERE dry_run"))
            runs = int(await conn.fetchval("SELECT count(*) FROM sync.runs"))
        finally:
            await conn.close()
        service = await stack.start_service(env)
        try:
            timings = await measure(f"http://127.0.0.1:{port}", dry_run, repeat)
        finally:
            service.stop()
    return {
        "data_set": asdict(data),
        "runs": runs,
        "seed_s": round(seeded, 2),
        "repeat": repeat,
        "limit_ms": LIMIT_MS,
        "pages": [asdict(t) for t in timings],
        "machine": stack.machine(),
    }


def report(result: dict[str, Any]) -> int:
    print(
        f"console pages, {result['data_set']['mailboxes']} mailboxes, {result['runs']} runs, "
        f"{result['repeat']} requests each (ms: p50 / p95 / max)"
    )
    failed = []
    for page in result["pages"]:
        over = page["p95_ms"] >= LIMIT_MS or page["status"] != 200
        print(
            f"  {page['page']:72s} {page['status']}  {page['p50_ms']:6.1f} / "
            f"{page['p95_ms']:6.1f} / {page['max_ms']:6.1f}{'  OVER' if over else ''}"
        )
        if over:
            failed.append(page["page"])
    print(json.dumps(result, default=str))
    if failed:
        print(f"bench_console: over {LIMIT_MS:.0f} ms or not 200: {failed}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_console", description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--runs-per-mailbox", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data = DataSet(mailboxes=args.mailboxes, runs_per_mailbox=args.runs_per_mailbox)
    return report(asyncio.run(run(data, args.repeat)))


if __name__ == "__main__":
    sys.exit(main())
