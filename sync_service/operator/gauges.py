"""The database-backed gauges of /metrics (queue depth, mailboxes by state), refreshed on a timer.

A scrape reads only what is in memory; the database sees one refresh per interval however
often, and by however many clients, /metrics is scraped (it is public by default). A failed
refresh keeps the previous values; `sync_metrics_refreshed_timestamp_seconds` tells how old
they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from sync_service import metrics
from sync_service.operator.operations import Operations

log = logging.getLogger("sync_service.operator.gauges")
Refresh = Callable[[], Awaitable[None]]


class GaugeRefresher:
    """Runs `refresh` now and then every `interval` seconds until stopped.

    `attempts` counts the refreshes tried (each one is the only database work of the
    gauges); `failing` is the length of the current streak of failures.
    """

    def __init__(self, refresh: Refresh, interval: float) -> None:
        self._refresh = refresh
        self.interval = interval
        self.attempts = 0
        self.failing = 0
        self._attempted = asyncio.Condition()

    @classmethod
    def for_pool(cls, pool: asyncpg.Pool, interval: float) -> GaugeRefresher:
        return cls(Operations(pool).refresh_gauges, interval)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh_once()
            try:
                async with asyncio.timeout(self.interval):
                    await stop.wait()
            except TimeoutError:
                pass

    async def refresh_once(self) -> bool:
        """One refresh; False (old values kept) when the database failed."""
        try:
            await self._refresh()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._failed(exc)
            return False
        else:
            self._succeeded()
            return True
        finally:
            async with self._attempted:
                self.attempts += 1
                self._attempted.notify_all()

    async def attempted(self, count: int) -> None:
        """Return once `count` refreshes have been tried since the start."""
        async with self._attempted:
            await self._attempted.wait_for(lambda: self.attempts >= count)

    def _failed(self, exc: BaseException) -> None:
        metrics.METRICS_REFRESHES.labels(outcome="failed").inc()
        self.failing += 1
        if self.failing == 1:  # once per streak: a database that is down for an hour is one line
            log.warning(
                "metrics: gauges not refreshed, serving the last values",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )

    def _succeeded(self) -> None:
        metrics.METRICS_REFRESHES.labels(outcome="ok").inc()
        metrics.METRICS_REFRESHED.set(time.time())
        if self.failing:
            log.info("metrics: gauges refreshed again", extra={"failed_refreshes": self.failing})
        self.failing = 0
