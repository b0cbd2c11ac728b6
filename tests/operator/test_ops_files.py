"""The Grafana dashboard and the alerting rules use only metrics the service defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sync_service.metrics import REGISTRY

OPS = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
METRIC = re.compile(r"\bsync_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the registry can expose, whether or not it has samples yet."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def rule_expressions(text: str) -> dict[str, str]:
    """{alert: expr} from the rules file (each rule's expr is on one line)."""
    rules: dict[str, str] = {}
    alert = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            alert = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("expr:"):
            assert alert is not None and alert not in rules, line
            rules[alert] = stripped.split(":", 1)[1].strip()
    return rules


def dashboard_expressions() -> list[str]:
    doc = json.loads((OPS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]
    exprs += [v["query"] for v in doc["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_the_registry_lists_the_documented_metrics() -> None:
    names = exported_names()
    for name in ("sync_passes_total", "sync_change_lag_seconds_bucket", "sync_mailboxes"):
        assert name in names


def test_alert_rules_cover_the_operational_risks_with_known_metrics() -> None:
    text = (OPS / "alerts.yml").read_text()
    assert "\t" not in text and text.startswith("#")
    rules = rule_expressions(text)
    assert {
        "SyncPassesFailing",
        "SyncMailboxesDisabled",
        "SyncMailboxesQuarantined",
        "SyncQueueStale",
        "SyncThrottlingHigh",
        "SyncNoDispatcherLeader",
        "SyncChangeLagHigh",
    } <= rules.keys()
    assert text.count("for: ") == len(rules) and text.count("severity: ") == len(rules)
    assert "histogram_quantile(0.95" in rules["SyncChangeLagHigh"]
    unknown = {m for expr in rules.values() for m in METRIC.findall(expr)} - exported_names()
    assert not unknown, unknown


def test_dashboard_panels_use_known_metrics() -> None:
    exprs = dashboard_expressions()
    assert len(exprs) >= 15
    used = {m for expr in exprs for m in METRIC.findall(expr)}
    assert not used - exported_names(), used - exported_names()
    # every metric family of the service is on the dashboard
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("sync_")}
    shown = {name for name in families if any(name in expr for expr in exprs)}
    assert shown == families, families - shown


def _summed(expr: str) -> list[str]:
    return [
        m.group(1) for m in re.finditer(r"\bsum(?:\s*by\s*\([^)]*\))?\s*\((sync_[a-z_]+)", expr)
    ]


def test_database_gauges_are_not_summed_over_replicas() -> None:
    """Every replica exports the same database-wide gauges: a sum would count them N times."""
    shared = ("sync_mailboxes", "sync_jobs_queued", "sync_jobs_running", "sync_job_oldest")
    exprs = dashboard_expressions() + list(
        rule_expressions((OPS / "alerts.yml").read_text()).values()
    )
    assert _summed("sum(sync_mailboxes{state='x'})") == ["sync_mailboxes"]
    assert _summed("sum by (state) (sync_jobs_queued)") == ["sync_jobs_queued"]
    assert _summed("sum(rate(sync_passes_total[5m]))") == []
    for expr in exprs:
        for name in _summed(expr):
            assert not name.startswith(shared), expr


def test_the_checks_would_catch_a_misspelt_metric() -> None:
    assert "sync_passes_totl" not in exported_names()
    assert "sync_mailboxes_bucket" not in exported_names()
