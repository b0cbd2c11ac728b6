"""The Grafana dashboard and the alerting rules: PromQL that promtool accepts, naming only the
metrics and labels the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from sync_service import metrics
from sync_service.db.enums import MailboxState
from sync_service.metrics import REGISTRY
from tests.deploy.promql import Selector, names, tokens
from tests.deploy.promtool import ALERTS, DASHBOARD, promtool

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})
# A Grafana variable stands for a regex of label values; `.*` keeps the query's shape.
GRAFANA_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*\}?")
# Database-wide gauges: every replica exports the same value, so a sum counts it N times.
SHARED = ("sync_mailboxes", "sync_jobs_queued", "sync_jobs_running", "sync_job_oldest")


def exported() -> dict[str, frozenset[str]]:
    """Every series name the service can expose, with its label names (samples or not yet)."""
    series: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():  # the process and platform collectors too
        for suffix in SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = frozenset()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            labels = frozenset(metric._labelnames)
            kind = metric._type
            for suffix in SUFFIXES[kind]:
                series[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def alert_rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule for group in doc["groups"] for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_queries() -> dict[str, str]:
    """{where: PromQL} for every panel target, Grafana variables replaced."""
    queries = {}
    for panel in dashboard()["panels"]:
        for n, target in enumerate(panel.get("targets", [])):
            queries[f"{panel['title']} #{n}"] = GRAFANA_VARIABLE.sub(".*", target["expr"])
    return queries


def rules_file(queries: dict[str, str], into: Path) -> Path:
    """The queries as recording rules: what `promtool check rules` parses and type-checks."""
    rules = [{"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(queries.values())]
    path = into / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path


def problems(expr: str, series: dict[str, frozenset[str]]) -> list[str]:
    """What in `expr` the service does not export: metrics, label names, mailbox states."""
    found = names(expr)
    out: list[str] = []
    labels_in_scope = set(TARGET_LABELS)
    for selector in found.selectors:
        if selector.name not in series:
            out.append(f"no metric {selector.name!r}")
            continue
        known = series[selector.name] | TARGET_LABELS
        labels_in_scope |= known
        out += [
            f"{selector.name} has no label {label!r}"
            for label, _, _ in selector.matchers
            if label not in known
        ]
        out += _state_problems(selector)
    out += [f"grouping by unknown label {g!r}" for g in sorted(found.grouping - labels_in_scope)]
    return out


def _state_problems(selector: Selector) -> list[str]:
    states = {s.value for s in MailboxState}
    out = []
    for label, op, value in selector.matchers:
        if label == "state" and op in ("=", "=~"):
            out += [f"no mailbox state {v!r}" for v in value.split("|") if v not in states]
    return out


def test_the_registry_lists_the_documented_metrics() -> None:
    series = exported()
    assert series["sync_passes_total"] == {"kind", "outcome"}
    assert series["sync_change_lag_seconds_bucket"] == {"entity", "le"}
    assert series["sync_mailboxes"] == {"state"}
    assert "process_cpu_seconds_total" in series


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    result = promtool("check", "rules", rules_file(queries, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_promtool_refuses_a_query_that_does_not_parse(tmp_path: Path) -> None:
    broken = {"ok": "max(sync_jobs_queued)", "bad": "sum(rate(sync_passes_total[5m])"}
    result = promtool("check", "rules", rules_file(broken, tmp_path))
    assert result.returncode != 0
    assert "dashboard:query_1" in result.stdout + result.stderr
    typed = {"range of a gauge": "rate(sync_jobs_queued)"}  # a type error, not syntax
    assert promtool("check", "rules", rules_file(typed, tmp_path)).returncode != 0


def test_dashboard_queries_name_what_the_service_exports() -> None:
    series = exported()
    found = {where: problems(q, series) for where, q in dashboard_queries().items()}
    assert not {where: p for where, p in found.items() if p}


def test_alert_rules_name_what_the_service_exports() -> None:
    series = exported()
    found = {alert: problems(rule["expr"], series) for alert, rule in alert_rules().items()}
    assert not {alert: p for alert, p in found.items() if p}


def test_the_name_check_catches_what_is_not_exported() -> None:
    series = exported()
    assert problems("sum by (kind) (rate(sync_passes_total[5m]))", series) == []
    assert problems("rate(sync_passes_totl[5m])", series) == ["no metric 'sync_passes_totl'"]
    assert problems("max(sync_mailboxes{stat='active'})", series) == [
        "sync_mailboxes has no label 'stat'"
    ]
    assert problems("sum by (entty) (rate(sync_items_written_total[5m]))", series) == [
        "grouping by unknown label 'entty'"
    ]
    assert problems("max(sync_mailboxes{state=~'quarantine|active'})", series) == [
        "no mailbox state 'quarantine'"
    ]
    assert problems("sync_mailboxes_bucket", series) == ["no metric 'sync_mailboxes_bucket'"]
    # a label name inside a string or a duration is not a metric
    assert problems('label_replace(sync_jobs_queued, "x", "$1", "y", "(.*)")', series) == []


def test_the_server_variable_lists_an_exported_label() -> None:
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    call = [t.text for t in tokens(variable["query"])]
    assert call[:2] == ["label_values", "("] and call[3] == "," and call[-1] == ")"
    metric, label = call[2], call[4]
    assert label in exported()[metric]


def test_every_metric_family_is_on_the_dashboard() -> None:
    shown = {s.name for q in dashboard_queries().values() for s in names(q).selectors}
    families = {
        metric._name + SUFFIXES[metric._type][0]
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    assert families - shown == set()


def test_database_gauges_are_not_summed_over_replicas() -> None:
    assert names("sum(sync_mailboxes{state='x'})").summed == ["sync_mailboxes"]
    assert names("sum by (state) (sync_jobs_queued)").summed == ["sync_jobs_queued"]
    assert names("sum(max by (state) (sync_mailboxes))").summed == []
    assert names("sum(rate(sync_passes_total[5m]))").summed == []
    exprs = list(dashboard_queries().values()) + [r["expr"] for r in alert_rules().values()]
    summed = {name for expr in exprs for name in names(expr).summed}
    assert not {name for name in summed if name.startswith(SHARED)}


def test_alert_rules_cover_the_operational_risks() -> None:
    assert ALERTS.read_text().startswith("#")
    rules = alert_rules()
    assert {
        "SyncPassesFailing",
        "SyncMailboxesDisabled",
        "SyncMailboxesQuarantined",
        "SyncQueueStale",
        "SyncThrottlingHigh",
        "SyncNoDispatcherLeader",
        "SyncChangeLagHigh",
        "SyncMetricsStale",
    } <= rules.keys()
    for name, rule in rules.items():
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
    assert "histogram_quantile(0.95" in rules["SyncChangeLagHigh"]["expr"]
