"""The calendar window moves forward with time; an expired token is refused and renewed."""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from ews_client.errors import AuthError
from ews_client.io.auth import OAuthClientCredentials
from ews_client.io.graph import GraphClient
from ews_client.models import Appointment, EntityKind, Upsert
from ews_client.simulator.config import GraphPolicy, SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX, GRAPH_SCOPE, make_client


async def test_window_moves_forward(sim: RunningSimulator) -> None:
    now = [datetime.now(UTC).replace(microsecond=0)]
    async with make_client(sim, clock=lambda: now[0]) as client:
        first = await client.sync_changes(BOX, EntityKind.APPOINTMENT, None)
        far = now[0] + timedelta(days=380)  # beyond today's 365-day window
        event = Appointment(subject="Far", start=far, end=far + timedelta(hours=1))
        await client.create_item(BOX, event)
        same = await client.sync_changes(BOX, EntityKind.APPOINTMENT, first.sync_state)
        assert same.changes == ()
        assert json.loads(same.sync_state)["start"] == json.loads(first.sync_state)["start"]
        now[0] += timedelta(days=20)  # the window has fallen behind: a fresh delta
        moved = await client.sync_changes(BOX, EntityKind.APPOINTMENT, same.sync_state)
        assert not moved.restarted
        assert [c.item.subject for c in moved.changes if isinstance(c, Upsert)] == ["Far"]
        assert json.loads(moved.sync_state)["start"] != json.loads(same.sync_state)["start"]


async def test_refused_token_is_renewed_once() -> None:
    config = SimulatorConfig(graph=GraphPolicy(token_lifetime_s=1))
    async with running_simulator(config, tls=True) as sim:
        sim.sim.add_numbered(1)
        auth = OAuthClientCredentials(
            authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
            scope=GRAPH_SCOPE, ca_file=sim.ca_file, refresh_margin_s=0.0, clock=lambda: 0.0,
        )  # fmt: skip
        async with GraphClient(sim.graph_url, auth, ca_file=sim.ca_file) as client:
            await client.list_id(BOX)
            await asyncio.sleep(1.2)  # the server now refuses the cached token (401)
            assert await client.read_marker(BOX) is None
        assert auth.acquisitions == 2


async def test_wrong_secret_is_an_auth_error(sim: RunningSimulator) -> None:
    auth = OAuthClientCredentials(
        authority=sim.authority, client_id=sim.client_id, client_secret="wrong",
        scope=GRAPH_SCOPE, ca_file=sim.ca_file,
    )  # fmt: skip
    async with GraphClient(sim.graph_url, auth, ca_file=sim.ca_file) as client:
        with pytest.raises(AuthError) as refused:
            await client.read_marker(BOX)
    assert refused.value.code == "invalid_client"


async def test_counters_endpoint(sim: RunningSimulator, client: GraphClient) -> None:
    await client.list_id(BOX)
    async with aiohttp.ClientSession() as http:
        ctx = ssl.create_default_context(cafile=sim.ca_file)
        async with http.get(f"{sim.admin_url}/graph/counters", ssl=ctx) as resp:
            counters = await resp.json()
    assert counters["admitted"] == 1 and counters["early_retries"] == 0
