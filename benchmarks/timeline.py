"""When each kind of request ran during a benchmark: the simulator's per-operation request
counters (`/_sim/counters`), read every half second while the run goes on.

The summary gives, per operation, its requests and the seconds (from the start of the run)
of its first and last request, and the requests per operation in each slice of the run: the
profile that shows which phase of a pass the wall time goes to, as Exchange saw it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

POLL_S = 0.5


@dataclass(slots=True)
class Timeline:
    """Cumulative requests per operation at moments of the run (seconds since its start)."""

    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def add(self, at_s: float, requests: Mapping[str, int]) -> None:
        self.samples.append((at_s, dict(requests)))

    def summary(self, slices: int = 10) -> dict[str, Any]:
        """Per operation: requests, first and last second; and requests per slice of time."""
        if len(self.samples) < 2:
            return {"error": "fewer than two samples"}
        start = self.samples[0][1]
        ops = sorted({op for _, r in self.samples for op in r})
        span = self.samples[-1][0]
        per_op = {op: _extent(self.samples, op, start.get(op, 0)) for op in ops}
        width = span / slices if span > 0 else 1.0
        rows = []
        for i in range(slices):
            lo, hi = _at(self.samples, i * width), _at(self.samples, (i + 1) * width)
            counts = {op: hi.get(op, 0) - lo.get(op, 0) for op in ops}
            rows.append({"from_s": round(i * width, 1), "to_s": round((i + 1) * width, 1),
                         "requests": {op: n for op, n in counts.items() if n}})  # fmt: skip
        return {"span_s": round(span, 1), "operations": per_op, "slices": rows}


def _extent(samples: Sequence[tuple[float, dict[str, int]]], op: str, base: int) -> dict[str, Any]:
    first = last = None
    previous = base
    for at, requests in samples:
        now = requests.get(op, 0)
        if now > previous:
            first = at if first is None else first
            last = at
        previous = now
    return {
        "requests": previous - base,
        "first_s": None if first is None else round(first, 1),
        "last_s": None if last is None else round(last, 1),
    }


def _at(samples: Sequence[tuple[float, dict[str, int]]], moment: float) -> dict[str, int]:
    """The counters as last read at or before `moment`."""
    chosen = samples[0][1]
    for at, requests in samples:
        if at > moment:
            break
        chosen = requests
    return chosen


@asynccontextmanager
async def recording(base_url: str) -> AsyncIterator[Timeline]:
    """Poll the simulator's counters until the block ends (one last read at the end)."""
    timeline = Timeline()
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:

        async def read() -> None:
            async with http.get(f"{base_url}/_sim/counters") as resp:
                body = await resp.json()
            timeline.add(time.monotonic() - started, body.get("requests", {}))

        async def poll() -> None:
            while True:
                await read()
                await asyncio.sleep(POLL_S)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(poll())
            try:
                yield timeline
            finally:
                task.cancel()
        await read()
