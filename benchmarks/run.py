"""Run every benchmark in one go and write benchmarks/results/<profile>.json and RESULTS.md.

    python -m benchmarks.run --profile quick   # `make bench`, under 5 minutes
    python -m benchmarks.run --profile full    # `make bench-full`: the issue's sizes, ~40 minutes

The full profile also runs benchmarks/bench_metrics_scrape.py (its result in full.json only).

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
from typing import Any

from benchmarks import (
    bench_baseline,
    bench_idle,
    bench_initial,
    bench_metrics_scrape,
    report,
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


PROFILES = {
    "quick": Profile(10, 200, 30.0, 40, 20.0, 10, 3.0),
    # 2,000 mailboxes x 385 items initial; 10,000 idle mailboxes, ten minutes under push.
    "full": Profile(2000, 10_000, 600.0, 1000, 60.0, 30, 5.0, scrape_mailboxes=100_000),
}


def ceiling(seconds: float) -> dict[str, Any]:
    """Benchmark (6): benchmarks/simulator_capacity.py in its own process."""
    out = RESULTS / "simulator_capacity.json"
    script = str(stack.ROOT / "benchmarks" / "simulator_capacity.py")
    port = str(stack.free_port())
    cmd = [sys.executable, script, "--seconds", str(seconds), "--port", port, "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return dict(json.loads(out.read_text()))


async def run_all(name: str, p: Profile, spy: bool) -> dict[str, Any]:
    prefix = str(RESULTS / f"profile-{name}") if spy else None
    result: dict[str, Any] = {"profile": name, "machine": stack.machine(), "sizes": asdict(p)}
    steps: list[tuple[str, Any]] = [
        ("ceiling", lambda: asyncio.to_thread(ceiling, p.ceiling_seconds)),
        (
            "initial",
            lambda: bench_initial.run(
                bench_initial.InitialConfig(
                    p.initial_mailboxes, profile=prefix and prefix + "-initial"
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
            lambda: bench_baseline.run(bench_baseline.BaselineConfig(p.baseline_mailboxes)),
        ),
    ]
    if p.scrape_mailboxes:
        scrape = bench_metrics_scrape.ScrapeConfig(mailboxes=p.scrape_mailboxes)
        steps.append(("metrics_scrape", lambda: bench_metrics_scrape.run(scrape)))
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
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run_all(args.profile, PROFILES[args.profile], args.py_spy))
    out = RESULTS / f"{args.profile}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    report.write_results_md(RESULTS, stack.ROOT / "benchmarks" / "RESULTS.md")
    for row in result["targets"]:
        print(f"  {row['target']:58s} {row['measured']:>24s}  {row['verdict']}")
    print(f"bench: wrote {out} and benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
