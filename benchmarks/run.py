"""Run every benchmark in one go and write benchmarks/results/<profile>.json and RESULTS.md.

    python -m benchmarks.run --profile quick   # `make bench`, under 5 minutes
    python -m benchmarks.run --profile full    # `make bench-full`: the issue's sizes, ~45 minutes

Both run the console's pages with 10,000 mailboxes (benchmarks/bench_console.py; quick 20
requests per page, full 100). The full profile also runs benchmarks/bench_metrics_scrape.py and
benchmarks/bench_replicas.py (one, two and three engines, the multi-replica test at 2,000
mailboxes, the database restart and 30 s outage; their results in full.json only).
Both run far Exchange cases (benchmarks/bench_far.py, 150 ms + 2 ms per item, service and
baseline side by side): quick the small ones, full (a) and (b) at issue 15's sizes.
`--latency BASE_MS[,PER_ITEM_MS]` sets the simulator's latency of (1) and (5) (default 20,1;
`make bench BENCH_ARGS="--latency 150,2"`); `--out DIR` writes the JSON and a RESULTS.md there
instead (a trial run that leaves the committed results alone).

Each benchmark gets its own simulator and database; they run one after another so that each
has the machine to itself. `--py-spy` profiles the service during (1) and the idle sweep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_baseline,
    bench_console,
    bench_far,
    bench_idle,
    bench_initial,
    bench_metrics_scrape,
    bench_replicas,
    report,
    sections,
    stack,
)

RESULTS = stack.ROOT / "benchmarks" / "results"


@dataclass(frozen=True, slots=True)
class Profile:
    initial_mailboxes: int
    idle_mailboxes: int
    idle_s: float
    changes: int
    change_window_s: float
    baseline_mailboxes: int
    ceiling_seconds: float
    scrape_mailboxes: int = 0  # /metrics under 1,500 scrapes (issue 22); 0: not run
    far_cases: tuple[str, ...] = ()  # bench_far.CASES, far Exchange (issue 15)
    replicas_mailboxes: int = 0  # benchmarks/bench_replicas.py (issue 21); 0: not run
    outage_s: float = 0.0  # with it: the database restart and an outage of this length
    # benchmarks/bench_console.py (issue 19): requests per page, always at 10,000 mailboxes
    console_repeat: int = 0


PROFILES = {
    "quick": Profile(
        10, 200, 30.0, 40, 20.0, 10, 3.0, far_cases=("a_small", "b_small"), console_repeat=20
    ),
    # 2,000 mailboxes x 385 items initial; 10,000 idle mailboxes, ten minutes under push.
    # Replicas: one, two and three engines and the multi-replica test at 2,000 mailboxes.
    "full": Profile(
        2000,
        10_000,
        600.0,
        1000,
        60.0,
        30,
        5.0,
        scrape_mailboxes=100_000,
        far_cases=("a", "b"),
        replicas_mailboxes=2000,
        outage_s=30.0,
        console_repeat=100,
    ),
}


def ceiling(seconds: float, results: Path) -> dict[str, Any]:
    """Benchmark (6): benchmarks/simulator_capacity.py in its own process."""
    out = results / "simulator_capacity.json"
    script = str(stack.ROOT / "benchmarks" / "simulator_capacity.py")
    port = str(stack.free_port())
    cmd = [sys.executable, script, "--seconds", str(seconds), "--port", port, "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return dict(json.loads(out.read_text()))


async def _far(names: tuple[str, ...], profile: str | None) -> dict[str, Any]:
    return {"cases": await bench_far.run_cases(names, profile)}


async def run_all(
    name: str,
    p: Profile,
    spy: bool,
    results: Path = RESULTS,
    latency: str = bench_initial.LATENCY,
) -> dict[str, Any]:
    prefix = str(results / f"profile-{name}") if spy else None
    result: dict[str, Any] = {
        "profile": name,
        "machine": stack.machine(),
        "sizes": asdict(p),
        "latency_ms": latency,
    }
    steps: list[tuple[str, Any]] = [
        ("ceiling", lambda: asyncio.to_thread(ceiling, p.ceiling_seconds, results)),
        (
            "initial",
            lambda: bench_initial.run(
                bench_initial.InitialConfig(
                    p.initial_mailboxes, latency=latency, profile=prefix and prefix + "-initial"
                )
            ),
        ),
        (
            "idle",
            lambda: bench_idle.run(
                bench_idle.IdleConfig(
                    p.idle_mailboxes,
                    idle_s=p.idle_s,
                    changes=p.changes,
                    change_window_s=p.change_window_s,
                    profile=prefix and prefix + "-idle",
                )
            ),
        ),
        (
            "baseline",
            lambda: bench_baseline.run(
                bench_baseline.BaselineConfig(p.baseline_mailboxes, latency=latency)
            ),
        ),
    ]
    if p.console_repeat:
        console = bench_console.DataSet(mailboxes=sections.CONSOLE_MAILBOXES)
        steps.append(("console", lambda: bench_console.run(console, p.console_repeat)))
    if p.scrape_mailboxes:
        scrape = bench_metrics_scrape.ScrapeConfig(mailboxes=p.scrape_mailboxes)
        steps.append(("metrics_scrape", lambda: bench_metrics_scrape.run(scrape)))
    if p.replicas_mailboxes:
        replicas = bench_replicas.ReplicasConfig(
            p.replicas_mailboxes, scenario=True, outage_s=p.outage_s
        )
        steps.append(("replicas", lambda: bench_replicas.run(replicas)))
    if p.far_cases:
        far_prefix = prefix and prefix + "-far"
        steps.append(("far", lambda: _far(p.far_cases, far_prefix)))
    for key, step in steps:
        started = time.monotonic()
        # Others commit to the service while a long run goes on: each step names its code.
        commit = stack.machine()["commit"]
        print(f"bench: {key} ... (commit {commit})", flush=True)
        try:
            result[key] = await step()
        except Exception as exc:  # a failed benchmark is reported, the others still run
            result[key] = {"error": f"{type(exc).__name__}: {exc}"}
        result[key]["elapsed_s"] = round(time.monotonic() - started, 1)
        result[key]["commit"] = commit
        print(f"bench: {key} done in {result[key]['elapsed_s']}s", flush=True)
    result["targets"] = report.targets(result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--py-spy", action="store_true", help="profile the service (py-spy)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument(
        "--latency",
        type=stack.arg_type(bench_initial.latency_text),
        default=bench_initial.LATENCY,
        help="simulator latency of the initial sync and the baseline, BASE_MS[,PER_ITEM_MS]",
    )
    args = parser.parse_args()
    results: Path = args.out.resolve()
    results.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(
        run_all(args.profile, PROFILES[args.profile], args.py_spy, results, args.latency)
    )
    out = results / f"{args.profile}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md = stack.ROOT / "benchmarks" / "RESULTS.md" if results == RESULTS else results / "RESULTS.md"
    report.write_results_md(results, md)
    for row in result["targets"]:
        print(f"  {row['target']:58s} {row['measured']:>24s}  {row['verdict']}")
    print(f"bench: wrote {out} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
