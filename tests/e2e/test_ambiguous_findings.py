"""An ambiguous match found by a real initial pass is an item-level finding: recorded with what
matched what, why no pair was made and what was done, listed through the CLI and the API,
counted by sync_item_errors_open until acknowledged."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.operator.operations import Operations
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.operator.apiclient import AUTH, api_client
from tests.service_process import run_cli, service_env

BOX = "twins@sim.example"
OPEN_SERIES = 'sync_item_errors_open{entity="contact",kind="ambiguous_match"}'


async def _twins(h: Harness, user: str) -> tuple[list[str], str]:
    """Two CRM records and one Outlook contact sharing an address and a name: no pair is sure."""
    crm_ids = [
        str(
            await h.pool.fetchval(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
                "VALUES ($1, 'Sam', 'Smith', 'sam@example.com') RETURNING id",
                user,
            )
        )
        for _ in range(2)
    ]
    item = await h.owner(
        "POST",
        f"/mailboxes/{BOX}/items",
        {
            "folder": "contacts",
            "fields": {
                "GivenName": "Sam",
                "Surname": "Smith",
                "EmailAddresses": {"EmailAddress1": "sam@example.com"},
            },
        },
    )
    return sorted(crm_ids), str(item["id"])


async def _open_gauge(pool: asyncpg.Pool) -> float:
    """The series as /metrics serves it after a refresh of the database-backed gauges (a new
    app: one app renders its answer at most once a second)."""
    await Operations(pool).refresh_gauges()
    async with api_client(pool) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        body = await resp.text()
    [line] = [x for x in body.splitlines() if x.startswith(OPEN_SERIES)]
    return float(line.rsplit(" ", 1)[1])


async def test_an_ambiguous_initial_match_is_a_finding_listed_counted_and_acknowledged(
    pool: asyncpg.Pool, db_url: str, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        crm_ids, item_id = await _twins(h, user)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        # What was done: nothing paired, each created on the other side.
        assert len(await h.items(BOX, "contacts")) == 3
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 3
        # A later pass finds nothing new to report.
        assert await h.sync(BOX) == Done("ok")

        env = service_env(SYNC_DATABASE_URL=db_url)
        listed = await asyncio.to_thread(
            run_cli, env, "item-errors", "list", "--kind", "ambiguous_match", "--json"
        )
        assert listed.returncode == 0, listed.stderr
        [finding] = json.loads(listed.stdout)["item_errors"]
        assert (finding["mailbox"], finding["entity"], finding["status"]) == (
            BOX,
            "contact",
            "open",
        )
        detail = finding["detail"]
        assert (detail["key"], detail["crm_ids"], detail["exchange_ids"]) == (
            "email",
            crm_ids,
            [item_id],
        )
        assert finding["direction"] == "both"
        assert "2 CRM record(s) and 1 Exchange item(s) share a email key" in finding["reason"]
        assert "not paired" in detail["decision"] and "created in Exchange" in detail["decision"]
        assert "created in the CRM" in detail["decision"]
        text = await asyncio.to_thread(run_cli, env, "item-errors", "list")
        [row] = [line for line in text.stdout.splitlines() if "ambiguous_match" in line]
        assert f"crm {', '.join(crm_ids)} <-> exchange" in row
        status = await asyncio.to_thread(run_cli, env, "status")
        assert "item errors: 1 ambiguous_match open" in status.stdout

        async with api_client(pool) as client:
            resp = await client.get(
                "/api/v1/item-errors",
                params={"kind": "ambiguous_match", "mailbox": BOX},
                headers=AUTH,
            )
            assert resp.status == 200, await resp.text()
            assert [e["id"] for e in (await resp.json())["item_errors"]] == [finding["id"]]
            assert await _open_gauge(pool) == 1.0

            # Nothing to retry in an ambiguous match: said so, not silently done.
            resp = await client.post(
                "/api/v1/item-errors/retry", json={"ids": [finding["id"]]}, headers=AUTH
            )
            assert resp.status == 409 and "acknowledge it" in (await resp.json())["detail"]
            resp = await client.post(
                "/api/v1/item-errors/acknowledge", json={"ids": [finding["id"]]}, headers=AUTH
            )
            assert resp.status == 200 and (await resp.json())["acknowledged"] == [finding["id"]]
            assert await _open_gauge(pool) == 0.0
            resp = await client.get(
                "/api/v1/item-errors", params={"status": "acknowledged"}, headers=AUTH
            )
            [kept] = (await resp.json())["item_errors"]
            assert kept["id"] == finding["id"] and kept["acknowledged_at"]


async def test_a_dry_run_reports_the_ambiguity_without_recording_it(pool: asyncpg.Pool) -> None:
    async with harness(pool) as h:
        user, _ = await h.add_user(BOX)
        await _twins(h, user)
        assert await h.sync(BOX, PassKind.INITIAL, dry_run=True) == Done("ok")
        assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 0
        plan = await pool.fetchval("SELECT plan_items FROM sync.runs WHERE dry_run")
        [ambiguity] = plan["ambiguities"]
        assert ambiguity["key"] == "email" and len(ambiguity["crm_ids"]) == 2
