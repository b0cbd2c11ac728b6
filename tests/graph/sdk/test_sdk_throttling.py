"""Throttling as Microsoft's SDK meets it: the simulator answers 429 with a whole-second
Retry-After when a mailbox has more requests in flight than Graph allows, and the SDK's own
retry handler waits it out and gets every answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from msgraph import GraphServiceClient

from ews_client.simulator.config import GraphPolicy, LatencyConfig, SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """One request at a time per mailbox, each taking 0.2 s: concurrent calls are throttled."""
    config = SimulatorConfig(
        graph=GraphPolicy(max_concurrency=1, concurrency_retry_after_s=1.0),
        latency=LatencyConfig(base_s=0.2),
    )
    async with running_simulator(config, tls=True) as running:
        running.sim.add_numbered(2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


async def test_the_sdk_waits_out_429s_and_gets_every_answer(
    graph: GraphServiceClient, sim: RunningSimulator
) -> None:
    assert sim.graph is not None
    calls = [graph.users.by_user_id(BOX).contacts.get() for _ in range(4)]
    answers = await asyncio.gather(*calls)
    assert all(a is not None and a.value is not None for a in answers)
    throttled = sum(sim.graph.throttler.throttled.values())
    assert throttled >= 1  # the simulator did refuse some: the SDK retried them
    # Retried only after Retry-After: no request came back before its mailbox's deadline.
    assert sim.graph.throttler.early_retries == 0
