"""The service's receiver and SubscriptionManager against the simulator's lifecycle
notifications: reauthorizationRequired -> renewed by PATCH, subscriptionRemoved -> created
again, missed -> an express pass asked for; and reconciliation with `GET /subscriptions`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from ews_client.io.graph import GraphClient
from ews_client.models import EntityKind
from ews_client.simulator.testing import RunningSimulator
from sync_service.dispatcher.graph_notifications import (
    NOTIFICATION_PATH,
    OWNERS,
    Receiver,
    SubscriptionManager,
    add_routes,
)

from .conftest import BOX

STATE = "lifecycle-test-state"


class Service:
    def __init__(self) -> None:
        self.changes: list[tuple[str, EntityKind | None]] = []
        self.receiver: Receiver | None = None
        self.url = ""

    def on_change(self, mailbox: str, entity: EntityKind | None) -> None:
        self.changes.append((mailbox, entity))


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()
    app = web.Application()
    svc.receiver = add_routes(app, svc.on_change, client_state=STATE)  # its own registry
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    svc.url = f"http://127.0.0.1:{runner.addresses[0][1]}{NOTIFICATION_PATH}"
    yield svc
    await runner.cleanup()


async def trigger(sim: RunningSimulator, sub_id: str, event: str) -> None:
    tls = ssl.create_default_context(cafile=sim.ca_file)
    url = f"{sim.url}/_sim/graph/subscriptions/{sub_id}/lifecycle"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"event": event}, ssl=tls) as resp,
    ):
        assert resp.status == 202, await resp.text()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_subscriptions_name_the_lifecycle_url(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url, STATE)
    await manager.ensure(BOX)
    assert sim.graph is not None
    subs = list(sim.graph.notifier.subscriptions.values())
    assert len(subs) == 3 and {s.lifecycle_url for s in subs} == {service.url}
    assert set(OWNERS) >= set(manager.registry.by_id)
    await manager.remove(BOX)
    assert not set(OWNERS) & {s.id for s in subs}


async def test_reauthorization_required_renews(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url, STATE, entities=(EntityKind.CONTACT,))
    await manager.ensure(BOX)
    [sub_id] = manager.registry.by_id
    assert sim.graph is not None
    notifier = sim.graph.notifier
    await trigger(sim, sub_id, "reauthorizationRequired")
    await until(lambda: notifier.counters["renewed"] == 1)
    assert not notifier.subscriptions[sub_id].paused  # delivery resumed
    assert service.receiver is not None and service.receiver.lifecycle["reauthorizationRequired"]
    assert manager.registry.by_id == {sub_id: (BOX, EntityKind.CONTACT)}
    assert service.changes == []  # nothing was lost: no pass needed
    await manager.remove(BOX)


async def test_subscription_removed_is_recreated_and_caught_up(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url, STATE)
    await manager.ensure(BOX)
    old = manager.registry.by_mailbox[BOX][EntityKind.APPOINTMENT].id
    await trigger(sim, old, "subscriptionRemoved")
    await until(lambda: manager.registry.by_mailbox[BOX].get(EntityKind.APPOINTMENT) is not None
                and manager.registry.by_mailbox[BOX][EntityKind.APPOINTMENT].id != old)  # fmt: skip
    assert sim.graph is not None
    assert old not in sim.graph.notifier.subscriptions and old not in OWNERS
    assert len(sim.graph.notifier.subscriptions) == 3 and manager.covered(BOX)
    assert service.changes == [(BOX, EntityKind.APPOINTMENT)]  # an express pass catches up
    await manager.remove(BOX)


async def test_missed_asks_for_an_express_pass(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url, STATE, entities=(EntityKind.CONTACT,))
    await manager.ensure(BOX)
    [sub_id] = manager.registry.by_id
    await trigger(sim, sub_id, "missed")
    await until(lambda: bool(service.changes))
    assert service.changes == [(BOX, EntityKind.CONTACT)]
    assert sim.graph is not None and sim.graph.notifier.counters["renewed"] == 0
    await manager.remove(BOX)


async def test_reconcile_recreates_what_graph_no_longer_lists(
    client: GraphClient, sim: RunningSimulator, service: Service
) -> None:
    manager = SubscriptionManager(client, service.url, STATE)
    await manager.ensure(BOX)
    assert sim.graph is not None
    tasks = manager.registry.by_mailbox[BOX][EntityKind.TASK].id
    del sim.graph.notifier.subscriptions[tasks]  # Graph sends To Do no subscriptionRemoved
    assert manager.covered(BOX)  # the manager cannot know by itself
    assert await manager.reconcile() == 1
    assert manager.registry.by_mailbox[BOX][EntityKind.TASK].id != tasks
    assert len(sim.graph.notifier.subscriptions) == 3
    assert await manager.reconcile() == 0
    await manager.remove(BOX)
