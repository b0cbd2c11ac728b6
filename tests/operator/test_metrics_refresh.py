"""/metrics is served from memory; the database-backed gauges follow the database on a timer.

The whole service (api role) runs in this process on a real socket over a test database, so
the refresher is the one `Service` starts; its `attempts` counter is every refresh query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from sync_service.operator.exposition import Exposition
from sync_service.process.app import Service
from tests.e2e.harness import e2e_settings
from tests.operator.apiclient import AUTH, TOKEN
from tests.service_process import free_port

SERVER_SQL = """
INSERT INTO sync.servers (name, backend, url, auth_kind, username, secret_env)
VALUES ('ex1', 'ews', 'https://ex1.example.com/EWS/Exchange.asmx', 'basic', 'svc', 'EX1_PASSWORD')
"""
MAILBOXES_SQL = """
INSERT INTO sync.mailboxes (crm_user_id, email, server_id, state)
SELECT $1 || n, $1 || n || '@example.com', (SELECT id FROM sync.servers WHERE name = 'ex1'), $3
FROM generate_series(1, $2) AS n
"""


async def add_mailboxes(
    pool: asyncpg.Pool | asyncpg.Connection, prefix: str, n: int, state: str = "active"
) -> None:
    if await pool.fetchval("SELECT count(*) FROM sync.servers") == 0:
        await pool.execute(SERVER_SQL)
    await pool.execute(MAILBOXES_SQL, prefix, n, state)


@asynccontextmanager
async def api_service(pool: asyncpg.Pool, **env: str) -> AsyncIterator[tuple[Service, str]]:
    """`Service(...).run()` with the api role only, until it answers; yields it and its URL."""
    port = free_port()
    settings = e2e_settings(
        {"SYNC_ROLES": "api", "SYNC_API_BIND": f"127.0.0.1:{port}", "SYNC_API_TOKEN": TOKEN} | env
    )
    service = Service(settings, pool)
    task = asyncio.create_task(service.run())
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield service, base
    finally:
        service.stop.set()
        await asyncio.wait_for(task, 30)


async def scrape(base: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """One scrape of /metrics (answered 200) as {sample name with its labels: value}."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        text = await r.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


ACTIVE = 'sync_mailboxes{state="active"}'
DISABLED = 'sync_mailboxes{state="disabled"}'
OK = 'sync_metrics_refreshes_total{outcome="ok"}'
FAILED = 'sync_metrics_refreshes_total{outcome="failed"}'
STAMP = "sync_metrics_refreshed_timestamp_seconds"


async def test_many_scrapes_within_an_interval_cause_one_refresh(pool: asyncpg.Pool) -> None:
    await add_mailboxes(pool, "a", 7)
    await add_mailboxes(pool, "d", 2, "disabled")
    async with api_service(pool, SYNC_METRICS_REFRESH="1h") as (service, base):
        await service.gauges.attempted(1)
        first = await scrape(base)
        assert (first[ACTIVE], first[DISABLED]) == (7, 2)
        await add_mailboxes(pool, "late", 5)  # not seen before the next tick, an hour away
        async with aiohttp.ClientSession() as http:

            async def one() -> int:
                async with http.get(f"{base}/metrics") as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one() for _ in range(300)))
        last = await scrape(base)
        assert statuses == [200] * 300
        assert service.gauges.attempts == 1
        assert last[OK] == first[OK] and last[ACTIVE] == 7
        assert last[STAMP] == first[STAMP] > 0


async def test_values_change_after_the_next_tick(pool: asyncpg.Pool) -> None:
    await add_mailboxes(pool, "a", 3)
    async with api_service(pool, SYNC_METRICS_REFRESH="50ms") as (service, base):
        await service.gauges.attempted(1)
        before = await scrape(base)
        assert before[ACTIVE] == 3
        await add_mailboxes(pool, "b", 4)
        await pool.execute("UPDATE sync.mailboxes SET state = 'disabled' WHERE email LIKE 'a1@%'")
        # The refresh running while the rows were written may have read before them; the one
        # after it started later.
        await service.gauges.attempted(service.gauges.attempts + 2)
        after = await scrape(base)
    assert (after[ACTIVE], after[DISABLED]) == (6, 1)
    assert after[STAMP] > before[STAMP] and after[OK] >= before[OK] + 2


async def test_a_database_failure_keeps_the_old_values(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    await add_mailboxes(pool, "a", 3)
    caplog.set_level(logging.INFO, logger="sync_service.operator.gauges")
    async with api_service(pool, SYNC_METRICS_REFRESH="20ms") as (service, base):
        await service.gauges.attempted(1)
        async with pool.acquire() as conn, conn.transaction():
            # A mailbox added and the table gone in one commit: no refresh can have seen it.
            await add_mailboxes(conn, "b", 2)
            await conn.execute("ALTER TABLE sync.mailboxes RENAME TO mailboxes_away")
        async with asyncio.timeout(10):
            while not service.gauges.failing:
                await service.gauges.attempted(service.gauges.attempts + 1)
        first = await scrape(base)  # the last success is before the failures
        await service.gauges.attempted(service.gauges.attempts + 4)
        broken = await scrape(base)  # still 200
        assert service.gauges.failing >= 4
        await pool.execute("ALTER TABLE sync.mailboxes_away RENAME TO mailboxes")
        await service.gauges.attempted(service.gauges.attempts + 2)
        healed = await scrape(base)
    assert first[ACTIVE] == broken[ACTIVE] == 3 and broken[STAMP] == first[STAMP] > 0
    assert broken[FAILED] >= first[FAILED] + 4 and "process_cpu_seconds_total" in broken
    assert healed[ACTIVE] == 5 and healed[STAMP] > broken[STAMP] and service.gauges.failing == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "metrics: gauges not refreshed, serving the last values"
    ]
    assert "mailboxes" in str(warnings[0].__dict__["error"])  # names the culprit
    assert any(r.getMessage() == "metrics: gauges refreshed again" for r in caplog.records)


async def test_private_metrics_need_the_token(pool: asyncpg.Pool) -> None:
    await add_mailboxes(pool, "a", 2)
    async with api_service(pool, SYNC_METRICS_PUBLIC="false") as (service, base):
        await service.gauges.attempted(1)
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await scrape(base, AUTH))[ACTIVE] == 2


async def test_the_refresher_runs_with_the_api_role_only(pool: asyncpg.Pool) -> None:
    async def refresher_tasks(roles: str) -> list[str]:
        env = {"SYNC_ROLES": roles, "SYNC_API_BIND": f"127.0.0.1:{free_port()}"}
        service = Service(e2e_settings(env), pool)
        task = asyncio.create_task(service.run())
        try:
            async with asyncio.timeout(30):  # the heartbeat runs once the group's tasks exist
                while not await pool.fetchval("SELECT count(*) FROM sync.engines"):
                    await asyncio.sleep(0.05)
            return [t.get_name() for t in asyncio.all_tasks() if t.get_name() == "metrics-refresh"]
        finally:
            service.stop.set()
            await asyncio.wait_for(task, 30)

    assert await refresher_tasks("engine") == []
    assert await refresher_tasks("api,engine") == ["metrics-refresh"]


def _registry(counter_value: float) -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    counter = Counter("probe_events", "events", registry=registry)
    counter.inc(counter_value)
    return registry, counter


async def test_scrapes_within_max_age_share_one_rendering() -> None:
    now = [100.0]
    registry, counter = _registry(1)
    exposition = Exposition(registry, max_age=1.0, clock=lambda: now[0])
    bodies = await asyncio.gather(*(exposition.body() for _ in range(50)))
    counter.inc()
    now[0] += 0.999
    assert await exposition.body() == bodies[0]  # still within the second
    now[0] += 0.001
    fresh = await exposition.body()
    assert exposition.renderings == 2 and len(set(bodies)) == 1
    assert b"probe_events_total 1.0" in bodies[0] and b"probe_events_total 2.0" in fresh


async def test_one_scrape_per_turn_of_the_event_loop() -> None:
    """200 waiting scrapes leave every other task its turns: one scrape is answered per turn."""
    exposition = Exposition(_registry(1)[0])
    answered = [0]

    async def scrape_once() -> None:
        await exposition.body()
        answered[0] += 1

    scrapes = [asyncio.create_task(scrape_once()) for _ in range(200)]
    seen = []
    for _ in range(20):  # another task, one step per turn
        await asyncio.sleep(0)
        seen.append(answered[0])
    await asyncio.gather(*scrapes)
    assert answered[0] == 200
    assert seen[-1] <= 20, seen  # all at once, they would all be answered in the first turn


async def test_the_service_serves_metrics_never_older_than_the_refresh_interval() -> None:
    assert Exposition.of_service(None).max_age == 1.0
    assert Exposition.of_service(15.0).max_age == 1.0
    assert Exposition.of_service(0.05).max_age == 0.05
