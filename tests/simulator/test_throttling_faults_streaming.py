"""Throttling rules, injected faults and streaming notifications, over real HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ews_client.simulator import FaultConfig, LatencyConfig, SimulatorConfig, ThrottlePolicy
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX
from .helpers import Answer, auth, call, envelope, sync_body


async def test_budget_exhaustion_faults_with_backoff_and_counts_early_retries(
    session: aiohttp.ClientSession,
) -> None:
    policy = ThrottlePolicy(burst=3, recharge_per_s=10, backoff_units=2, early_retry_grace_s=0)
    async with running_simulator(SimulatorConfig(throttle=policy)) as sim:
        sim.sim.add_numbered(1)
        answers = [await call(session, sim, sync_body("contacts"), BOX) for _ in range(4)]
        busy = answers[-1]
        assert busy.status == 500 and busy.fault_code == "ErrorServerBusy"
        backoff = int(busy.text('//detail/t:MessageXml/t:Value[@Name="BackOffMilliseconds"]'))
        assert backoff > 0
        again = await call(session, sim, sync_body("contacts"), BOX)
        assert again.fault_code == "ErrorServerBusy"
        assert sim.sim.throttler.early_retries == 1
        await asyncio.sleep(backoff / 1000 + 0.05)
        assert (await call(session, sim, sync_body("contacts"), BOX)).codes == ["NoError"]
        assert sim.sim.invalid_responses == []
        assert sim.sim.invalid_requests == []


async def test_concurrency_limits(session: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(
        throttle=ThrottlePolicy(max_concurrency=3, max_sync_concurrency=2),
        latency=LatencyConfig(base_s=0.3),
    )
    async with running_simulator(config) as sim:
        sim.sim.add_numbered(1)
        syncs = await asyncio.gather(
            *(call(session, sim, sync_body("contacts"), BOX) for _ in range(3))
        )
        per_message = [a for a in syncs if a.codes == ["ErrorServerBusy"]]
        assert len(per_message) == 1 and per_message[0].status == 200
        assert int(per_message[0].text('//m:MessageXml/t:Value[@Name="BackOffMilliseconds"]')) > 0
        await asyncio.sleep(0.4)
        folder = '<t:DistinguishedFolderId Id="contacts"/>'
        body = (
            "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
            f"<m:FolderIds>{folder}</m:FolderIds></m:GetFolder>"
        )
        many = await asyncio.gather(*(call(session, sim, body, BOX) for _ in range(5)))
        faults = [a for a in many if a.fault_code == "ErrorExceededConnectionCount"]
        assert len(faults) == 2 and all(a.status == 500 for a in faults)
        assert sim.sim.invalid_responses == []
        assert sim.sim.invalid_requests == []


async def test_frontend_503_with_retry_after(session: aiohttp.ClientSession) -> None:
    policy = ThrottlePolicy(frontend_max_inflight=0)
    async with running_simulator(SimulatorConfig(throttle=policy)) as sim:
        sim.sim.add_numbered(1)
        answer = await call(session, sim, sync_body("contacts"), BOX)
        assert answer.status == 503 and answer.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "kind", ["soap_fault", "http_503", "reset", "slow", "truncated", "invalid_xml"]
)
async def test_each_fault_kind(kind: str, session: aiohttp.ClientSession) -> None:
    faults = FaultConfig(probabilities={kind: 1.0}, slow_s=0.5)
    async with running_simulator(SimulatorConfig(faults=faults)) as sim:
        sim.sim.add_numbered(1)
        try:
            async with asyncio.timeout(0.25):
                answer: Answer | None = await call(session, sim, sync_body("contacts"), BOX)
        except (aiohttp.ClientError, TimeoutError):
            answer = None
        except Exception as exc:  # lxml: the body is not XML
            assert kind in ("invalid_xml", "truncated"), exc
            answer = None
        expected = {"soap_fault": 500, "http_503": 503}
        if kind in expected:
            assert answer is not None and answer.status == expected[kind]
        else:
            assert answer is None
        assert sim.sim.faults[kind] == 1


async def test_streaming_event_after_owner_edit(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    object.__setattr__(
        sim.sim,
        "config",
        SimulatorConfig(validate_responses=True, stream_minute_s=1.0, heartbeat_s=0.2),
    )
    subscribe = (
        "<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>"
        '<t:DistinguishedFolderId Id="contacts"/>'
        "</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType>"
        "<t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType></t:EventTypes>"
        "</m:StreamingSubscriptionRequest></m:Subscribe>"
    )
    subscribed = await call(session, sim, subscribe, BOX)
    sub_id = subscribed.text("//m:SubscriptionId")
    assert subscribed.codes == ["NoError"], subscribed.text("//faultstring") + str(subscribed.codes)
    body = (
        f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{sub_id}</t:SubscriptionId>"
        "</m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
    )

    async def owner_edit() -> None:
        await asyncio.sleep(0.3)
        await session.post(
            f"{sim.admin_url}/mailboxes/{BOX}/items",
            json={"folder": "contacts", "fields": {"GivenName": "Zed"}},
        )

    headers = auth(sim) | {"X-AnchorMailbox": BOX}
    async with asyncio.TaskGroup() as tg:
        tg.create_task(owner_edit())
        async with session.post(sim.ews_url, data=envelope(body, BOX), headers=headers) as resp:
            raw = (await resp.read()).decode()
    assert raw.count("<s:Envelope") >= 3  # several messages in one HTTP response
    assert "CreatedEvent" in raw and raw.rstrip().endswith("</s:Envelope>")
    assert "<m:ConnectionStatus>Closed</m:ConnectionStatus>" in raw
    unknown = body.replace(sub_id, "bm8tc3VjaC1zdWI=")
    answer = await call(session, sim, unknown, BOX)
    assert answer.codes == ["ErrorSubscriptionNotFound"]
