from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ews_client.simulator.testing import RunningSimulator, running_simulator

BOX = "user00001@sim.example"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as running:
        running.sim.add_numbered(2, items_per_folder=2)
        yield running
        # Every response sent during the test validated against the EWS XSD.
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
