"""py-spy attached to the running service: a flame graph (SVG) plus a top-N summary for JSON.

`attach(pid, prefix)` starts `py-spy record` on the process; `finish` stops it (SIGINT makes
py-spy write its output) and summarizes the collapsed stacks: the functions with the largest
share of samples, inclusive (anywhere on the stack) and exclusive (on top of the stack).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOP = 25


@dataclass(frozen=True, slots=True)
class Spy:
    popen: subprocess.Popen[bytes]
    raw: Path
    svg: Path


def _py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def attach(pid: int, prefix: str, rate: int = 50) -> Spy | None:
    exe = _py_spy()
    if exe is None:
        return None
    raw, svg = Path(f"{prefix}.txt"), Path(f"{prefix}.svg")
    raw.parent.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
            "--output", str(raw), "--nonblocking"]  # fmt: skip
    popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Spy(popen, raw, svg)


def finish(spy: Spy) -> dict[str, Any] | None:
    spy.popen.send_signal(signal.SIGINT)
    try:
        spy.popen.wait(30)
    except subprocess.TimeoutExpired:
        spy.popen.kill()
        spy.popen.wait(5)
    if not spy.raw.exists():
        return None
    return summarize(spy.raw)


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module path)"; line numbers dropped so
    # that one function counts once.
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarize(raw: Path, top: int = TOP) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        exclusive[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "raw_stacks": str(raw),
        "top_inclusive_pct": {k: share(v) for k, v in inclusive.most_common(top)},
        "top_self_pct": {k: share(v) for k, v in exclusive.most_common(top)},
    }
