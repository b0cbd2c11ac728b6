"""promtool on the alerting rules: they load, and their unit tests (alerts_test.yml) pass."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.promtool import ALERT_TESTS, ALERTS, promtool


def alert_names(rules: Path = ALERTS) -> list[str]:
    doc = yaml.safe_load(rules.read_text())
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"]]


def rule_tests() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    return [case for group in doc["tests"] for case in group["alert_rule_test"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_the_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = rule_tests()
    for alert in alert_names():
        outcomes = [bool(c["exp_alerts"]) for c in cases if c["alertname"] == alert]
        assert True in outcomes, f"{alert}: no test where it fires"
        assert False in outcomes, f"{alert}: no test where it stays quiet"
    assert {c["alertname"] for c in cases} == set(alert_names())  # no test of a removed alert


def test_the_unit_tests_catch_a_changed_rule(tmp_path: Path) -> None:
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    text = ALERTS.read_text()
    # Summing the gauge every replica exports would count the disabled mailboxes twice.
    changed = text.replace(
        'max(sync_mailboxes{state="disabled"}) > 0', 'sum(sync_mailboxes{state="disabled"}) > 0'
    )
    assert changed != text
    (tmp_path / ALERTS.name).write_text(changed)
    result = promtool("test", "rules", tmp_path / ALERT_TESTS.name)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    assert "alertname: SyncMailboxesDisabled" in report
    assert '"6 mailbox(es) disabled"' in report  # what the changed rule would say
