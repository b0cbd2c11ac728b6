"""After an end-to-end sync, /metrics carries every documented metric with plausible values."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from sync_service.db.queue import PassKind
from sync_service.operator import api
from sync_service.operator.gauges import GaugeRefresher
from sync_service.runtime.worker import Done
from tests.e2e.harness import e2e_settings, harness

README = Path(__file__).resolve().parents[2] / "README.md"


def documented() -> set[str]:
    table = README.read_text().split("| Metric | Type | Meaning |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`(sync_[a-z_]+)", table))


async def _ready() -> list[str]:
    return []


async def test_metrics_after_a_sync(pool: asyncpg.Pool) -> None:
    async with harness(pool) as h:
        user, _ = await h.add_user("metrics@sim.example")
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Counted')", user
        )
        assert await h.sync("metrics@sim.example", PassKind.INITIAL) == Done("ok")
        # One tick of the refresher the api role runs (scrapes do not query the database).
        assert await GaugeRefresher.for_pool(pool, 15.0).refresh_once()
        app = api.build_app(_ready, pool=pool, settings=e2e_settings())
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/metrics")
            assert resp.status == 200
            text = await resp.text()
    samples: dict[str, float] = {}
    families = set()
    for family in text_string_to_metric_families(text):
        # Counters are named without `_total` by the parser; labelled metrics that saw no
        # event yet are exposed by their HELP and TYPE lines alone.
        families.add(family.name)
        families.add(f"{family.name}_total")
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    assert len(documented()) >= 15
    assert documented() - families == set()
    # Plausible values after one pass that created one item in the mailbox.
    assert samples["sync_passes_total"] >= 1
    assert samples["sync_items_written_total"] >= 1
    assert samples["sync_exchange_requests_total"] >= 3
    assert samples["sync_pass_duration_seconds_count"] >= 1
    assert samples["sync_limiter_wait_seconds_count"] >= samples["sync_exchange_requests_total"]
    assert samples["sync_mailboxes"] >= 1  # from the refresh above
    assert samples["sync_metrics_refreshed_timestamp_seconds"] > 0
    assert "process_cpu_seconds_total" in samples
    assert not any("metrics@sim.example" in line for line in text.splitlines())
