"""RESULTS.md's console and replica sections, rendered from small made-up results."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.sections import console_section, console_targets, replicas_section

MACHINE = {
    "cpu_model": "Test CPU", "cores": 2, "memory_gb": 8, "python": "3.11.7",
    "date": "2026-12-01T12:00:00+00:00", "commit": "abc1234", "load_average": [1.0],
}  # fmt: skip


def page(path: str, p95: float, status: int = 200) -> dict[str, Any]:
    return {"page": path, "status": status, "p50_ms": p95 / 2, "p95_ms": p95,
            "max_ms": p95 + 5, "bytes": 1234}  # fmt: skip


def console(*pages: dict[str, Any], mailboxes: int = 10_000) -> dict[str, Any]:
    return {
        "data_set": {"mailboxes": mailboxes, "item_errors": 600, "audit_rows": 20000,
                     "queued_jobs": 300},
        "runs": 40001, "seed_s": 2.0, "repeat": 20, "limit_ms": 200.0,
        "pages": list(pages), "machine": MACHINE,
    }  # fmt: skip


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of each markdown table row, header and separator left out."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line[:1] == "|"]
    return [r for r in rows[2:]] if rows else []


def test_console_section_lists_every_page_against_the_limit() -> None:
    r = {
        "profile": "quick",
        "console": console(page("/console/", 150.0), page("/console/runs", 12.5)),
    }
    lines = console_section(r)
    assert lines[0].startswith("### Console pages") and "`quick`" in lines[0]
    text = "\n".join(lines)
    assert "20 requests per page" in text and "10000 mailboxes, 40001 runs" in text
    assert "Test CPU, 2 cores" in text and "commit abc1234" in text
    assert "with 10,000 mailboxes: **met**" in text
    assert table_rows(lines) == [
        ["`/console/`", "200", "75.0", "150.0", "155.0", "1234", "yes"],
        ["`/console/runs`", "200", "6.2", "12.5", "17.5", "1234", "yes"],
    ]


def test_a_slow_page_or_a_failed_answer_misses_the_target() -> None:
    slow = {"console": console(page("/console/", 250.0), page("/console/runs", 12.0))}
    assert "**MISSED**" in "\n".join(console_section(slow))
    assert table_rows(console_section(slow))[0][-1] == "NO"
    (row,) = console_targets(slow)
    assert row == {"target": "console: every page p95 < 200 ms, 10,000 mailboxes",
                   "measured": "250.0 ms (slowest page p95)", "verdict": "MISSED"}  # fmt: skip
    broken = {"console": console(page("/console/", 20.0, status=500))}
    assert console_targets(broken)[0]["verdict"] == "MISSED"


def test_the_console_target_is_judged_at_10000_mailboxes_only() -> None:
    small = {"console": console(page("/console/", 20.0), mailboxes=100)}
    assert console_targets(small)[0]["verdict"] == "n/a"
    assert console_targets({"console": console(page("/console/", 20.0))})[0]["verdict"] == "met"
    assert console_targets({}) == [] and console_section({}) == []


def test_a_failed_console_run_shows_its_error() -> None:
    r = {"profile": "full", "console": {"error": "SystemExit: sign-in answered 500"}}
    assert "- failed: SystemExit: sign-in answered 500" in console_section(r)
    assert console_targets(r)[0]["verdict"] == "n/a"


def engines_run(n: int, items_per_s: float, engine_ms: float) -> dict[str, Any]:
    return {"engines": n, "items": 2200, "initial_s": round(2200 / items_per_s, 1),
            "items_per_s": items_per_s,
            "cpu_ms_per_item": {"engine": engine_ms, "postgres": 0.9, "simulator": 0.4,
                                "dispatcher": 0.05}}  # fmt: skip


def outage(down: float) -> dict[str, Any]:
    return {"down_s": down, "not_ready_after_s": {"api-0": 1.25},
            "ready_again_after_s": {"api-0": 2.5}, "cut_off_passes": 4, "transient_runs": 4,
            "retried_ok": 4, "outcomes": {"ok": 40, "transient": 4}}  # fmt: skip


REPLICAS: dict[str, Any] = {
    "config": {"mailboxes": 200, "latency": "20,1"},
    "by_engines": [engines_run(1, 100.0, 2.0), engines_run(2, 130.0, 2.2)],
    "items_per_s_over_fewest_engines": {"1 engines": 1.0, "2 engines": 1.3},
    "scenario": {"mailboxes": 200, "engines": 3, "items": 2200, "initial_s": 20.0,
                 "items_per_s": 110.0, "edits_s": 6.5, "takeover_s": 3.2,
                 "killed": ["engine-1", "dispatcher-0"], "outcomes": {"ok": 420}},
    "database": {"restart": outage(5.0), "unreachable": outage(30.0)},
    "machine": MACHINE,
}  # fmt: skip


def test_replicas_section_has_a_row_per_engine_count_and_cpu_per_process_kind() -> None:
    lines = replicas_section({"profile": "full", "replicas": REPLICAS})
    assert lines[0].startswith("### Replicas") and "`full`" in lines[0]
    header = next(line for line in lines if line.startswith("| engines"))
    kinds = [c.strip() for c in header.strip("|").split("|")][5:]
    assert kinds == [
        f"{k} CPU ms per item" for k in ("engine", "dispatcher", "simulator", "postgres")
    ]
    assert table_rows(lines) == [
        ["1", "2200", "22.0", "100.0", "1.0", "2.0", "0.05", "0.4", "0.9"],
        ["2", "2200", "16.9", "130.0", "1.3", "2.2", "0.05", "0.4", "0.9"],
    ]


def test_replicas_section_gives_the_scenario_and_the_outages() -> None:
    text = "\n".join(replicas_section({"profile": "full", "replicas": REPLICAS}))
    assert "200 mailboxes" in text and "20,1 ms latency" in text and "commit abc1234" in text
    assert "killed engine-1, dispatcher-0" in text and "edits synced in 6.5 s" in text
    assert "leader takeover 3.2 s" in text
    assert "- database restarted: down 5.0 s; /readyz false after api-0 1.25 s" in text
    assert "- unreachable: down 30.0 s" in text and "true again after api-0 2.50 s" in text
    assert "4 mailboxes retried to ok" in text


def test_replicas_section_reports_failed_checks_and_is_empty_without_a_run() -> None:
    failed = copy.deepcopy(REPLICAS)
    failed["scenario"] = {"error": "check failed: 2 mailboxes synced by two engines"}
    failed["database"] = {"error": "check failed: engine-0 exited"}
    text = "\n".join(replicas_section({"replicas": failed}))
    assert "- multi-replica scenario: check failed: 2 mailboxes synced by two engines" in text
    assert "- database scenarios: check failed: engine-0 exited" in text
    assert replicas_section({"profile": "quick"}) == []
    assert (
        replicas_section({"replicas": {"error": "OSError: boom"}})[-2] == "- failed: OSError: boom"
    )


def test_results_md_carries_both_sections_and_the_console_target(tmp_path: Path) -> None:
    r: dict[str, Any] = {"profile": "full", "machine": MACHINE, "sizes": {}, "replicas": REPLICAS}
    r["console"] = console(page("/console/", 90.0))
    r["targets"] = report.targets(r)
    (tmp_path / "full.json").write_text(json.dumps(r))
    md = tmp_path / "RESULTS.md"
    report.write_results_md(tmp_path, md)
    text = md.read_text()
    assert (
        "| console: every page p95 < 200 ms, 10,000 mailboxes | 90.0 ms (slowest page p95) | met |"
        in text
    )
    assert "### Console pages" in text and "### Replicas" in text
    assert (
        text.index("## Profile `full`")
        < text.index("### Console pages")
        < text.index("### Replicas")
    )
