"""Replicas as processes, and a watch of their /readyz answers over time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.service_process import ServiceProcess, free_port, service_env


def start_replica(env: dict[str, str], name: str, roles: str, logs: Path) -> ServiceProcess:
    """`sync-service run` with SYNC_ROLES=`roles`, named `name` (its runs' engine)."""
    return ServiceProcess(
        service_env(
            **env,
            SYNC_ROLES=roles,
            SYNC_ENGINE_NAME=name,
            SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        ),
        logs / f"{name}.log",
    )


@dataclass
class ReadyLog:
    """Each replica's /readyz status by monotonic time (0: no answer at all)."""

    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def first(self, name: str, after: float, ready: bool) -> float | None:
        """The first time at or after `after` when `name` was (not) ready."""
        for at, status in self.samples.get(name, []):
            if at >= after and (status == 200) == ready:
                return at
        return None

    def statuses(self, name: str, start: float, end: float) -> set[int]:
        return {s for at, s in self.samples.get(name, []) if start <= at <= end}


async def _poll(
    http: aiohttp.ClientSession, name: str, port: int, log: ReadyLog, every: float
) -> None:
    samples = log.samples.setdefault(name, [])
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            status = 0
        samples.append((time.monotonic(), status))
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def watch_ready(
    replicas: dict[str, ServiceProcess], every: float = 0.1
) -> AsyncIterator[ReadyLog]:
    """Poll every replica's /readyz in the background for the duration of the block."""
    log = ReadyLog()
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = [
            asyncio.create_task(_poll(http, name, r.port, log, every))
            for name, r in replicas.items()
        ]
        try:
            yield log
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def wait_all_ready(replicas: dict[str, ServiceProcess], timeout: float = 90.0) -> None:
    await asyncio.gather(
        *(asyncio.to_thread(r.wait_ready, "/readyz", timeout) for r in replicas.values())
    )


def exited(replicas: dict[str, ServiceProcess]) -> dict[str, str]:
    """The replicas that are no longer running, with the end of their log."""
    return {
        name: "\n".join(r.output().splitlines()[-40:])
        for name, r in replicas.items()
        if r.proc.poll() is not None
    }
