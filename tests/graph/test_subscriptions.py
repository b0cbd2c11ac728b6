"""The simulator's subscriptions as Graph has them: changeType, per-resource lifetimes, list /
get / renew / reauthorize / delete, the 1,000-per-mailbox cap, and lifecycle notifications
(triggered by /_sim/, by an expiry drawing near, and by a delivery that failed)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ews_client.errors import ExchangeError, ItemNotFoundError, ItemRejectedError, MailboxError
from ews_client.graph import requests as rq
from ews_client.graph.wire import fmt_utc
from ews_client.io.graph import GraphClient
from ews_client.simulator.graph.notify import GraphSubscription
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX

STATE = "subscription-test-state"
CONTACTS = f"users/{BOX}/contacts"
EVENTS = f"users/{BOX}/events"


@dataclass
class Endpoint:
    """A subscriber: echoes validation tokens, records what Graph POSTs."""

    url: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)
    status: int = 202
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            return web.Response(text=token, content_type="text/plain")
        if self.status < 300:
            self.notes.extend(json.loads(await request.read())["value"])
            self.arrived.set()
        return web.Response(status=self.status)

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.notes) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.notes


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    app = web.Application()
    app.router.add_post("/hook", ep.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ep.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield ep
    await runner.cleanup()


def body(ep: Endpoint, resource: str = CONTACTS, minutes: float = 60, **extra: Any) -> Any:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"changeType": "created,updated,deleted", "notificationUrl": ep.url,
            "resource": resource, "expirationDateTime": fmt_utc(expires),
            "clientState": STATE, **extra}  # fmt: skip


async def create(client: GraphClient, payload: Any) -> Any:
    return await client.call(BOX, rq.GraphRequest("POST", "/subscriptions", payload))


async def owner_edit(sim: RunningSimulator, method: str, path: str, payload: Any) -> Any:
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, sim.admin_url + path, json=payload, ssl=ctx) as resp,
    ):
        assert resp.status < 300, await resp.text()
        return await resp.json() if resp.content_length != 0 else None


async def trigger(sim: RunningSimulator, sub_id: str, event: str) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    url = f"{sim.url}/_sim/graph/subscriptions/{sub_id}/lifecycle"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"event": event}, ssl=ctx) as resp,
    ):
        return resp.status, await resp.json()


async def new_contact(sim: RunningSimulator) -> str:
    fields = {"GivenName": "N", "Surname": "S"}
    made = await owner_edit(
        sim, "POST", f"/mailboxes/{BOX}/items", {"folder": "contacts", "fields": fields}
    )
    return str(made["id"])


async def test_change_type_is_honoured_and_checked(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    sub = await create(client, body(endpoint, changeType="deleted"))
    assert sub["changeType"] == "deleted"
    item = await new_contact(sim)
    await owner_edit(sim, "PATCH", f"/mailboxes/{BOX}/items/{item}", {"fields": {"JobTitle": "x"}})
    await owner_edit(sim, "DELETE", f"/mailboxes/{BOX}/items/{item}", None)
    [note] = await endpoint.wait(1)
    await asyncio.sleep(0.2)  # nothing else may follow: created and updated were not asked for
    assert [n["changeType"] for n in endpoint.notes] == ["deleted"]
    assert note["subscriptionId"] == sub["id"] and note["clientState"] == STATE
    for wrong in ("created,moved", "", "Created"):
        with pytest.raises(ItemRejectedError, match="changeType"):
            await create(client, body(endpoint, changeType=wrong))


async def test_per_resource_maximum_lifetimes_are_refused_beyond(
    client: GraphClient, endpoint: Endpoint
) -> None:
    list_id = await client.list_id(BOX)
    tasks = f"users/{BOX}/todo/lists/{list_id}/tasks"
    assert await create(client, body(endpoint, CONTACTS, minutes=10_079))
    assert await create(client, body(endpoint, EVENTS, minutes=10_079))
    assert await create(client, body(endpoint, tasks, minutes=4_229))
    cases = ((CONTACTS, 10_081, 10_080), (EVENTS, 10_081, 10_080), (tasks, 4_231, 4_230))
    for resource, minutes, limit in cases:
        with pytest.raises(ItemRejectedError) as caught:
            await create(client, body(endpoint, resource, minutes=minutes))
        assert caught.value.code == "ExtensionError"
        assert f"can only be {limit} minutes in the future" in str(caught.value)
    with pytest.raises(ItemRejectedError, match="in the future"):
        await create(client, body(endpoint, CONTACTS, minutes=-1))


async def test_list_get_renew_reauthorize_delete(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    first = await create(client, body(endpoint))
    second = await create(client, body(endpoint, EVENTS, lifecycleNotificationUrl=endpoint.url))
    assert second["lifecycleNotificationUrl"] == endpoint.url
    assert await client.subscription_ids() == {first["id"], second["id"]}
    got = await client.call(BOX, rq.GraphRequest("GET", f"/subscriptions/{first['id']}"))
    assert got["resource"] == CONTACTS and got["notificationUrl"] == endpoint.url
    later = datetime.now(UTC) + timedelta(days=3)
    renewed = await client.renew(BOX, first["id"], timedelta(days=3))
    assert abs((renewed - later).total_seconds()) < 5
    with pytest.raises(ItemRejectedError):  # a renewal past the lifetime is refused too
        await client.renew(BOX, first["id"], timedelta(days=8))
    reauth = rq.GraphRequest("POST", f"/subscriptions/{second['id']}/reauthorize")
    assert await client.call(BOX, reauth) == {}
    await client.unsubscribe(BOX, first["id"])
    assert await client.subscription_ids() == {second["id"]}
    with pytest.raises(ExchangeError) as caught:
        await client.call(BOX, rq.GraphRequest("GET", f"/subscriptions/{first['id']}"))
    assert caught.value.code == "ResourceNotFound"
    with pytest.raises(ItemNotFoundError):  # gone: the client says so, not "mailbox error"
        await client.renew(BOX, first["id"], timedelta(days=1))


async def test_list_is_paged(client: GraphClient, sim: RunningSimulator) -> None:
    assert sim.graph is not None
    notifier = sim.graph.notifier
    later = datetime.now(UTC) + timedelta(hours=1)
    for n in range(250):  # page size 100: three pages
        sid = f"00000000-0000-4000-8000-{n:012d}"
        notifier.subscriptions[sid] = GraphSubscription(
            sid, BOX, "contacts", CONTACTS, "https://x.example/h", STATE, later
        )
    assert len(await client.subscription_ids()) == 250
    assert sim.graph.requests["GET ^subscriptions$"] == 3


async def test_a_thousand_per_mailbox(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    assert sim.graph is not None
    notifier = sim.graph.notifier
    later = datetime.now(UTC) + timedelta(hours=1)
    for n in range(999):  # as if other applications held them
        sid = f"00000000-0000-4000-9000-{n:012d}"
        notifier.subscriptions[sid] = GraphSubscription(
            sid, BOX, "contacts", CONTACTS, "https://other.example/h", "", later
        )
    await create(client, body(endpoint))  # the 1,000th
    with pytest.raises(MailboxError) as caught:  # 403
        await create(client, body(endpoint))
    assert caught.value.code == "ExtensionError"
    assert "Maximum number of subscriptions has been reached" in str(caught.value)
    other = await client.call(
        "user00002@sim.example",
        rq.GraphRequest("POST", "/subscriptions",
                        body(endpoint, "users/user00002@sim.example/contacts")),
    )  # fmt: skip
    assert other["id"]  # the cap is per mailbox


async def test_lifecycle_events_on_request(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    sub = await create(client, body(endpoint, lifecycleNotificationUrl=endpoint.url))
    plain = await create(client, body(endpoint, EVENTS))
    assert await trigger(sim, sub["id"], "missed") == (202, {"sent": "missed"})
    [missed] = await endpoint.wait(1)
    assert missed["lifecycleEvent"] == "missed" and missed["subscriptionId"] == sub["id"]
    assert "changeType" not in missed and "resource" not in missed
    assert missed["clientState"] == STATE
    # reauthorizationRequired: delivery pauses (changes meanwhile are lost) until a renewal.
    await trigger(sim, sub["id"], "reauthorizationRequired")
    await endpoint.wait(2)
    await new_contact(sim)
    await asyncio.sleep(0.3)
    assert [n.get("lifecycleEvent") for n in endpoint.notes] == [
        "missed",
        "reauthorizationRequired",
    ]
    assert sim.graph is not None and sim.graph.notifier.counters["lost_paused"] == 1
    await client.renew(BOX, sub["id"], timedelta(hours=2))
    await new_contact(sim)
    notes = await endpoint.wait(3)
    assert notes[2]["changeType"] == "created"
    # subscriptionRemoved: the subscription is gone.
    await trigger(sim, sub["id"], "subscriptionRemoved")
    await endpoint.wait(4)
    assert endpoint.notes[3]["lifecycleEvent"] == "subscriptionRemoved"
    assert await client.subscription_ids() == {plain["id"]}
    status, _ = await trigger(sim, plain["id"], "missed")  # no lifecycleNotificationUrl
    assert status == 400


async def test_to_do_gets_no_removed_or_missed(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    list_id = await client.list_id(BOX)
    tasks = f"users/{BOX}/todo/lists/{list_id}/tasks"
    sub = await create(client, body(endpoint, tasks, lifecycleNotificationUrl=endpoint.url))
    for event in ("missed", "subscriptionRemoved"):
        status, answer = await trigger(sim, sub["id"], event)
        assert status == 400 and "To Do" in answer["error"]["message"]
    assert (await trigger(sim, sub["id"], "reauthorizationRequired"))[0] == 202


async def test_expiry_draws_a_reauthorization_then_removes(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    assert sim.graph is not None
    notifier = sim.graph.notifier
    notifier.reauthorize_before = timedelta(minutes=5)
    notifier.sweep_s = 0.05
    sub = await create(client, body(endpoint, minutes=4, lifecycleNotificationUrl=endpoint.url))
    [note] = await endpoint.wait(1)
    assert note["lifecycleEvent"] == "reauthorizationRequired"
    assert note["subscriptionId"] == sub["id"]
    await asyncio.sleep(0.2)
    assert len(endpoint.notes) == 1  # once, not at every sweep
    notifier.subscriptions[sub["id"]].expires = datetime.now(UTC) - timedelta(seconds=1)
    await asyncio.sleep(0.2)
    assert sub["id"] not in notifier.subscriptions and notifier.counters["expired"] == 1


async def test_a_failed_delivery_is_followed_by_missed(
    client: GraphClient, sim: RunningSimulator, endpoint: Endpoint
) -> None:
    sub = await create(client, body(endpoint, lifecycleNotificationUrl=endpoint.url))
    endpoint.status = 503  # the change notification fails
    await new_contact(sim)
    assert sim.graph is not None
    async with asyncio.timeout(5):
        while not sim.graph.notifier.lifecycle_sent:
            await asyncio.sleep(0.02)
    endpoint.status = 202
    assert sim.graph.notifier.lifecycle_sent == [(sub["id"], "missed")]
