"""Figures against the issue's targets, and the tables of benchmarks/RESULTS.md.

RESULTS.md is generated from results/quick.json, results/full.json and results/far.json
(benchmarks/bench_far.py run on its own) up to the FINDINGS marker; everything after the
marker (the written analysis and profiles) is kept as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.sections import console_section, console_targets, replicas_section

FINDINGS = "<!-- findings: hand-written below, kept by benchmarks/report.py -->"


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _row(target: str, measured: Any, ok: bool | None, unit: str = "") -> dict[str, str]:
    verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
    shown = "n/a" if measured is None else f"{measured}{unit}"
    return {"target": target, "measured": shown, "verdict": verdict}


def _cmp(value: Any, limit: float, below: bool = True) -> bool | None:
    if value is None:
        return None
    return bool(value <= limit) if below else bool(value >= limit)


def _pct(share: Any) -> Any:
    return None if share is None else round(100 * share, 2)


def _latency_ok(p99: Any, lost: Any) -> bool | None:
    return None if p99 is None else bool(p99 < 5.0 and not lost)


def targets(r: dict[str, Any]) -> list[dict[str, str]]:
    failed = _get(r, "initial", "failed_passes")
    share = _get(r, "initial", "throttled_share")
    cpu = _get(r, "initial", "service_cpu_ms_per_item")
    per_folder = _get(r, "idle", "push_off_sweep", "requests_per_folder_per_mailbox")
    sweep = _get(r, "idle", "push_off_sweep", "projected_10000_mailbox_sweep_s")
    idle_n = _get(r, "idle", "mailboxes")
    how = "measured" if idle_n == 10_000 else f"projected from {idle_n}"
    polling = _get(r, "idle", "push_on_idle", "polling_requests")
    p99 = _get(r, "idle", "latency", "all", "p99_s")
    lost = _get(r, "idle", "latency", "all", "lost_within_grace")
    mem = _get(r, "idle", "memory", "kb_per_idle_mailbox_push_on")
    svc_rate = _get(r, "initial", "items_per_s")
    base_rate = _get(r, "baseline", "initial", "items_per_s")
    ratio = round(svc_rate / base_rate, 2) if svc_rate and base_rate else None
    # fmt: off
    return [
        _row("(1) zero failed passes", failed, _cmp(failed, 0)),
        _row("(1) < 2% of requests throttled", _pct(share), _cmp(share, 0.02), "%"),
        _row("(1) <= 0.5 ms service CPU per synced item", cpu, _cmp(cpu, 0.5), " ms"),
        _row("(2) push off: <= 1 request per folder per idle mailbox", per_folder,
             _cmp(per_folder, 1.0)),
        _row(f"(2) push off: 10,000-mailbox sweep <= 60 s ({how})", sweep,
             _cmp(sweep, 60.0), " s"),
        _row("(2) push on: no polling request while idle", polling, _cmp(polling, 0)),
        _row("(3) change latency p99 < 5 s (none lost)", p99, _latency_ok(p99, lost), " s"),
        _row("(4) <= 100 KB per idle mailbox (push on)", mem, _cmp(mem, 100.0), " KB"),
        _row("(5) >= 5x the exchangelib baseline's items/s", ratio, _cmp(ratio, 5.0, False), "x"),
        *regression_targets(r),
        *far_targets(_get(r, "far", "cases") or {}),
        *console_targets(r),
    ]
    # fmt: on


def far_targets(cases: dict[str, Any]) -> list[dict[str, str]]:
    """Issue 15's targets, for the far cases run at its sizes ((a) and (b), not the small ones)."""
    rows: list[dict[str, str]] = []
    a, b = cases.get("a"), cases.get("b")
    # fmt: off
    if isinstance(a, dict):
        wall, speed = _get(a, "service", "wall_s"), _get(a, "service_over_baseline", "items_per_s")
        over, rss = _get(a, "service", "measured_over_bound"), _get(a, "service", "peak_rss_mb")
        rows += [
            _row("far (a) <= 15 s wall", wall, _cmp(wall, 15.0), " s"),
            _row("far (a) >= 3x the exchangelib baseline's items/s", speed,
                 _cmp(speed, 3.0, False), "x"),
            _row("far (a) within 1.5x of the round-trip bound", over, _cmp(over, 1.5), "x"),
            _row("far (a) service peak RSS < 300 MB", rss,
                 None if rss is None else rss < 300.0, " MB"),
        ]
    if isinstance(b, dict):
        speed = _get(b, "service_over_baseline", "items_per_s")
        rows.append(_row("far (b) >= 5x the exchangelib baseline's items/s", speed,
                         _cmp(speed, 5.0, False), "x"))
    # fmt: on
    for name, case in cases.items():
        early = _get(case, "service", "early_retries")
        label = name.replace("_", " ")
        rows.append(_row(f"far ({label}) zero early retries", early, _cmp(early, 0)))
    return rows


def regression_targets(r: dict[str, Any]) -> list[dict[str, str]]:
    """Issue 15's "no regression at 20 ms", judged where (1) ran at its size (2,000)."""
    sized = (_get(r, "initial", "mailboxes") or 0) >= 2000
    if not sized or r.get("latency_ms", "20,1") != "20,1":
        return []
    rate = _get(r, "initial", "items_per_s")
    cpu = _get(r, "initial", "service_cpu_ms_per_item")
    # fmt: off
    return [
        _row("(1) 2,000 mailboxes at 20 ms: >= 2,300 items/s (issue 15)", rate,
             _cmp(rate, 2300.0, False)),
        _row("(1) 2,000 mailboxes: <= 0.25 ms service CPU per item (issue 15)", cpu,
             _cmp(cpu, 0.25), " ms"),
    ]
    # fmt: on


def _count(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items(), key=lambda kv: -kv[1]))
    return "n/a" if value is None else str(value)


def _field(key: str, show: Any = str) -> Any:
    def cell(summary: dict[str, Any]) -> str:
        value = summary.get(key)
        return "n/a" if value is None else str(show(value))

    return cell


def _pair(first: str, second: str, form: str) -> Any:
    return lambda summary: form.format(summary.get(first), summary.get(second))


# (label, the cell from one side's bench_far summary, the key of its service / baseline ratio)
_FAR_ROWS: tuple[tuple[str, Any, str | None], ...] = (
    ("wall s", _field("wall_s"), "wall_s"),
    ("items synced", _field("items_synced"), None),
    ("items/s", _field("items_per_s"), "items_per_s"),
    ("requests", _field("requests"), "requests"),
    ("requests by operation", _field("requests_by_operation", _count), None),
    ("mean items per request", _field("mean_items_per_request"), None),
    ("throttled answers", _field("throttled"), None),
    ("early retries", _field("early_retries"), None),
    ("failed passes", _field("failed_passes"), None),
    ("CPU ms per item", _field("cpu_ms_per_item"), "cpu_ms_per_item"),
    ("peak RSS MB", _field("peak_rss_mb"), "peak_rss_mb"),
    ("requests allowed in flight per mailbox", _field("in_flight_allowed_per_mailbox"), None),
    ("requests in flight per mailbox: peak / mean",
     _pair("peak_in_flight_per_mailbox", "mean_in_flight_per_mailbox", "{} / {}"), None),
    ("round-trip bound s (what binds)", _pair("bound_s", "bound_binding", "{} ({})"), None),
    ("measured / bound", _field("measured_over_bound"), None),
    ("largest folder's SyncFolderItems chain s", _field("largest_folder_sync_chain_s"), None),
    ("measured / max(bound, chain)", _field("measured_over_floor"), None),
)  # fmt: skip


def far_case(c: dict[str, Any]) -> list[str]:
    """One far case as a markdown table: service, baseline, service / baseline."""
    s, b = c.get("service") or {}, c.get("baseline") or {}
    q = c.get("service_over_baseline") or {}
    m = c.get("machine") or {}
    sizes = c.get("exchange_items_per_mailbox") or {}
    lines = [
        f"**{c.get('what')}** ({c.get('mailboxes')} mailboxes x "
        f"{' + '.join(f'{v} {k}' for k, v in sizes.items())}, "
        f"{c.get('latency_ms')} ms latency; commit {m.get('commit')}, {m.get('date')}; "
        f"load average {m.get('load_average_before')} before, {m.get('load_average')} after)",
        "",
        "| far Exchange | service | exchangelib baseline | service / baseline |",
        "|---|---|---|---|",
    ]
    for label, cell, key in _FAR_ROWS:
        ratio = q.get(key) if key else None
        lines.append(f"| {label} | {cell(s)} | {cell(b)} | {'' if ratio is None else ratio} |")
    for side in ("service", "baseline"):
        error = (c.get(f"{side}_detail") or {}).get("error")
        if error:
            lines += ["", f"- {side} failed: {error}"]
    return [*lines, ""]


def far_section(data: dict[str, Any]) -> list[str]:
    """results/far.json: `python -m benchmarks.bench_far` runs, one table per case."""
    cases = data.get("cases") or {}
    if not cases:
        return []
    commands = sorted({_get(c, "machine", "command") for c in cases.values()} - {None})
    lines = [
        "## Far Exchange (`python -m benchmarks.bench_far`)",
        "",
        f"- command(s): {', '.join(f'`{c}`' for c in commands)}",
        "- the round-trip bound: benchmarks/bound.py (per mailbox: the latencies of its",
        "  requests over the requests allowed in flight; server-wide likewise; requests / rate);",
        "  the chain: the largest folder's SyncFolderItems pages, which follow one another",
        "",
    ]
    targets = far_targets(cases)
    if targets:
        lines += ["| target | measured | verdict |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in targets]
        lines.append("")
    order = ["a", "b", "a_small", "b_small"]
    for name in sorted(cases, key=lambda n: (order.index(n) if n in order else len(order), n)):
        lines += far_case(cases[name])
    return lines


def _initial_table(r: dict[str, Any]) -> list[str]:
    i, b = r.get("initial", {}), _get(r, "baseline", "initial") or {}

    def ratio(a: Any, c: Any) -> str:
        return f"{a / c:.2f}" if isinstance(a, int | float) and c else "n/a"

    rows = [
        ("mailboxes", i.get("mailboxes"), _get(r, "baseline", "mailboxes"), None),
        ("items synced", i.get("items_synced"), b.get("items_synced"), None),
        ("wall s", i.get("wall_s"), b.get("wall_s"), None),
        ("items/s", i.get("items_per_s"), b.get("items_per_s"),
         ratio(i.get("items_per_s"), b.get("items_per_s"))),
        ("requests", i.get("requests"), b.get("requests"), None),
        ("requests/s", i.get("requests_per_s"), b.get("requests_per_s"), None),
        ("requests per item", ratio(i.get("requests"), i.get("items_synced")),
         ratio(b.get("requests"), b.get("items_synced")), None),
        ("throttled share", i.get("throttled_share"), b.get("throttled_share"), None),
        ("failed passes", i.get("failed_passes"), None, None),
        ("CPU ms per item", i.get("service_cpu_ms_per_item"), b.get("cpu_ms_per_item"),
         ratio(i.get("service_cpu_ms_per_item"), b.get("cpu_ms_per_item"))),
        ("peak RSS MB", i.get("service_peak_rss_mb"), b.get("peak_rss_mb"), None),
        ("simulator CPU s", i.get("simulator_cpu_s"), None, None),
        ("PostgreSQL CPU s", i.get("postgres_cpu_s"), None, None),
        ("machine CPU ms per item (service + simulator + PostgreSQL)",
         _machine(i.get("machine_cpu_ms_per_item")), None, None),
        ("requests/s against the ceiling's 10-item GetItem/s",
         _share(i.get("requests_per_s"), _get(r, "ceiling", "get_item_10_per_s")), None, None),
    ]  # fmt: skip
    out = ["| initial sync | service | exchangelib baseline | service / baseline |",
           "|---|---|---|---|"]  # fmt: skip
    out += [f"| {k} | {s} | {'' if v is None else v} | {q or ''} |" for k, s, v, q in rows]
    return out


def _idle_table(r: dict[str, Any]) -> list[str]:
    sw = _get(r, "idle", "push_off_sweep") or {}
    on = _get(r, "idle", "push_on_idle") or {}
    lat = _get(r, "idle", "latency") or {}
    mem = _get(r, "idle", "memory") or {}
    bi = _get(r, "baseline", "idle") or {}
    rows = [
        ("idle mailboxes", _get(r, "idle", "mailboxes")),
        ("first express after initial (echo): requests per mailbox",
         _get(r, "idle", "echo_sweep", "requests_per_mailbox")),
        ("first express after initial (echo): by operation",
         _get(r, "idle", "echo_sweep", "requests_by_operation")),
        ("push off: sweep wall s", sw.get("wall_s")),
        ("push off: requests per mailbox", sw.get("requests_per_mailbox")),
        ("push off: requests by operation", sw.get("requests_by_operation")),
        ("push off: service CPU s (ms per mailbox)",
         f"{sw.get('service_cpu_s')} ({sw.get('service_cpu_ms_per_mailbox')})"),
        ("push off: 10,000-mailbox sweep, projected s", sw.get("projected_10000_mailbox_sweep_s")),
        ("push off: PostgreSQL / simulator CPU ms per mailbox",
         f"{sw.get('postgres_cpu_ms_per_mailbox')} / {sw.get('simulator_cpu_ms_per_mailbox')}"),
        ("push off: SyncFolderItems/s against the ceiling's no-change SyncFolderItems/s",
         _share(_rate(sw.get("requests"), sw.get("wall_s")),
                _get(r, "ceiling", "no_change_sync_per_s"))),
        ("baseline idle: requests per mailbox", bi.get("requests_per_mailbox")),
        ("baseline idle: CPU ms per mailbox", bi.get("cpu_ms_per_mailbox")),
        ("push on: idle period s", on.get("idle_period_s")),
        ("push on: polling requests (per mailbox)",
         f"{on.get('polling_requests')} ({on.get('polling_requests_per_mailbox')})"),
        ("push on: streaming requests", on.get("streaming_requests")),
        ("push on: service CPU s while idle", on.get("service_cpu_s")),
        ("latency: changes / window s", f"{lat.get('changes')} / {lat.get('window_s')}"),
        ("latency Outlook -> CRM p50/p95/p99 s", _pcts(lat.get("exchange_to_other_side"))),
        ("latency CRM -> Outlook p50/p95/p99 s", _pcts(lat.get("crm_to_other_side"))),
        ("latency all p50/p95/p99 s (lost)", _pcts(lat.get("all"), lost=True)),
        ("RSS 0 mailboxes MB", _mb(mem.get("rss_0_mailboxes_kb"))),
        ("RSS after push-off sweep MB", _mb(mem.get("rss_push_off_after_sweep_kb"))),
        ("RSS push on MB", _mb(mem.get("rss_push_on_kb"))),
        ("KB per idle mailbox push off / on",
         f"{mem.get('kb_per_idle_mailbox_push_off')} / {mem.get('kb_per_idle_mailbox_push_on')}"),
    ]  # fmt: skip
    return ["| idle, push, latency, memory | measured |", "|---|---|"] + [
        f"| {k} | {v} |" for k, v in rows
    ]


def _machine(d: Any) -> str:
    if not isinstance(d, dict):
        return "n/a"
    parts = [d.get(k) for k in ("service", "simulator", "postgres")]
    numbers = [float(p) for p in parts if isinstance(p, int | float)]
    if len(numbers) != len(parts):
        return "n/a"
    return f"{sum(numbers):.3f} ({' + '.join(str(p) for p in parts)})"


def _rate(count: Any, seconds: Any) -> float | None:
    return round(count / seconds, 1) if count and seconds else None


def _share(value: Any, ceiling: Any) -> str:
    if not value or not ceiling:
        return "n/a"
    return f"{value} of {ceiling} ({100 * value / ceiling:.0f}%)"


def _pcts(d: Any, lost: bool = False) -> str:
    if not isinstance(d, dict):
        return "n/a"
    text = f"{d.get('p50_s')} / {d.get('p95_s')} / {d.get('p99_s')}"
    return text + (f" ({d.get('lost_within_grace')} lost)" if lost else "")


def _mb(kb: Any) -> str:
    return f"{kb / 1024:.1f}" if isinstance(kb, int | float) else "n/a"


def section(r: dict[str, Any]) -> list[str]:
    m = r.get("machine", {})
    c = r.get("ceiling", {})
    lines = [
        f"## Profile `{r.get('profile')}`",
        "",
        f"- machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
        f"Python {m.get('python')}",
        f"- date: {m.get('date')}; commit: {m.get('commit')}",
        f"- command: `{m.get('command')}`; sizes: `{json.dumps(r.get('sizes'))}`",
        f"- ceiling (simulator alone, throttling and validation off): "
        f"{c.get('no_change_sync_per_s')} no-change SyncFolderItems/s, "
        f"{c.get('get_item_10_per_s')} 10-item GetItem/s",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in r["targets"]]
    lines += ["", *_initial_table(r), "", *_idle_table(r), ""]
    lines += [*console_section(r), *replicas_section(r)]
    for case in (_get(r, "far", "cases") or {}).values():
        lines += far_case(case)
    errors = [f"- {k}: {v['error']}" for k, v in r.items() if isinstance(v, dict) and "error" in v]
    return lines + (["Errors:", *errors, ""] if errors else [])


def write_results_md(results: Path, path: Path) -> None:
    kept = ""
    if path.exists() and FINDINGS in path.read_text():
        kept = path.read_text().split(FINDINGS, 1)[1]
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.run` (`make bench`, `make bench-full`) from",
        "`benchmarks/results/*.json`; the service (`python -m sync_service run`), the EWS",
        "simulator and PostgreSQL run as separate processes on this machine; service CPU and",
        "memory come from /proc/<pid>/stat and /proc/<pid>/status of the service process.",
        "",
    ]
    for name in ("full", "quick"):
        file = results / f"{name}.json"
        if file.exists():
            lines += section(json.loads(file.read_text()))
    far = results / "far.json"
    if far.exists():
        lines += far_section(json.loads(far.read_text()))
    path.write_text("\n".join(lines) + "\n" + FINDINGS + (kept or "\n"))
