"""Figures against the issue's targets, and the tables of benchmarks/RESULTS.md.

RESULTS.md is generated from results/quick.json and results/full.json up to the FINDINGS
marker; everything after the marker (the written analysis and profiles) is kept as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    ]
    # fmt: on


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
    path.write_text("\n".join(lines) + "\n" + FINDINGS + (kept or "\n"))
