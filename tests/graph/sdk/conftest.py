"""Microsoft's own Graph SDK (msgraph-sdk over kiota and httpx, azure-identity for the token)
pointed at the in-process simulator over TLS, as an application developer would point it at
a tenant: only the authority host, the Graph base URL and the trusted CA differ.

The SDK is imported here and in this folder's tests only: it is large, and the rest of the
suite must not pay for loading it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.graph_request_adapter import options as graph_options
from msgraph_core import GraphClientFactory

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

BOX = "user00001@sim.example"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorConfig(), tls=True) as running:
        running.sim.add_numbered(2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


def credential(sim: RunningSimulator) -> ClientSecretCredential:
    """azure-identity's client-secret flow against the simulator's token endpoint."""
    authority = urlsplit(sim.authority)
    tenant = authority.path.strip("/")
    assert sim.ca_file is not None, "the SDK needs the simulator over TLS"
    return ClientSecretCredential(
        tenant,
        sim.client_id,
        sim.client_secret,
        authority=f"{authority.scheme}://{authority.netloc}",
        # A private authority is not in Microsoft's list of clouds: skip the discovery call.
        disable_instance_discovery=True,
        transport=AioHttpTransport(connection_verify=sim.ca_file),
    )


def http_client(sim: RunningSimulator) -> tuple[httpx.AsyncClient, httpx.AsyncHTTPTransport]:
    """The SDK's own httpx client with its default middleware (retry, redirect, telemetry),
    trusting the simulator's CA and with the simulator's Graph root as its base URL.

    The transport is returned too: the SDK's middleware wrapper does not pass `aclose` on, so
    the caller closes the connection pool itself."""
    assert sim.ca_file is not None
    transport = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=sim.ca_file))
    client = httpx.AsyncClient(transport=transport, base_url=sim.graph_url, timeout=30.0)
    sdk = GraphClientFactory.create_with_default_middleware(client=client, options=graph_options)
    return sdk, transport


@pytest.fixture
async def graph(sim: RunningSimulator) -> AsyncIterator[GraphServiceClient]:
    """An authenticated GraphServiceClient against the simulator."""
    cred = credential(sim)
    host = urlsplit(sim.graph_url).hostname or "127.0.0.1"
    auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
    http, transport = http_client(sim)
    adapter = GraphRequestAdapter(auth, client=http)
    # httpx ends its base URL with a slash, which the URL templates ("{+baseurl}/users") would
    # double: the adapter is given the root as the SDK writes Graph's own.
    adapter.base_url = sim.graph_url
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()
        await transport.aclose()
        await cred.close()
