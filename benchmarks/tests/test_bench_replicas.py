"""The replica benchmark's pure parts: CPU by role, per item, and the scaling ratios."""

from __future__ import annotations

import pytest

from benchmarks.bench_replicas import _engine_counts, cpu_by_role, cpu_ms_per_item, scaling

CPU = {
    "engine-0": 3.0,
    "engine-1": 1.5,
    "dispatcher-0": 0.5,
    "simulator-ews": 1.0,
    "simulator-graph": 2.0,
    "postgres": 4.0,
}


def test_cpu_is_summed_per_role() -> None:
    assert cpu_by_role(CPU) == {
        "engine": 4.5,
        "dispatcher": 0.5,
        "simulator": 3.0,
        "postgres": 4.0,
    }


def test_cpu_per_item_is_milliseconds_of_each_role() -> None:
    per_item = cpu_ms_per_item(CPU, 1500)
    assert per_item["engine"] == 3.0 and per_item["postgres"] == pytest.approx(2.667)
    assert cpu_ms_per_item(CPU, 0)["engine"] is None


def test_scaling_is_relative_to_the_first_run() -> None:
    runs = [
        {"engines": 1, "items_per_s": 50.0},
        {"engines": 2, "items_per_s": 65.0},
        {"engines": 3, "items_per_s": 60.0},
    ]
    assert scaling(runs) == {"1 engines": 1.0, "2 engines": 1.3, "3 engines": 1.2}
    assert scaling([]) == {}


def test_engine_counts_are_checked() -> None:
    assert _engine_counts("1,2,3") == (1, 2, 3)
    with pytest.raises(ValueError, match="counts >= 1"):
        _engine_counts("0,2")
