"""The body of /metrics: shared by the scrapes of one short moment, one scrape per loop turn.

/metrics is public by default, so anyone who reaches the port can send scrapes by the
thousand. Two rules keep a flood from starving the other requests and loops of the process
(benchmarks/bench_metrics_scrape.py, 1,500 scrapes in flight):
- one scrape is answered per turn of the event loop. The scrape holds a slot across one yield,
  so the others wait parked, and every other task gets its steps between two scrapes. Without
  it 300 scrapes are rendered back to back in each turn and an operator request, which needs a
  turn per database round trip, took 2.6 s;
- the rendering is shared for `max_age` seconds. With 1,500 connections open it costs about
  1 ms, most of it the process collector counting file descriptors; shared, a scrape costs
  little more than its HTTP handling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

from sync_service import metrics

MAX_AGE = 1.0  # seconds; Prometheus scrapes every 15 s or more, a second changes nothing there


class Exposition:
    """`body()` is the text exposition of `registry`, at most `max_age` seconds old."""

    def __init__(
        self,
        registry: CollectorRegistry,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self.max_age = max_age
        self._clock = clock
        self._slot = asyncio.Semaphore(1)
        self._body = b""
        self._rendered_at: float | None = None
        self.renderings = 0

    @classmethod
    def of_service(cls, refresh_interval: float | None) -> Exposition:
        """The service's metrics; never older than the gauges' refresh interval, so that a
        refresh shows by the next one even when the interval is under a second."""
        return cls(metrics.REGISTRY, min(MAX_AGE, refresh_interval or MAX_AGE))

    async def body(self) -> bytes:
        async with self._slot:
            now = self._clock()
            if self._rendered_at is None or now - self._rendered_at >= self.max_age:
                self._body = generate_latest(self._registry)
                self._rendered_at = now
                self.renderings += 1
            body = self._body
            await asyncio.sleep(0)  # keep the slot for this turn of the loop (see above)
        return body
