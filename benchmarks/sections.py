"""RESULTS.md sections of the console and replica benchmarks (benchmarks/report.py calls them).

Console: benchmarks/bench_console.py, every page under 200 ms server time with 10,000
mailboxes (issue 19). Replicas: benchmarks/bench_replicas.py, one, two and three engines, the
multi-replica scenario and the database restart and outage (issue 21).
"""

from __future__ import annotations

from typing import Any

CONSOLE_MAILBOXES = 10_000  # issue 19's size: the target is judged at it only
# The order of the process kinds in the CPU columns; kinds not named here come after.
ROLES = ("engine", "dispatcher", "simulator", "postgres")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _machine_line(m: dict[str, Any]) -> str:
    return (
        f"- machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
        f"Python {m.get('python')}; date {m.get('date')}; commit {m.get('commit')}; "
        f"load average {m.get('load_average')}"
    )


def console_ok(c: dict[str, Any]) -> bool | None:
    """Every page answered 200 with its p95 under the limit, at issue 19's size; None if the
    benchmark did not run (or failed, or ran at another size)."""
    pages = c.get("pages")
    if not pages or _dict(c.get("data_set")).get("mailboxes") != CONSOLE_MAILBOXES:
        return None
    limit = float(c.get("limit_ms") or 200.0)
    return all(p.get("status") == 200 and float(p["p95_ms"]) < limit for p in pages)


def console_targets(r: dict[str, Any]) -> list[dict[str, str]]:
    """The console's row of the targets table: the slowest page's p95."""
    c = _dict(r.get("console"))
    if not c:
        return []
    p95s = [float(p["p95_ms"]) for p in c.get("pages") or []]
    measured = f"{max(p95s):.1f} ms (slowest page p95)" if p95s else "n/a"
    target = f"console: every page p95 < {c.get('limit_ms', 200.0):g} ms, 10,000 mailboxes"
    return [{"target": target, "measured": measured, "verdict": _verdict(console_ok(c))}]


def console_section(r: dict[str, Any]) -> list[str]:
    """results/<profile>.json's "console": one row per page, the target and its verdict."""
    c = _dict(r.get("console"))
    if not c:
        return []
    head = [
        f"### Console pages (`python -m benchmarks.bench_console`), profile `{r.get('profile')}`",
        "",
    ]
    if "error" in c:
        return [*head, f"- failed: {c['error']}", ""]
    data = _dict(c.get("data_set"))
    limit = float(c.get("limit_ms") or 200.0)
    lines = [
        *head,
        f"- data set: {data.get('mailboxes')} mailboxes, {c.get('runs')} runs, "
        f"{data.get('item_errors')} item errors, {data.get('audit_rows')} audit rows, "
        f"{data.get('queued_jobs')} queued jobs (seeded in {c.get('seed_s')} s)",
        f"- {c.get('repeat')} requests per page, one after another, after one warm-up; a "
        "request's time is from sending it to its last byte over loopback (an upper bound "
        "of the server time)",
        _machine_line(_dict(c.get("machine"))),
        f"- target: every page's p95 under {limit:g} ms with 10,000 mailboxes: "
        f"**{_verdict(console_ok(c))}**",
        "",
        f"| page | status | p50 ms | p95 ms | max ms | bytes | p95 < {limit:g} ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in c.get("pages") or []:
        under = p.get("status") == 200 and float(p["p95_ms"]) < limit
        lines.append(
            f"| `{p.get('page')}` | {p.get('status')} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} "
            f"| {p['max_ms']:.1f} | {p.get('bytes')} | {'yes' if under else 'NO'} |"
        )
    return [*lines, ""]


def _roles(runs: list[dict[str, Any]]) -> list[str]:
    seen = {role for run in runs for role in _dict(run.get("cpu_ms_per_item"))}
    return [r for r in ROLES if r in seen] + sorted(seen - set(ROLES))


def _cell(value: Any) -> str:
    return "n/a" if value is None else str(value)


def engines_table(rep: dict[str, Any]) -> list[str]:
    """One row per engine count: items/s, its ratio to the fewest engines, CPU ms per item."""
    runs = [run for run in rep.get("by_engines") or [] if isinstance(run, dict)]
    if not runs:
        return []
    roles = _roles(runs)
    ratios = _dict(rep.get("items_per_s_over_fewest_engines"))
    lines = [
        "| engines | items | initial s | items/s | over the fewest engines | "
        + " | ".join(f"{role} CPU ms per item" for role in roles)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(roles),
    ]
    for run in runs:
        cpu = _dict(run.get("cpu_ms_per_item"))
        cells = [
            run.get("engines"),
            run.get("items"),
            run.get("initial_s"),
            run.get("items_per_s"),
            ratios.get(f"{run.get('engines')} engines"),
            *(cpu.get(role) for role in roles),
        ]
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    return lines


def _timings(values: Any) -> str:
    if not isinstance(values, dict) or not values:
        return "n/a"
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in values.items())


def scenario_rows(s: dict[str, Any]) -> list[str]:
    """The multi-replica scenario (kills, edits): its figures, or the check that failed."""
    if not s:
        return []
    if "error" in s:
        return [f"- multi-replica scenario: {s['error']}"]
    return [
        f"- multi-replica scenario ({s.get('mailboxes')} mailboxes, {s.get('engines')} engines, "
        f"two dispatchers; killed {', '.join(s.get('killed') or []) or 'none'}): initial "
        f"{s.get('items')} items in {s.get('initial_s')} s ({s.get('items_per_s')} items/s); "
        f"edits synced in {s.get('edits_s')} s; leader takeover {s.get('takeover_s')} s; "
        f"runs {s.get('outcomes')}"
    ]


def database_rows(d: dict[str, Any]) -> list[str]:
    """The database restart and outage: how long /readyz took to turn and what was retried."""
    if not d:
        return []
    if "error" in d:
        return [f"- database scenarios: {d['error']}"]
    lines = []
    for what, label in (("restart", "database restarted"), ("unreachable", "unreachable")):
        f = _dict(d.get(what))
        if f:
            lines.append(
                f"- {label}: down {f.get('down_s')} s; /readyz false after "
                f"{_timings(f.get('not_ready_after_s'))}; true again after "
                f"{_timings(f.get('ready_again_after_s'))} once it was back; "
                f"{f.get('cut_off_passes')} passes in flight, {f.get('transient_runs')} runs "
                f"transient, {f.get('retried_ok')} mailboxes retried to ok; "
                f"runs {f.get('outcomes')}"
            )
    return lines


def replicas_section(r: dict[str, Any]) -> list[str]:
    """results/<profile>.json's "replicas": the engines table, the scenario, the outage."""
    rep = _dict(r.get("replicas"))
    if not rep:
        return []
    head = [
        f"### Replicas (`python -m benchmarks.bench_replicas`), profile `{r.get('profile')}`",
        "",
    ]
    if "error" in rep:
        return [*head, f"- failed: {rep['error']}", ""]
    cfg = _dict(rep.get("config"))
    lines = [
        *head,
        f"- {cfg.get('mailboxes')} mailboxes on an EWS and a Graph simulator, "
        f"{cfg.get('latency')} ms latency; one `api,dispatcher` replica and N `engine` "
        "replicas, separate processes, on a private PostgreSQL; CPU from /proc over the "
        "initial sync, per process kind",
        _machine_line(_dict(rep.get("machine"))),
        "",
        *engines_table(rep),
        "",
    ]
    extra = scenario_rows(_dict(rep.get("scenario"))) + database_rows(_dict(rep.get("database")))
    return lines + ([*extra, ""] if extra else [])
