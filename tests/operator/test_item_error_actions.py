"""Item errors an operator can act on: listed across mailboxes with filters, retried one or all
(the next pass writes the item again), acknowledged (kept, no longer counted as open)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from sync_service import metrics
from sync_service.db.queue import PassKind
from sync_service.operator import models
from sync_service.operator.operations import Operations
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.operator.apiclient import AUTH, api_client
from tests.service_process import run_cli, service_env

ANN, BOB = "ann@sim.example", "bob@sim.example"
LONG = "L" * 300  # Outlook takes this surname; the CRM holds at most 255 characters


async def _refused(h: Harness) -> dict[str, str]:
    """Each mailbox has an Outlook contact the CRM refuses; Ann also a CRM contact Exchange
    refuses (U+0001 cannot be carried by XML). Their CRM ids by what they are."""
    ids = {}
    for box in (ANN, BOB):
        user, _ = await h.add_user(box)
        await h.owner(
            "POST", f"/mailboxes/{box}/items", {"folder": "contacts", "fields": {"Surname": LONG}}
        )
        if box == ANN:
            ids["bell"] = str(
                await h.pool.fetchval(
                    "INSERT INTO crm.contacts (owner_id, last_name, notes) "
                    "VALUES ($1, 'Bell', E'ring \\x01 ring') RETURNING id",
                    user,
                )
            )
        assert await h.sync(box, PassKind.INITIAL) == Done("ok")
    return ids


def _cli(env: dict[str, str], *args: str) -> Any:
    done = run_cli(env, "item-errors", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def _listed(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    page = await asyncio.to_thread(_cli, env, "list", *args)
    errors: list[dict[str, Any]] = page["item_errors"]
    return errors


async def _run_queued(h: Harness) -> list[int]:
    """Run every queued pass to its end; the mailbox ids they were for."""
    ran = []
    while jobs := await h.queue.claim("test", 10):
        for job in jobs:
            assert (job.kind, job.priority) == (PassKind.COMPLETE, 10)
            assert await h.runner(job) == Done("ok")
            await h.queue.finish(job.id, "test", failed=False, outcome="ok")
            ran.append(job.mailbox_id)
    return ran


async def _long_surnames(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT u.email FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
        "WHERE c.last_name = $1 ORDER BY 1",
        LONG,
    )
    return [r["email"] for r in rows]


async def _open_refused(pool: asyncpg.Pool) -> float | None:
    """sync_item_errors_open of refused contacts after a refresh of the database gauges."""
    await Operations(pool).refresh_gauges()
    labels = {"entity": "contact", "kind": "refused"}
    return metrics.REGISTRY.get_sample_value("sync_item_errors_open", labels)


async def test_list_retry_and_acknowledge_item_errors(pool: asyncpg.Pool, db_url: str) -> None:
    env = service_env(SYNC_DATABASE_URL=db_url)
    async with harness(pool) as h:
        ids = await _refused(h)

        # Across mailboxes, newest first, with filters.
        every = await _listed(env)
        assert sorted((e["mailbox"], e["direction"]) for e in every) == [
            (ANN, "crm_to_exchange"),
            (ANN, "exchange_to_crm"),
            (BOB, "exchange_to_crm"),
        ]
        assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
        assert {e["status"] for e in every} == {"open"} and {e["server"] for e in every} == {"sim"}
        surname = await _listed(env, "--server", "sim", "--entity", "contact", "--reason", "LAST_N")
        assert sorted(e["mailbox"] for e in surname) == [ANN, BOB]
        assert len(await _listed(env, "--mailbox", ANN, "--since", "1h")) == 2
        assert await _listed(env, "--kind", "ambiguous_match") == []
        assert await _listed(env, "--entity", "task") == []
        [bell] = [e for e in every if e["crm_id"] == ids["bell"]]
        [ann_long] = [e for e in surname if e["mailbox"] == ANN]
        [bob_long] = [e for e in surname if e["mailbox"] == BOB]

        # The CRM takes longer surnames from now on; refused content is still skipped...
        await pool.execute("ALTER TABLE crm.contacts DROP CONSTRAINT contacts_last_name_check")
        assert await h.sync(ANN, PassKind.COMPLETE) == Done("ok")
        assert await _long_surnames(pool) == []

        # ...until a retry: one error, its mailbox's next pass writes it.
        retried = await asyncio.to_thread(_cli, env, "retry", str(ann_long["id"]))
        assert retried["retried"] == [ann_long["id"]]
        assert [j["mailbox"] for j in retried["jobs"]] == [ANN]
        ann_box = await h.store.mailbox_by_email(ANN)
        assert ann_box is not None and await _run_queued(h) == [ann_box.id]
        assert await _long_surnames(pool) == [ANN]

        async with api_client(pool) as client:

            async def call(path: str, body: dict[str, Any], status: int = 200) -> Any:
                resp = await client.post(f"/api/v1/item-errors/{path}", json=body, headers=AUTH)
                assert resp.status == status, await resp.text()
                answer = await resp.json()
                if status == 200:  # the answers the OpenAPI document describes
                    model = models.RetryResult if path == "retry" else models.AcknowledgeResult
                    model.model_validate(answer)
                return answer

            resp = await client.get("/api/v1/item-errors", params={"status": "all"}, headers=AUTH)
            models.ItemErrorPage.model_validate(await resp.json())

            # Every refused one the filters match: Bob's (Ann's is retried already).
            answer = await call("retry", {"all": True, "reason": "last_name"})
            assert answer["retried"] == [bob_long["id"]]
            assert [j["mailbox"] for j in answer["jobs"]] == [BOB]
            await _run_queued(h)
            assert await _long_surnames(pool) == [ANN, BOB]

            # A retry that fails again: the item was tried (a new refusal), the old row is history.
            await call("retry", {"ids": [bell["id"]]})
            await _run_queued(h)
            rows = await pool.fetch(
                "SELECT id, retried_at, content_hash FROM sync.item_errors WHERE crm_id = $1 "
                "ORDER BY id",
                ids["bell"],
            )
            assert [r["id"] == bell["id"] for r in rows] == [True, False]
            assert rows[0]["retried_at"] and rows[0]["content_hash"] is None
            again = rows[1]["id"]
            assert [e["id"] for e in await _listed(env)] == [again]

            # Acknowledged: kept and listed on demand, no longer open nor counted.
            assert await _open_refused(pool) == 1
            assert (await call("acknowledge", {"ids": [again]}))["acknowledged"] == [again]
            assert (await call("acknowledge", {"ids": [again]}))["acknowledged"] == []
            assert await _open_refused(pool) == 0
            assert await _listed(env) == []
            [kept] = await _listed(env, "--status", "acknowledged")
            assert kept["id"] == again and kept["acknowledged_at"]
            statuses = {e["id"]: e["status"] for e in await _listed(env, "--status", "all")}
            assert statuses == {
                bell["id"]: "retried",
                ann_long["id"]: "retried",
                bob_long["id"]: "retried",
                again: "acknowledged",
            }
            # Still skipped, as before: acknowledging changes what is counted, not what is done.
            assert await h.sync(ANN, PassKind.COMPLETE) == Done("ok")
            assert await pool.fetchval("SELECT count(*) FROM sync.item_errors") == 4

            # Refusals name the field.
            missing = await call("retry", {"ids": [987654]}, 404)
            assert missing["field"] == "ids" and "987654" in missing["detail"]
            both = await call("acknowledge", {"ids": [again], "all": True}, 400)
            assert both["field"] == "all"
            neither = await call("retry", {}, 400)
            assert neither["field"] == "ids"
            kind = await call("retry", {"all": True, "kind": "ambiguous_match"}, 400)
            assert kind["field"] == "kind"
            resp = await client.get("/api/v1/item-errors", params={"status": "gone"}, headers=AUTH)
            assert resp.status == 400 and (await resp.json())["field"] == "status"
        usage = await asyncio.to_thread(run_cli, env, "item-errors", "retry")
        assert usage.returncode == 2 and "ids:" in usage.stderr
