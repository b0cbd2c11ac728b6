"""A running service as Prometheus sees it: promtool lints its /metrics, and a real Prometheus
(Debian's package) scrapes it, evaluates the alerting rules on what it scraped, and answers a
query for a metric through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
import yaml

from tests.conftest import _create_db, _drop_db, with_database
from tests.deploy.promtool import ALERTS, binary, promtool
from tests.deploy.test_alert_rules import alert_names
from tests.service_process import ServiceProcess, free_port, service_env

JOB = "sync-service"


@pytest.fixture(scope="module")
def service(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One replica with every role, its database-wide gauges refreshed every second."""
    name = f"sync_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_db(pg_admin_url, name, template=template_db))
    env = service_env(
        SYNC_DATABASE_URL=with_database(pg_admin_url, name),
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        SYNC_METRICS_REFRESH="1s",
        SYNC_ENGINE_NAME="scraped",
    )
    proc = ServiceProcess(env, tmp_path_factory.mktemp("service") / "service.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.terminate()
        asyncio.run(_drop_db(pg_admin_url, name))


class Prometheus:
    """`prometheus` on a free port, scraping `target` every second, with the alerting rules."""

    def __init__(self, target: int, workdir: Path) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
            ],
        }
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        check = promtool("check", "config", path)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urlencode(params)}"
        with urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def until(self, what: str, probe: Any, timeout: float = 30.0) -> Any:
        """probe()'s first truthy answer; Prometheus's log in the error otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited"
            try:
                answer = probe()
            except (URLError, OSError):
                answer = None
            if answer:
                return answer
            time.sleep(0.25)
        self.log.flush()
        log = Path(self.log.name).read_text(errors="replace")[-3000:]
        raise AssertionError(f"prometheus: no {what} after {timeout}s\n{log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def prometheus(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    server = Prometheus(service.port, tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()


def test_promtool_lints_the_metrics_endpoint(service: ServiceProcess) -> None:
    status, body = service.get("/metrics")
    assert status == 200
    text = body.decode()
    assert "sync_mailboxes{" in text and "sync_dispatcher_leader " in text
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # not a single lint warning


def test_promtool_lint_would_report_a_badly_named_metric() -> None:
    bad = "# HELP sync_passes Passes run.\n# TYPE sync_passes counter\nsync_passes 3\n"
    result = promtool("check", "metrics", stdin=bad)
    assert result.returncode != 0
    assert "counter metrics should have" in result.stdout + result.stderr


def _series(prometheus: Prometheus, query: str) -> list[dict[str, Any]]:
    data = prometheus.api("query", query=query)
    assert data["resultType"] == "vector"
    return list(data["result"])


def test_prometheus_scrapes_the_service_and_answers_a_query(
    service: ServiceProcess, prometheus: Prometheus
) -> None:
    query = f'sync_metrics_refreshed_timestamp_seconds{{job="{JOB}"}} > 0'
    (sample,) = prometheus.until("refreshed gauge", lambda: _series(prometheus, query))
    assert sample["metric"]["instance"] == f"127.0.0.1:{service.port}"
    refreshed = float(sample["value"][1])
    assert abs(time.time() - refreshed) < 60
    (up,) = _series(prometheus, f'up{{job="{JOB}"}}')
    assert up["value"][1] == "1"
    # The only replica with the dispatcher role leads once it has taken the advisory lock.
    leads = f'sync_dispatcher_leader{{job="{JOB}"}} == 1'
    prometheus.until("dispatcher leader", lambda: _series(prometheus, leads))
    (queued,) = _series(prometheus, f'max(sync_jobs_queued{{job="{JOB}"}})')
    assert queued["value"][1] == "0"


def test_prometheus_evaluates_every_alert_on_the_scraped_metrics(prometheus: Prometheus) -> None:
    leads = f'sync_dispatcher_leader{{job="{JOB}"}} == 1'
    prometheus.until("dispatcher leader", lambda: _series(prometheus, leads))
    seen = datetime.now(UTC)

    def evaluated() -> list[dict[str, Any]]:
        """The alert rules, once each has been evaluated after the leader was scraped."""
        groups = prometheus.api("rules", type="alert")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(_timestamp(rule["lastEvaluation"]) > seen for rule in rules)
        return rules if rules and done else []

    rules = prometheus.until("evaluated alert rules", evaluated)
    assert sorted(rule["name"] for rule in rules) == sorted(alert_names())
    # A healthy replica: every rule evaluates without error and none is pending or firing.
    assert {(r["name"], r["health"], r["state"]) for r in rules} == {
        (name, "ok", "inactive") for name in alert_names()
    }


def _timestamp(text: str) -> datetime:
    """Prometheus's RFC 3339 time (nanoseconds cut to what datetime holds)."""
    stamp = text.rstrip("Z")
    head, _, fraction = stamp.partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")
