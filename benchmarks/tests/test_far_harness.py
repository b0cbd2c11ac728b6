"""The far Exchange harness: command lines, the CRM shape per size, the comparison and its
rendering in RESULTS.md (benchmarks/bench_far.py, report.py, run.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_baseline, bench_far, bench_initial, crm_seed, report, run


def test_default_sizes_measure_what_they_measured() -> None:
    # The shape the benchmarks had as constants: 100/50/25 overlapping, 20/10/5 CRM-only.
    assert crm_seed.CrmShape(100, 50, 25, 20, 10, 5) == bench_initial.SHAPE
    cfg = bench_initial.InitialConfig(10)
    assert (cfg.items, cfg.latency, cfg.shape) == ((200, 100, 50), "20,1", bench_initial.SHAPE)
    base = bench_baseline.BaselineConfig(10)
    assert (base.items, base.latency, base.shape) == (cfg.items, cfg.latency, cfg.shape)
    assert cfg.shape.per_user() == 175 + 35  # overlapping + CRM-only: 385 synced with 350


def test_command_lines_take_sizes_and_latency() -> None:
    argv = ["2", "--items", "5000,1500,500", "--latency", "150,2"]
    cfg = bench_initial._args(argv)
    assert (cfg.mailboxes, cfg.items, cfg.latency) == (2, (5000, 1500, 500), "150,2")
    assert cfg.shape.per_user() == 2500 + 750 + 250 + 500 + 150 + 50
    base = bench_baseline._args([*argv, "--threads", "8"])
    assert (base.mailboxes, base.items, base.latency, base.threads) == (2, cfg.items, "150,2", 8)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["2", "--items", "5000,1500"], "items '5000,1500': expected CONTACTS,APPOINTMENTS,TASKS"),
        (["2", "--items", "a,b,c"], "items 'a,b,c'"),
        (["2", "--latency", "far"], r"latency 'far': expected BASE_MS\[,PER_ITEM_MS\]"),
    ],
)
def test_bad_arguments_end_with_usage_naming_the_argument(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        bench_initial._args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--items" in err or "--latency" in err
    assert re.search(message, err)


def test_the_far_cases_are_the_issues_sizes_at_150_ms() -> None:
    assert bench_far.LATENCY == "150,2"
    a, b = bench_far.CASES["a"], bench_far.CASES["b"]
    assert (a.mailboxes, a.items, sum(a.items)) == (2, (5000, 1500, 500), 7000)
    assert (b.mailboxes, b.items) == (50, (200, 100, 50))
    assert run.PROFILES["quick"].far_cases == bench_far.GROUPS["small"]
    assert run.PROFILES["full"].far_cases == ("a", "b")


def _service(wall: float, rate: float) -> dict[str, Any]:
    return {
        "wall_s": wall, "items_per_s": rate, "items_synced": 15400, "requests": 600,
        "requests_by_operation": {"GetItem": 280, "UpdateItem": 282, "SyncFolderItems": 28},
        "throttled": 0, "early_retries": 0, "failed_passes": 0,
        "service_cpu_ms_per_item": 0.3, "service_peak_rss_mb": 250.0,
        "round_trip_bound": {"bound_s": 5.0, "binding": "per-mailbox concurrency",
                             "measured_over_bound": round(wall / 5.0, 2),
                             "limits": {"in_flight_per_mailbox": 10},
                             "peak_in_flight_per_mailbox": 2,
                             "mean_in_flight_per_mailbox": 1.1,
                             "mean_items_per_request": 40.0},
    }  # fmt: skip


def _baseline(wall: float, rate: float) -> dict[str, Any]:
    return {"initial": {"wall_s": wall, "items_per_s": rate, "items_synced": 15400,
                        "requests": 154, "requests_by_operation": {"SyncFolderItems": 140},
                        "throttled": 0, "early_retries": 0, "cpu_ms_per_item": 0.5,
                        "peak_rss_mb": 120.0}}  # fmt: skip


def _case(name: str, service: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    s, b = bench_far.service_summary(service), bench_far.baseline_summary(baseline)
    return {"case": name, "what": bench_far.CASES[name].what, "mailboxes": 2,
            "exchange_items_per_mailbox": {"contacts": 5000}, "latency_ms": "150,2",
            "machine": {"commit": "abc1234", "date": "today", "command": "python x"},
            "service": s, "baseline": b, "service_over_baseline": bench_far.ratios(s, b),
            "service_detail": service, "baseline_detail": baseline}  # fmt: skip


def test_ratios_are_service_over_baseline() -> None:
    s = bench_far.service_summary(_service(98.0, 157.0))
    b = bench_far.baseline_summary(_baseline(39.0, 395.0))
    q = bench_far.ratios(s, b)
    assert q["wall_s"] == pytest.approx(2.51) and q["items_per_s"] == pytest.approx(0.4)
    assert q["requests"] == pytest.approx(3.9)
    assert b["failed_passes"] is None and s["in_flight_allowed_per_mailbox"] == 10


def test_targets_are_judged_for_the_issue_sizes_only() -> None:
    today = _case("a", _service(98.0, 157.0), _baseline(39.0, 395.0))
    goal = _case("b", _service(4.0, 2000.0), _baseline(20.0, 400.0))
    small = _case("a_small", _service(98.0, 1.0), _baseline(1.0, 100.0))
    rows = {r["target"]: r for r in report.far_targets({"a": today, "b": goal, "a_small": small})}
    assert rows["far (a) <= 15 s wall"] == {"target": "far (a) <= 15 s wall",
                                            "measured": "98.0 s", "verdict": "MISSED"}  # fmt: skip
    assert rows["far (a) >= 3x the exchangelib baseline's items/s"]["verdict"] == "MISSED"
    assert rows["far (a) within 1.5x of the round-trip bound"]["measured"] == "19.6x"
    assert rows["far (a) service peak RSS < 300 MB"]["verdict"] == "met"
    assert rows["far (b) >= 5x the exchangelib baseline's items/s"]["verdict"] == "met"
    assert rows["far (a small) zero early retries"]["verdict"] == "met"
    assert not any(r.startswith("far (a_small)") for r in rows)


def test_a_case_renders_side_by_side_with_the_bound_and_failures() -> None:
    case = _case("a", _service(98.0, 157.0), {"error": "RuntimeError: simulator exited"})
    text = "\n".join(report.far_case(case))
    assert "| wall s | 98.0 | n/a |  |" in text
    assert "| requests by operation | UpdateItem 282, GetItem 280, SyncFolderItems 28 |" in text
    assert "| round-trip bound s (what binds) | 5.0 (per-mailbox concurrency) |" in text
    assert "| requests in flight per mailbox: peak / mean | 2 / 1.1 |" in text
    assert "- baseline failed: RuntimeError: simulator exited" in text


def test_results_md_has_the_far_section_and_keeps_the_findings(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    cases = {"a": _case("a", _service(98.0, 157.0), _baseline(39.0, 395.0))}
    (results / "far.json").write_text(json.dumps(bench_far.merge(results / "x", cases)))
    md = tmp_path / "RESULTS.md"
    md.write_text(f"old tables\n{report.FINDINGS}\nhand-written findings\n")
    report.write_results_md(results, md)
    text = md.read_text()
    assert "## Far Exchange (`python -m benchmarks.bench_far`)" in text
    assert "| far (a) <= 15 s wall | 98.0 s | MISSED |" in text
    assert "old tables" not in text and text.endswith("hand-written findings\n")


def test_merge_replaces_a_case_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "far.json"
    path.write_text('{"cases": {"a": {"old": 1}, "b": {"kept": 1}}}')
    assert bench_far.merge(path, {"a": {"new": 1}}) == {
        "cases": {"a": {"new": 1}, "b": {"kept": 1}}
    }


def test_no_regression_targets_only_at_2000_mailboxes_and_20_ms() -> None:
    full = {"initial": {"mailboxes": 2000, "items_per_s": 2343.9,
                        "service_cpu_ms_per_item": 0.26}}  # fmt: skip
    rows = {r["target"]: r["verdict"] for r in report.regression_targets(full)}
    assert rows == {
        "(1) 2,000 mailboxes at 20 ms: >= 2,300 items/s (issue 15)": "met",
        "(1) 2,000 mailboxes: <= 0.25 ms service CPU per item (issue 15)": "MISSED",
    }
    assert report.regression_targets({**full, "latency_ms": "150,2"}) == []
    assert report.regression_targets({"initial": {"mailboxes": 10}}) == []
