"""promtool (Debian's prometheus package, installed by tests/system/install.sh) for the tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.deploy.manifests import REPO

MONITORING = REPO / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERT_TESTS = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"


def binary(name: str) -> str:
    """The path of promtool or prometheus; a missing one fails the test, naming the fix."""
    found = shutil.which(name)
    assert found, f"{name} not found: run tests/system/install.sh as root (Debian: prometheus)"
    return found


def promtool(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
