"""benchmarks/timeline.py: when each operation ran, from cumulative counters."""

from __future__ import annotations

from benchmarks.timeline import Timeline


def test_extent_and_slices_come_from_the_counter_steps() -> None:
    t = Timeline()
    t.add(0.0, {"SyncFolderItems": 2})  # before the run: not counted
    t.add(1.0, {"SyncFolderItems": 4, "GetItem": 1})
    t.add(2.0, {"SyncFolderItems": 4, "GetItem": 3})
    t.add(4.0, {"SyncFolderItems": 4, "GetItem": 3, "UpdateItem": 5})
    out = t.summary(slices=2)
    assert out["span_s"] == 4.0
    assert out["operations"]["SyncFolderItems"] == {"requests": 2, "first_s": 1.0, "last_s": 1.0}
    assert out["operations"]["GetItem"] == {"requests": 3, "first_s": 1.0, "last_s": 2.0}
    assert out["operations"]["UpdateItem"] == {"requests": 5, "first_s": 4.0, "last_s": 4.0}
    assert [s["requests"] for s in out["slices"]] == [
        {"SyncFolderItems": 2, "GetItem": 3},
        {"UpdateItem": 5},
    ]


def test_a_run_read_once_says_so() -> None:
    t = Timeline()
    t.add(0.0, {})
    assert t.summary() == {"error": "fewer than two samples"}
