from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ews_client.io.auth import OAuthClientCredentials
from ews_client.io.graph import GraphClient
from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

BOX = "user00001@sim.example"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def credentials(sim: RunningSimulator) -> OAuthClientCredentials:
    """Real msal, over TLS, against the simulator's token endpoint."""
    return OAuthClientCredentials(
        authority=sim.authority,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        scope=GRAPH_SCOPE,
        ca_file=sim.ca_file,
    )


def make_client(sim: RunningSimulator, **kwargs: object) -> GraphClient:
    return GraphClient(sim.graph_url, credentials(sim), ca_file=sim.ca_file, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorConfig(), tls=True) as running:
        running.sim.add_numbered(2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[GraphClient]:
    async with make_client(sim) as c:
        yield c
