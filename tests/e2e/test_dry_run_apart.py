"""A dry run requested while a real pass waits stays a job of its own: it runs alone, writes
nothing anywhere, and its plan is read back item by item; the real pass still runs and writes.

The scheduler queues the real pass (priority 0); the operator's dry run (priority 10) comes
after it and is claimed first, so the plan it shows is of the changes the real pass then makes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from sync_service.db.queue import Job, PassKind
from sync_service.operator import models
from sync_service.operator.operations import Operations
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.operator.apiclient import AUTH, api_client
from tests.service_process import run_cli, service_env

BOX = "planner@sim.example"
LONG_NOTE = "n" * 5000  # a body far over what a stored plan keeps of one value


async def _seed(h: Harness, user: str) -> str:
    """One contact synced on both sides, then changes a pass would carry over."""
    ada = await h.pool.fetchval(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name, job_title) "
        "VALUES ($1, 'Ada', 'Lovelace', 'Analyst') RETURNING id",
        user,
    )
    assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
    await h.pool.execute(
        "UPDATE crm.contacts SET job_title = 'Countess', notes = $2 WHERE id = $1",
        ada,
        LONG_NOTE,
    )
    await h.pool.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'Alan', 'Turing')",
        user,
    )
    await h.owner(
        "POST",
        f"/mailboxes/{BOX}/items",
        {"folder": "contacts", "fields": {"GivenName": "Grace", "Surname": "Hopper"}},
    )
    await h.settle()
    return str(ada)


async def _everything(h: Harness) -> dict[str, Any]:
    """Every row the sync could write, and every item and hidden configuration of the box."""
    tables = ("sync.item_links", "sync.folder_links", "sync.crm_watermarks", "sync.item_errors")
    crm = ("crm.contacts", "crm.appointments", "crm.tasks", "crm.change_log")
    rows = {
        t: sorted(str(tuple(r)) for r in await h.pool.fetch(f"SELECT * FROM {t}"))
        for t in (*tables, *crm)
    }
    box = await h.store.mailbox_by_email(BOX)
    assert box is not None
    mailbox = h.sim.sim.mailboxes[BOX]
    return {
        "rows": rows,
        "mailbox": (box.marker_generation, box.marker_at, box.last_express_at),
        "items": (await h.owner("GET", f"/mailboxes/{BOX}/items"))["items"],
        "configs": repr(sorted(mailbox.configs.items())),
    }


async def _claim_one(h: Harness) -> Job:
    jobs = await h.queue.claim("e2e", 10)
    assert len(jobs) == 1, jobs
    return jobs[0]


async def _run(h: Harness, job: Job) -> None:
    result = await h.runner(job)
    assert result == Done("ok"), result
    await h.queue.finish(job.id, "e2e", failed=False, outcome="ok")


def _items_of(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["action"], i["title"]): i for i in plan["items"]}


def _check_plan(plan: dict[str, Any]) -> None:
    """The plan item by item: what would be created, and the update's before -> after."""
    items = _items_of(plan)
    assert set(items) == {
        ("update", "Ada Lovelace"),
        ("create_exchange", "Alan Turing"),
        ("create_crm", "Grace Hopper"),
    }, plan["items"]
    update = items[("update", "Ada Lovelace")]
    assert update["entity"] == "contact" and update["direction"] == "crm_to_exchange"
    changes = {c["field"]: c for c in update["changes"]}
    assert changes["job_title"] == {
        "field": "job_title",
        "side": "exchange",
        "before": "Analyst",
        "after": "Countess",
    }
    note = changes["notes"]
    assert note["before"] is None and note["after"].startswith("n" * 200)
    assert note["after"].endswith("(5000 characters)") and len(note["after"]) < 300
    create = items[("create_exchange", "Alan Turing")]
    assert create["direction"] == "crm_to_exchange" and create["exchange_id"] is None
    assert {c["field"]: c["after"] for c in create["changes"]} == {
        "first_name": "Alan",
        "last_name": "Turing",
    }
    grace = items[("create_crm", "Grace Hopper")]
    assert grace["direction"] == "exchange_to_crm" and grace["exchange_id"]
    [entity] = [e for e in plan["entities"] if e["entity"] == "contact"]
    assert entity["planned"] == {"create_crm": 1, "create_exchange": 1, "update": 1}


async def test_a_dry_run_behind_a_real_pass_stays_apart_and_writes_nothing(
    pool: asyncpg.Pool, db_url: str, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, mailbox = await h.add_user(BOX)
        ada = await _seed(h, user)
        real_id, _ = await h.queue.enqueue(mailbox.id, PassKind.EXPRESS)  # the schedule's
        request = await Operations(pool).request_sync(mailbox=BOX, dry_run=True)
        [queued] = request.jobs
        assert queued.job_id != real_id and not queued.coalesced
        jobs = await pool.fetch(
            "SELECT id, dry_run, status FROM sync.jobs WHERE mailbox_id = $1 AND status <> 'done'"
            " ORDER BY id",
            mailbox.id,
        )
        assert [(j["dry_run"], j["status"]) for j in jobs] == [
            (False, "queued"),
            (True, "queued"),
        ]

        # One pass of the mailbox at a time: the dry run alone, the real pass waits for it.
        dry = await _claim_one(h)
        assert (dry.id, dry.dry_run) == (queued.job_id, True)
        assert await h.queue.claim("e2e", 10) == []
        before = await _everything(h)
        await _run(h, dry)
        assert await _everything(h) == before

        real = await _claim_one(h)
        assert (real.id, real.dry_run) == (real_id, False)
        await _run(h, real)
        assert await pool.fetchval("SELECT job_title FROM crm.contacts WHERE id = $1", ada)
        surnames = sorted(i["fields"]["Surname"] for i in await h.items(BOX, "contacts"))
        assert surnames == ["Hopper", "Lovelace", "Turing"]
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 3
        runs = await pool.fetch("SELECT id, dry_run, counts FROM sync.runs ORDER BY id")
        [dry_run] = [r for r in runs if r["dry_run"]]
        assert dry_run["counts"] == {}
        assert runs[-1]["counts"]["contact"] == {
            "crm_to_exchange": {"create": 1, "update": 1},
            "exchange_to_crm": {"create": 1},
        }

        # The plan, read back through the API and the CLI.
        async with api_client(pool) as client:
            resp = await client.get(f"/api/v1/runs/{dry_run['id']}", headers=AUTH)
            assert resp.status == 200, await resp.text()
            shown = await resp.json()
            assert (await client.get("/api/v1/runs/999999", headers=AUTH)).status == 404
            for bad in ("x1", "0", "+7", "99999999999999999999"):
                answer = await client.get(f"/api/v1/runs/{bad}", headers=AUTH)
                assert answer.status == 400 and (await answer.json())["field"] == "id", bad
        models.RunDetail.model_validate(shown)  # the answer the OpenAPI document describes
        assert shown["dry_run"] is True and shown["outcome"] == "ok"
        _check_plan(shown["plan"])
        assert "Grace" in shown["plan_text"]

        env = service_env(SYNC_DATABASE_URL=db_url)
        done = await asyncio.to_thread(run_cli, env, "runs", "show", str(dry_run["id"]), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["plan"] == shown["plan"]
        text = await asyncio.to_thread(run_cli, env, "runs", "show", str(dry_run["id"]))
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert "kind:      express (dry run)" in lines
        assert any(line.startswith("plan: contact express: create_crm=1") for line in lines)
        [job_title] = [line for line in lines if "exchange.job_title" in line]
        assert job_title.split()[:3] == ["contact", "update", "crm_to_exchange"]
        assert job_title.split()[-2:] == ["Analyst", "Countess"]
        real_run = await asyncio.to_thread(run_cli, env, "runs", "show", str(runs[-1]["id"]))
        assert "plan: - (only a dry run keeps its plan)" in real_run.stdout


async def test_dry_run_wait_prints_a_summary_and_where_to_read_the_plan(
    pool: asyncpg.Pool, db_url: str
) -> None:
    async with harness(pool) as h:
        user, _ = await h.add_user(BOX)
        await _seed(h, user)
        env = service_env(SYNC_DATABASE_URL=db_url)
        waiting = asyncio.create_task(
            asyncio.to_thread(
                run_cli, env, "sync", "--mailbox", BOX, "--dry-run", "--wait", "--timeout", "90s"
            )
        )
        async with asyncio.timeout(60):
            while not (jobs := await h.queue.claim("e2e", 10)):
                await asyncio.sleep(0.1)
        [job] = jobs
        assert job.dry_run
        await _run(h, job)
        done = await waiting
        assert done.returncode == 0, done.stderr
        run_id = await pool.fetchval("SELECT id FROM sync.runs WHERE dry_run")
        lines = done.stdout.splitlines()
        assert lines[-3] == "1 pass(es): 1 ok; 0 item(s) written, 3 action(s) planned by dry runs"
        assert lines[-2].startswith(f"dry run {run_id} of {BOX}: contact express: create_crm=1")
        assert lines[-1] == f"  the plan item by item: sync-service runs show {run_id}"
