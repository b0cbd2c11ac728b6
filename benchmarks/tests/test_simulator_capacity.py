"""benchmarks/simulator_capacity.py drives a simulator process it starts (it broke unseen
when the simulator's start-up output changed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import stack


def test_the_capacity_run_measures_both_rates(tmp_path: Path) -> None:
    out = tmp_path / "capacity.json"
    script = stack.ROOT / "benchmarks" / "simulator_capacity.py"
    argv = [sys.executable, str(script), "--seconds", "0.3", "--concurrency", "4",
            "--port", str(stack.free_port()), "--out", str(out)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=120, cwd=stack.ROOT)
    figures = json.loads(out.read_text())
    assert figures["no_change_sync_per_s"] > 0
    assert figures["get_item_10_per_s"] > 0
