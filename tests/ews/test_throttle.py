"""Throttle unit tests with a fake clock: deadlines, gates, retries, eviction."""

from __future__ import annotations

import asyncio
import random

import pytest

from ews_client.errors import ItemNotFoundError, ThrottledError, TransientError
from ews_client.io.throttle import Throttle, ThrottleLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def make(clock: FakeClock, **kw: float) -> Throttle:
    limits = ThrottleLimits(**kw)  # type: ignore[arg-type]
    return Throttle(limits, clock=clock, sleep=clock.sleep, rng=random.Random(1))


async def test_backoff_from_server_is_waited_out() -> None:
    clock = FakeClock()
    throttle = make(clock)
    sent: list[float] = []

    async def call() -> str:
        sent.append(clock.now)
        if len(sent) == 1:
            raise ThrottledError("busy", code="ErrorServerBusy", backoff_s=2.0)
        return "ok"

    assert await throttle.run("a@x", call) == "ok"
    assert sent[1] - sent[0] >= 2.0


async def test_other_requests_to_the_mailbox_wait_for_the_deadline() -> None:
    clock = FakeClock()
    throttle = make(clock)
    throttle.record_backoff("a@x", ThrottledError("busy", code="ErrorServerBusy", backoff_s=5.0))
    deadline = clock.now + 5.0
    sent: dict[str, float] = {}

    async def call(box: str) -> None:
        sent[box] = clock.now

    await throttle.run("a@x", lambda: call("a@x"))
    await throttle.run("b@x", lambda: call("b@x"))
    assert sent["a@x"] >= deadline
    assert sent["b@x"] == sent["a@x"]  # another mailbox is not held back


async def test_503_backs_off_the_whole_server() -> None:
    clock = FakeClock()
    throttle = make(clock)
    throttle.record_backoff("a@x", ThrottledError("503", code="HTTP503", backoff_s=3.0))
    started = clock.now
    seen: list[float] = []

    async def call() -> None:
        seen.append(clock.now)

    await throttle.run("b@x", call)
    assert seen[0] >= started + 3.0


async def test_per_mailbox_and_sync_concurrency_caps() -> None:
    throttle = Throttle(ThrottleLimits(per_mailbox=10, per_mailbox_sync=4))
    in_flight = {"all": 0, "sync": 0}
    peak = {"all": 0, "sync": 0}

    async def call(sync: bool) -> None:
        in_flight["all"] += 1
        in_flight["sync"] += sync
        peak["all"] = max(peak["all"], in_flight["all"])
        peak["sync"] = max(peak["sync"], in_flight["sync"])
        await asyncio.sleep(0.01)
        in_flight["all"] -= 1
        in_flight["sync"] -= sync

    async with asyncio.TaskGroup() as tg:
        for i in range(40):
            sync = i % 2 == 0
            tg.create_task(throttle.run("a@x", lambda s=sync: call(s), sync=sync))  # type: ignore[misc]
    assert peak == {"all": 10, "sync": 4}


async def test_connection_count_lowers_mailbox_concurrency() -> None:
    clock = FakeClock()
    throttle = make(clock)
    err = ThrottledError("too many", code="ErrorExceededConnectionCount")
    throttle.record_backoff("a@x", err)
    assert throttle.mailbox("a@x").gate.limit == 8
    assert throttle.mailbox("a@x").backoff_until > clock.now  # exponential delay when no hint


async def test_retries_are_bounded() -> None:
    clock = FakeClock()
    throttle = make(clock, max_attempts=4)
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("reset", code="Network")

    with pytest.raises(TransientError):
        await throttle.run("a@x", call)
    assert calls == 4
    assert all(0.125 <= s <= 30 for s in clock.slept)  # jittered, capped


async def test_time_budget_stops_retries() -> None:
    clock = FakeClock()
    throttle = make(clock, budget_s=10.0)
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise ThrottledError("busy", code="ErrorServerBusy", backoff_s=6.0)

    with pytest.raises(ThrottledError):
        await throttle.run("a@x", call)
    assert calls == 2  # the third wait would end beyond the budget


async def test_permanent_errors_are_not_retried() -> None:
    throttle = make(FakeClock())
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise ItemNotFoundError("gone", code="ErrorItemNotFound")

    with pytest.raises(ItemNotFoundError):
        await throttle.run("a@x", call)
    assert calls == 1


async def test_idle_mailboxes_are_evicted() -> None:
    clock = FakeClock()
    throttle = make(clock, idle_evict_s=60.0, rate_per_s=100_000.0)

    async def call() -> None:
        return None

    for i in range(1000):
        await throttle.run(f"user{i}@x", call)
    assert throttle.tracked_mailboxes == 1000
    clock.now += 61
    await throttle.run("fresh@x", call)
    assert throttle.tracked_mailboxes == 1


def test_server_limit_adapts() -> None:
    clock = FakeClock()
    throttle = make(clock, max_concurrency=100, min_concurrency=10)
    throttle.server.throttled()
    assert throttle.server.gate.limit == 70
    throttle.server.throttled()  # same second: one burst, one cut
    assert throttle.server.gate.limit == 70
    for _ in range(50):
        throttle.server.succeeded()
    assert throttle.server.gate.limit == 71


def test_only_server_wide_answers_cut_the_server_limit() -> None:
    clock = FakeClock()
    throttle = make(clock, max_concurrency=100)
    throttle.record_backoff("a@x", ThrottledError("busy", code="ErrorServerBusy", backoff_s=1))
    assert throttle.server.gate.limit == 100  # one mailbox's budget: that mailbox slows down
    assert throttle.mailbox("a@x").gate.limit == 5
    throttle.record_backoff("a@x", ThrottledError("503", code="HTTP503", backoff_s=1))
    assert throttle.server.gate.limit == 70
