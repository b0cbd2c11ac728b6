"""429 handling: inner $batch 429s, top-level 429s, many mailboxes at once; delta expiry."""

from __future__ import annotations

import asyncio
import time

import pytest

from ews_client.errors import InvalidSyncStateError
from ews_client.graph import requests as rq
from ews_client.models import EntityKind, Removal, Upsert
from ews_client.simulator.config import GraphPolicy, LatencyConfig, SimulatorConfig
from ews_client.simulator.testing import running_simulator

from .conftest import BOX, make_client


async def test_batch_inner_429_retried_without_resending_successes() -> None:
    policy = GraphPolicy(window_requests=5, window_s=1.0)
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as sim:
        sim.sim.add_numbered(1, items_per_folder=12)
        assert sim.graph is not None
        async with make_client(sim) as client:
            started = time.monotonic()
            result = await client.sync_changes(BOX, EntityKind.CONTACT, None)
            elapsed = time.monotonic() - started
        graph = sim.graph
        assert sum(isinstance(c, Upsert) for c in result.changes) == 12
        assert graph.throttler.throttled["rate"] >= 1  # some inner requests were 429s
        # 1 delta + 12 item GETs admitted: no inner request that succeeded was sent again.
        assert graph.throttler.admitted == 13
        assert graph.throttler.early_retries == 0
        assert elapsed >= 2.0  # 13 requests at 5 per second: the Retry-Afters were honoured


async def test_top_level_429_on_concurrency() -> None:
    policy = GraphPolicy(max_concurrency=1, concurrency_retry_after_s=0.2)
    config = SimulatorConfig(graph=policy, latency=LatencyConfig(base_s=0.05))
    async with running_simulator(config, tls=True) as sim:
        sim.sim.add_numbered(1)
        assert sim.graph is not None
        async with make_client(sim) as client:
            await client.list_id(BOX)  # the token and the list, before the burst
            reqs = [rq.marker_get(BOX) for _ in range(4)]
            got = await asyncio.gather(
                *(client.call(BOX, r, idempotent=True) for r in reqs),
                return_exceptions=True,
            )
        # The marker does not exist: every call ends in a 404, none in a 429.
        assert all(type(g).__name__ == "ItemNotFoundError" for g in got)
        assert sim.graph.throttler.throttled["concurrency"] >= 1
        assert sim.graph.throttler.early_retries == 0


async def test_200_mailboxes_at_once() -> None:
    async with running_simulator(SimulatorConfig(), tls=True) as sim:
        boxes = sim.sim.add_numbered(200, items_per_folder=1)
        assert sim.graph is not None
        async with make_client(sim) as client:

            async def one(box: str) -> int:
                count = 0
                for entity in (EntityKind.CONTACT, EntityKind.TASK, EntityKind.APPOINTMENT):
                    result = await client.sync_changes(box, entity, None)
                    count += len(result.changes)
                # The seeded event lies before the delta window, but a first read lists the
                # whole calendar (/calendar/events): one contact, one task, one event.
                return count

            counts = await asyncio.gather(*(one(b) for b in boxes))
        assert counts == [3] * 200
        assert sim.graph.throttler.early_retries == 0
        assert sum(sim.graph.throttler.throttled.values()) == 0


async def test_delta_expiry_after_restore_and_age() -> None:
    policy = GraphPolicy(delta_max_age_s=1.0)
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as sim:
        sim.sim.add_numbered(1, items_per_folder=2)
        box = sim.sim.mailboxes[BOX]
        async with make_client(sim) as client:
            first = await client.sync_changes(BOX, EntityKind.CONTACT, None)
            snap = box.snapshot()
            [victim] = list(box.folder("contacts").items)[:1]
            box.remove(box.items[victim])
            second = await client.sync_changes(BOX, EntityKind.CONTACT, first.sync_state)
            assert second.changes == (Removal(victim.replace("+", "-").replace("/", "_")),)
            box.restore(snap)  # a restore from backup: every delta token dies
            with pytest.raises(InvalidSyncStateError):
                await client.call(BOX, rq.follow(second.sync_state, EntityKind.CONTACT))
            third = await client.sync_changes(BOX, EntityKind.CONTACT, second.sync_state)
            assert third.restarted and len(third.changes) == 2
            await asyncio.sleep(1.1)  # older than the policy's maximum age
            fourth = await client.sync_changes(BOX, EntityKind.CONTACT, third.sync_state)
            assert fourth.restarted and len(fourth.changes) == 2
