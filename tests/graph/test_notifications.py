"""Change notifications end to end: subscription with the validation handshake, an owner
edit in the simulator, the service's receiver, the callback, within 5 seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from ews_client.errors import ItemRejectedError
from ews_client.io.graph import GraphClient
from ews_client.models import EntityKind
from ews_client.simulator.testing import RunningSimulator
from sync_service.dispatcher.graph_notifications import (
    NOTIFICATION_PATH,
    Receiver,
    SubscriptionManager,
    add_routes,
)

from .conftest import BOX

STATE = "s3cret-client-state"


class Service:
    def __init__(self) -> None:
        self.changes: list[tuple[str, EntityKind | None]] = []
        self.arrived = asyncio.Event()
        self.receiver: Receiver | None = None
        self.url = ""

    def on_change(self, mailbox: str, entity: EntityKind | None) -> None:
        self.changes.append((mailbox, entity))  # only records: the job queue does the work
        self.arrived.set()


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()
    app = web.Application()
    svc.receiver = add_routes(app, svc.on_change, client_state=STATE)
    app.router.add_post("/mute", _mute)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    svc.url = f"http://127.0.0.1:{port}"
    yield svc
    await runner.cleanup()


async def _mute(request: web.Request) -> web.Response:
    return web.Response(text="not the token")


async def test_owner_edit_reaches_the_receiver(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url + NOTIFICATION_PATH, STATE)
    await manager.ensure(BOX)
    assert manager.covered(BOX)
    assert sim.graph is not None and len(sim.graph.notifier.subscriptions) == 3
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        body = {"folder": "contacts", "fields": {"GivenName": "Edited", "Surname": "InOutlook"}}
        url = f"{sim.admin_url}/mailboxes/{BOX}/items"
        async with http.post(url, json=body, ssl=_ssl(sim)) as resp:
            assert resp.status == 201
    await asyncio.wait_for(service.arrived.wait(), timeout=5)
    assert time.monotonic() - started < 5
    assert service.changes == [(BOX, EntityKind.CONTACT)]
    # Renewal before expiry, then removal with the mailbox.
    renewing = SubscriptionManager(
        client,
        service.url + NOTIFICATION_PATH,
        STATE,
        registry=manager.registry,
        renew_before=timedelta(days=3),
    )
    await renewing.ensure(BOX)
    assert sim.graph.notifier.counters["renewed"] == 3
    await renewing.remove(BOX)
    assert sim.graph.notifier.subscriptions == {} and not renewing.covered(BOX)


def _ssl(sim: RunningSimulator) -> object:
    import ssl

    return ssl.create_default_context(cafile=sim.ca_file)


async def test_handshake_and_client_state(client: GraphClient, service: Service) -> None:
    with pytest.raises(ItemRejectedError):  # the endpoint does not echo the token
        await client.subscribe(BOX, EntityKind.CONTACT, service.url + "/mute", STATE)
    forged = {
        "value": [
            {"subscriptionId": "x", "clientState": "wrong", "resource": f"users/{BOX}/contacts/AAA"}
        ]
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(service.url + NOTIFICATION_PATH, json=forged) as resp:
            assert resp.status == 202
        async with http.post(
            service.url + NOTIFICATION_PATH + "?validationToken=a%20b%2Bc"
        ) as resp:
            assert resp.status == 200 and await resp.text() == "a b+c"
            assert resp.content_type == "text/plain"
    assert service.changes == [] and service.receiver is not None
    assert service.receiver.rejected == 1


async def test_lifecycle_removal_uncovers_the_mailbox(
    client: GraphClient, service: Service
) -> None:
    manager = SubscriptionManager(
        client, service.url + NOTIFICATION_PATH, STATE, entities=(EntityKind.CONTACT,)
    )
    receiver = Receiver(service.on_change, STATE, manager.registry)
    await manager.ensure(BOX)
    [sub_id] = manager.registry.by_id
    app = web.Application()
    app.router.add_post("/n", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    note = {
        "value": [
            {
                "subscriptionId": sub_id,
                "clientState": STATE,
                "lifecycleEvent": "subscriptionRemoved",
                "resource": "",
            }
        ]
    }
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/n"
            async with http.post(url, json=note) as resp:
                assert resp.status == 202
    finally:
        await runner.cleanup()
    assert service.changes == [(BOX, EntityKind.CONTACT)]
    assert not manager.covered(BOX)
    await manager.ensure(BOX)  # re-created
    assert manager.covered(BOX) and sub_id not in manager.registry.by_id
