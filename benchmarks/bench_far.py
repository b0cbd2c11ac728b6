"""Far Exchange (issue 15): initial sync at 150 ms + 2 ms per item, the service beside the
exchangelib baseline at the same size, one after the other, each with its own simulator and
database (the simulator's default Exchange Online throttling on).

    python -m benchmarks.bench_far --case a       # 2 mailboxes x (5,000 + 1,500 + 500 items)
    python -m benchmarks.bench_far --case b       # 50 mailboxes x (200 + 100 + 50 items)
    python -m benchmarks.bench_far --case small   # 2 x (500 + 150 + 50) and 10 x (200 + 100 + 50)

Each case records, for both programs: wall seconds, items/s, requests by operation, throttled
answers, early retries, failed passes, CPU per item, peak RSS, the round-trip bound
(benchmarks/bound.py) beside the wall time, and the ratios service / baseline. Results are
merged into benchmarks/results/far.json (one entry per case) and RESULTS.md is rendered again;
`make bench` and `make bench-full` run the small cases and (a) and (b) as part of their
profiles (benchmarks/run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from benchmarks import bench_baseline, bench_initial, report, stack

LATENCY = "150,2"  # ms per request, ms per item: Exchange in another region or over a WAN
RESULTS = stack.ROOT / "benchmarks" / "results"


@dataclass(frozen=True, slots=True)
class FarCase:
    name: str
    mailboxes: int
    items: tuple[int, int, int]  # contacts, appointments, tasks per mailbox
    what: str


CASES = {
    c.name: c
    for c in (
        FarCase("a", 2, (5000, 1500, 500), "(a) 2 mailboxes x 7,000 Exchange items"),
        FarCase("b", 50, bench_initial.ITEMS, "(b) 50 mailboxes x 350 Exchange items"),
        FarCase("a_small", 2, (500, 150, 50), "(a) small: 2 mailboxes x 700 Exchange items"),
        FarCase("b_small", 10, bench_initial.ITEMS, "(b) small: 10 mailboxes x 350 Exchange items"),
    )
}
GROUPS = {"a": ("a",), "b": ("b",), "small": ("a_small", "b_small")}


def service_summary(r: dict[str, Any]) -> dict[str, Any]:
    """The figures compared, from a bench_initial result."""
    b = r.get("round_trip_bound") or {}
    return {
        "wall_s": r.get("wall_s"),
        "items_synced": r.get("items_synced"),
        "items_per_s": r.get("items_per_s"),
        "requests": r.get("requests"),
        "requests_by_operation": r.get("requests_by_operation"),
        "throttled": r.get("throttled"),
        "early_retries": r.get("early_retries"),
        "failed_passes": r.get("failed_passes"),
        "cpu_ms_per_item": r.get("service_cpu_ms_per_item"),
        "peak_rss_mb": r.get("service_peak_rss_mb"),
        **_bound_summary(b),
    }


def baseline_summary(r: dict[str, Any]) -> dict[str, Any]:
    """The same figures from a bench_baseline result (its initial sync)."""
    i = r.get("initial") or {}
    return {
        "wall_s": i.get("wall_s"),
        "items_synced": i.get("items_synced"),
        "items_per_s": i.get("items_per_s"),
        "requests": i.get("requests"),
        "requests_by_operation": i.get("requests_by_operation"),
        "throttled": i.get("throttled"),
        "early_retries": i.get("early_retries"),
        "failed_passes": None,  # no pass: an error ends the whole baseline run
        "cpu_ms_per_item": i.get("cpu_ms_per_item"),
        "peak_rss_mb": i.get("peak_rss_mb"),
        **_bound_summary(i.get("round_trip_bound") or {}),
    }


def _bound_summary(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "bound_s": b.get("bound_s"),
        "bound_binding": b.get("binding"),
        "measured_over_bound": b.get("measured_over_bound"),
        "largest_folder_sync_chain_s": b.get("largest_folder_sync_chain_s"),
        "measured_over_floor": b.get("measured_over_floor"),
        "in_flight_allowed_per_mailbox": (b.get("limits") or {}).get("in_flight_per_mailbox"),
        "peak_in_flight_per_mailbox": b.get("peak_in_flight_per_mailbox"),
        "mean_in_flight_per_mailbox": b.get("mean_in_flight_per_mailbox"),
        "mean_items_per_request": b.get("mean_items_per_request"),
    }


def _ratio(a: Any, b: Any) -> float | None:
    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
    return round(a / b, 2) if ok else None


def ratios(service: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """service / baseline of each figure where both have one (items/s: > 1 is faster)."""
    keys = ("wall_s", "items_per_s", "requests", "cpu_ms_per_item", "peak_rss_mb")
    return {k: _ratio(service.get(k), baseline.get(k)) for k in keys}


async def _step(label: str, make: Any) -> dict[str, Any]:
    started, commit = time.monotonic(), stack.machine()["commit"]
    print(f"bench_far: {label} ... (commit {commit})", file=sys.stderr, flush=True)
    try:
        result = dict(await make())
    except Exception as exc:  # reported; the other side still runs
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["elapsed_s"], result["commit"] = round(time.monotonic() - started, 1), commit
    print(f"bench_far: {label} done in {result['elapsed_s']}s", file=sys.stderr, flush=True)
    return result


async def run_case(case: FarCase, profile: str | None = None) -> dict[str, Any]:
    """The service's initial sync, then the baseline's, at the case's size."""
    initial = bench_initial.InitialConfig(
        case.mailboxes, items=case.items, latency=LATENCY, profile=profile
    )
    base = bench_baseline.BaselineConfig(case.mailboxes, items=case.items, latency=LATENCY)
    load_before = stack.machine()["load_average"]
    service = await _step(f"{case.name} service", lambda: bench_initial.run(initial))
    baseline = await _step(f"{case.name} baseline", lambda: bench_baseline.run(base))
    s, b = service_summary(service), baseline_summary(baseline)
    return {
        "case": case.name,
        "what": case.what,
        "mailboxes": case.mailboxes,
        "exchange_items_per_mailbox": dict(
            zip(("contacts", "appointments", "tasks"), case.items, strict=True)
        ),
        "latency_ms": LATENCY,
        "machine": {**stack.machine(), "load_average_before": load_before},
        "service": s,
        "baseline": b,
        "service_over_baseline": ratios(s, b),
        "service_detail": service,
        "baseline_detail": baseline,
    }


async def run_cases(names: tuple[str, ...], profile: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        prefix = profile and f"{profile}-{name}"
        out[name] = await run_case(CASES[name], prefix)
    return out


def merge(path: Any, cases: dict[str, Any]) -> dict[str, Any]:
    """far.json with these cases replacing earlier runs of the same cases."""
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("cases", {}).update(cases)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_far")
    parser.add_argument(
        "--case",
        choices=sorted(GROUPS),
        action="append",
        required=True,
        help="a, b or small; repeat for more than one",
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the service (py-spy)")
    args = parser.parse_args(argv)
    names = tuple(n for group in args.case for n in GROUPS[group])
    RESULTS.mkdir(parents=True, exist_ok=True)
    profile = str(RESULTS / "profile-far") if args.py_spy else None
    cases = asyncio.run(run_cases(names, profile))
    out = RESULTS / "far.json"
    out.write_text(json.dumps(merge(out, cases), indent=2, default=str) + "\n")
    report.write_results_md(RESULTS, stack.ROOT / "benchmarks" / "RESULTS.md")
    for result in cases.values():
        print("\n".join(report.far_case(result)))
    print(f"bench_far: wrote {out} and benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
