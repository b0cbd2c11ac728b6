"""`$batch` as Graph answers it, the client's retry of inner 429s, ImmutableId on every request,
and the service's own writes not fetched again from a delta (change keys)."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest

from ews_client.errors import ItemRejectedError
from ews_client.graph import requests as rq
from ews_client.io.graph import GraphClient
from ews_client.models import Contact, EntityKind, ItemRef, Upsert
from ews_client.simulator.config import GraphPolicy, SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX, make_client


def get(i: int | str) -> dict[str, Any]:
    return {"id": str(i), "method": "GET", "url": f"/users/{BOX}/todo/lists",
            "headers": {"Prefer": rq.IMMUTABLE}}  # fmt: skip


async def post_batch(client: GraphClient, requests: list[dict[str, Any]]) -> Any:
    return await client.call(BOX, rq.GraphRequest("POST", "/$batch", {"requests": requests}))


async def test_inner_answers_carry_content_type(client: GraphClient) -> None:
    marker = {"id": "m", "method": "GET", "url": f"/users/{BOX}/extensions/none"}
    answer = await post_batch(client, [get(1), marker])
    by_id = {r["id"]: r for r in answer["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["m"]["status"] == 404
    for res in by_id.values():
        assert res["headers"]["Content-Type"].startswith("application/json")


async def test_duplicate_ids_and_more_than_twenty_are_refused(client: GraphClient) -> None:
    with pytest.raises(ItemRejectedError, match="duplicate request id"):
        await post_batch(client, [get("a"), get("A")])  # ids are compared without case
    with pytest.raises(ItemRejectedError, match="maximum of 20"):
        await post_batch(client, [get(i) for i in range(21)])
    assert len((await post_batch(client, [get(i) for i in range(20)]))["responses"]) == 20


async def test_retry_after_is_whole_seconds_inside_and_outside_a_batch() -> None:
    policy = GraphPolicy(window_requests=2, window_s=0.3)
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as sim:
        sim.sim.add_numbered(1)
        async with make_client(sim) as client:
            answer = await post_batch(client, [get(i) for i in range(4)])
            throttled = [r for r in answer["responses"] if r["status"] == 429]
            assert throttled, answer
            for res in throttled:  # the 0.3 s window still says 1 second, never "0.3"
                assert res["headers"]["Retry-After"] == "1"
                assert res["headers"]["Content-Type"].startswith("application/json")
            token = await client.transport.auth.headers()
            url = f"{sim.graph_url}/users/{BOX}/todo/lists"
            tls = ssl.create_default_context(cafile=sim.ca_file)
            async with (
                aiohttp.ClientSession() as http,
                http.get(url, headers=token, ssl=tls) as resp,
            ):
                assert resp.status == 429
                assert resp.headers["Retry-After"].isdigit()


async def test_inner_429s_retried_after_their_own_retry_after_without_resending() -> None:
    policy = GraphPolicy(window_requests=6, window_s=1.0)
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as sim:
        sim.sim.add_numbered(1, items_per_folder=15)
        graph = sim.graph
        assert graph is not None
        async with make_client(sim) as client:
            result = await client.sync_changes(BOX, EntityKind.CONTACT, None)
        assert sum(isinstance(c, Upsert) for c in result.changes) == 15
        assert graph.throttler.throttled["rate"] >= 1  # some inner requests were refused
        # The simulator's count of admitted requests, by URL: each item was read once.
        fetched = {
            k: n
            for k, n in graph.admitted_urls.items()
            if "/contacts/" in k and not k.endswith("/delta")
        }
        assert len(fetched) == 15 and set(fetched.values()) == {1}, fetched
        assert graph.throttler.early_retries == 0  # every Retry-After was waited out


async def test_every_request_asks_for_immutable_ids(
    client: GraphClient, sim: RunningSimulator
) -> None:
    assert sim.graph is not None
    for entity in EntityKind:
        first = await client.sync_changes(BOX, entity, None)
        await client.sync_changes(BOX, entity, first.sync_state)
    ref = await client.create_item(BOX, Contact(given_name="I", surname="D", crm_id="c-1"))
    await client.find_by_crm_id(BOX, EntityKind.CONTACT, "c-1")
    await client.delete_item(BOX, ref, EntityKind.CONTACT)
    await client.read_marker(BOX)
    await client.subscription_ids()
    assert sim.graph.requests and sim.graph.without_immutable == []
    # The check can fail: a request without the header is recorded.
    token = await client.transport.auth.headers()
    tls = ssl.create_default_context(cafile=sim.ca_file)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.graph_url}/users/{BOX}/todo/lists", headers=token, ssl=tls) as resp,
    ):
        assert resp.status == 200
    assert sim.graph.without_immutable == [f"GET /users/{BOX}/todo/lists"]


async def test_own_writes_are_not_fetched_again(client: GraphClient, sim: RunningSimulator) -> None:
    assert sim.graph is not None
    base = await client.sync_changes(BOX, EntityKind.CONTACT, None)
    made = [
        await client.create_item(BOX, Contact(given_name="K", surname=str(n), crm_id=f"k-{n}"))
        for n in range(3)
    ]
    keys = {r.id: r.change_key for r in made}

    async def known() -> dict[str, str]:
        return keys

    before = sim.graph.throttler.admitted
    result = await client.sync_changes(BOX, EntityKind.CONTACT, base.sync_state, known)
    # The delta listed our three contacts at the change keys our writes returned: one delta
    # request, no $batch, no item GET; they are not reported as changes.
    assert result.changes == ()
    assert sim.graph.throttler.admitted - before == 1
    # An Outlook edit of one of them changes its key: that one (only) is fetched.
    box = sim.sim.mailboxes[BOX]
    stored = box.items[made[0].id.replace("-", "+").replace("_", "/")]
    await _owner_patch(sim, stored.id)
    before = sim.graph.throttler.admitted
    again = await client.sync_changes(BOX, EntityKind.CONTACT, result.sync_state, known)
    assert [c.item.ref.id for c in again.changes if isinstance(c, Upsert) and c.item.ref] == [
        made[0].id
    ]
    assert sim.graph.throttler.admitted - before == 2  # the delta, one inner GET
    assert isinstance(made[0], ItemRef)


async def _owner_patch(sim: RunningSimulator, item_id: str) -> None:
    tls = ssl.create_default_context(cafile=sim.ca_file)
    url = f"{sim.admin_url}/mailboxes/{BOX}/items/{item_id}"
    async with (
        aiohttp.ClientSession() as http,
        http.patch(url, json={"fields": {"JobTitle": "Edited"}}, ssl=tls) as resp,
    ):
        assert resp.status < 300, await resp.text()
