"""The audit trail end to end: a contact edited on both sides under each conflict policy, read
back through the CLI and the API (who, what, when, which side won, the losing value); every
counted write audited, values bounded, filters and cursor pages over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ews_client.simulator.config import LatencyConfig, SimulatorConfig
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import SECRET_ENV, Harness, harness
from tests.operator.apiclient import AUTH, api_client
from tests.service_process import ServiceProcess, free_port, run_cli, service_env

BOX = "erin@sim.example"
Change = dict[str, dict[str, str]]


def _change(**fields: tuple[str, str]) -> Change:
    return {name: {"before": before, "after": after} for name, (before, after) in fields.items()}


# The writes the conflict pass makes, newest first: (side, changes, conflict). The CRM sets
# company "CRM Ltd" and job title "CRM title" (merge: the title stays), then Outlook sets
# "Outlook Ltd" and "Outlook title".
CRM_KEPT = _change(company=("Outlook Ltd", "CRM Ltd"), job_title=("Outlook title", "CRM title"))
OUTLOOK_KEPT = _change(company=("CRM Ltd", "Outlook Ltd"), job_title=("CRM title", "Outlook title"))
OUTLOOK_LOST = {"company": "Outlook Ltd", "job_title": "Outlook title"}
CRM_LOST = {"company": "CRM Ltd", "job_title": "CRM title"}
EXPECTED: dict[str, list[tuple[str, Change, dict[str, Any]]]] = {
    "crm_wins": [
        ("exchange", CRM_KEPT, {"policy": "crm_wins", "winner": "crm", "losing": OUTLOOK_LOST}),
    ],
    "exchange_wins": [
        (
            "crm",
            OUTLOOK_KEPT,
            {"policy": "exchange_wins", "winner": "exchange", "losing": CRM_LOST},
        ),
    ],
    # newest_wins: the Outlook edit is made after the CRM edit, so Outlook is newer.
    "newest_wins": [
        ("crm", OUTLOOK_KEPT, {"policy": "newest_wins", "winner": "exchange", "losing": CRM_LOST}),
    ],
    # merge: company changed on both sides -> the fallback (crm_wins) keeps the CRM's; the job
    # title changed in Outlook only and goes to the CRM. Both writes carry the conflict.
    "merge": [
        (
            "exchange",
            _change(company=("Outlook Ltd", "CRM Ltd")),
            {"policy": "merge", "winner": "crm", "losing": {"company": "Outlook Ltd"}},
        ),
        (
            "crm",
            _change(job_title=("Cryptanalyst", "Outlook title")),
            {"policy": "merge", "winner": "crm", "losing": {"company": "Outlook Ltd"}},
        ),
    ],
}


async def _linked_contact(h: Harness, user: str) -> tuple[str, str]:
    crm_id = await h.pool.fetchval(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name, company, job_title) "
        "VALUES ($1, 'Alan', 'Turing', 'Bletchley', 'Cryptanalyst') RETURNING id",
        user,
    )
    assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
    [item] = await h.items(BOX, "contacts")
    return str(crm_id), item["id"]


async def _api(pool: asyncpg.Pool, query: dict[str, str]) -> dict[str, Any]:
    async with api_client(pool) as client:
        resp = await client.get("/api/v1/audit", params=query, headers=AUTH)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


def _cli(db_url: str, *args: str) -> str:
    done = run_cli(service_env(SYNC_DATABASE_URL=db_url), "audit", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("policy", list(EXPECTED))
async def test_a_conflict_is_audited_with_the_policy_the_winner_and_the_losing_values(
    pool: asyncpg.Pool, db_url: str, policy: str, backend: str
) -> None:
    async with harness(pool, env={"SYNC_CONTACTS_POLICY": policy}, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        crm_id, item_id = await _linked_contact(h, user)
        crm_title = "Cryptanalyst" if policy == "merge" else "CRM title"
        await pool.execute(
            "UPDATE crm.contacts SET company = 'CRM Ltd', job_title = $2 WHERE id = $1",
            crm_id,
            crm_title,
        )
        # Exchange keeps modification times to the second: make the Outlook edit clearly newer.
        await asyncio.sleep(1.1)
        await h.owner(
            "PATCH",
            f"/mailboxes/{BOX}/items/{item_id}",
            {"fields": {"CompanyName": "Outlook Ltd", "JobTitle": "Outlook title"}},
        )
        before: datetime = await pool.fetchval("SELECT clock_timestamp()")
        assert await h.sync(BOX) == Done("ok")
        after: datetime = await pool.fetchval("SELECT clock_timestamp()")
        run_id = await pool.fetchval("SELECT max(id) FROM sync.runs")

    by_api = await _api(pool, {"record": crm_id})
    entries = by_api["entries"]
    expected = EXPECTED[policy]
    # What the conflict pass wrote, then the initial pass's create of the Outlook contact.
    assert len(entries) == len(expected) + 1 and by_api["next_cursor"] is None
    for entry, (side, changes, conflict) in zip(entries, expected, strict=False):
        # who: the side written, and that both sides had changed the contact
        assert (entry["side"], entry["changed_on"], entry["operation"]) == (side, "both", "update")
        # what: the fields, before -> after
        assert entry["changes"] == changes
        # which side won, and the losing values
        assert entry["conflict"] == conflict
        assert entry["reason"].startswith(f"changed on both sides: {policy}")
        # when, in which pass, of which item
        assert before <= datetime.fromisoformat(entry["at"]) <= after
        assert (entry["run_id"], entry["mailbox"], entry["entity"]) == (run_id, BOX, "contact")
        assert (entry["crm_id"], entry["exchange_id"]) == (crm_id, item_id)
        assert entry["title"] == "Alan Turing"
    created = entries[-1]
    assert (created["side"], created["operation"], created["changed_on"]) == (
        "exchange",
        "create",
        "crm",
    )
    assert created["changes"]["company"] == {"after": "Bletchley"}
    assert created["reason"] == "only in CRM" and created["conflict"] is None
    # The same trail by the Exchange item id, and through the CLI.
    assert (await _api(pool, {"record": item_id}))["entries"] == entries
    assert json.loads(_cli(db_url, "--record", crm_id, "--json"))["entries"] == entries
    text = _cli(db_url, "--mailbox", BOX)
    lost = next(iter(expected[0][2]["losing"].items()))
    assert f"changed on both sides: {policy}" in text
    assert f'(lost: {lost[0]}="{lost[1]}"' in text


async def test_every_counted_write_is_audited_with_bounded_values_and_pages(
    pool: asyncpg.Pool, db_url: str
) -> None:
    notes = "long notes " * 500
    async with harness(pool) as h:
        user, _ = await h.add_user(BOX)
        for name in ("Ada", "Grace", "Edsger"):
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, last_name, notes) VALUES ($1, $2, $3)",
                user,
                name,
                notes,
            )
        for name in ("Barbara", "Donald"):
            await h.owner(
                "POST",
                f"/mailboxes/{BOX}/items",
                {"folder": "contacts", "fields": {"Surname": name}},
            )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        await pool.execute("DELETE FROM crm.contacts WHERE last_name = 'Ada'")
        donald = next(
            i for i in await h.items(BOX, "contacts") if i["fields"]["Surname"] == "Donald"
        )
        await h.owner("DELETE", f"/mailboxes/{BOX}/items/{donald['id']}")
        assert await h.sync(BOX) == Done("ok")

    # Each run's counts are its audit rows, side by side and operation by operation.
    direction = {"exchange": "crm_to_exchange", "crm": "exchange_to_crm"}
    for run_id, counts in await pool.fetch("SELECT id, counts FROM sync.runs ORDER BY id"):
        tally: dict[str, dict[str, int]] = {}
        for side, operation, n in await pool.fetch(
            "SELECT side, operation, count(*) FROM sync.audit WHERE run_id = $1 GROUP BY 1, 2",
            run_id,
        ):
            tally.setdefault(direction[side], {})[operation] = n
        assert tally == counts.get("contact", {}), run_id
    entries = (await _api(pool, {"mailbox": BOX}))["entries"]
    # The express pass's deletes (made side by side), then the initial pass's creates.
    assert {(e["side"], e["operation"], e["title"], e["changed_on"]) for e in entries[:2]} == {
        ("exchange", "delete", "Ada", "crm"),
        ("crm", "delete", "Donald", "exchange"),
    }
    assert len(entries) == 7  # 3 + 2 creates, 2 deletes
    cut = next(e for e in entries if e["title"] == "Grace")["changes"]["notes"]["after"]
    assert len(cut) == 257 and cut.endswith("…") and notes.strip().startswith(cut[:-1])
    # Pages of two, cursor after cursor: every row once, in the same order.
    paged: list[dict[str, Any]] = []
    query = {"mailbox": BOX, "limit": "2"}
    while True:
        page = await _api(pool, query)
        paged.extend(page["entries"])
        if page["next_cursor"] is None:
            break
        query["cursor"] = page["next_cursor"]
    assert paged == entries
    # A time range: nothing before the first write, nothing from a time after the last.
    first, last = entries[-1]["at"], entries[0]["at"]
    assert (await _api(pool, {"until": first}))["entries"] == []
    assert len((await _api(pool, {"since": first, "until": last}))["entries"]) == 7 - sum(
        e["at"] == last for e in entries
    )
    assert (await _api(pool, {"since": "1h"}))["entries"] == entries
    assert "more: the same command with --cursor" in _cli(db_url, "--mailbox", BOX, "--limit", "2")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"mailbox": "nobody@sim.example"}, "mailbox"),
        ({"record": "x" * 1025}, "record"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(
    pool: asyncpg.Pool, db_url: str, query: dict[str, str], field: str
) -> None:
    async with api_client(pool) as client:
        resp = await client.get("/api/v1/audit", params=query, headers=AUTH)
        body = await resp.json(content_type=None)
    assert resp.status in (400, 404) and body["field"] == field, body
    args = [a for name, value in query.items() for a in (f"--{name}", value)]
    done = run_cli(service_env(SYNC_DATABASE_URL=db_url), "audit", *args)
    assert done.returncode == 2 and f"sync-service: {field}:" in done.stderr, done.stderr


CRASH_BOXES, CRM_ONLY, EXCHANGE_ONLY = 4, 120, 10


async def _seed_for_crash(h: Harness) -> None:
    for n in range(CRASH_BOXES):
        email = f"audit{n}@sim.example"
        user, mailbox = await h.add_user(email)
        await h.pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) "
            "SELECT $1, 'C' || i FROM generate_series(1, $2::int) AS i",
            user,
            CRM_ONLY,
        )
        for i in range(EXCHANGE_ONLY):
            await h.owner(
                "POST",
                f"/mailboxes/{email}/items",
                {"folder": "contacts", "fields": {"Surname": f"E{i}"}},
            )
        await h.queue.enqueue(mailbox.id, PassKind.INITIAL)


async def _wrote_or_done(pool: asyncpg.Pool, engine: str) -> bool:
    """The engine's passes have linked some writes, or no job is left to run (the passes
    before it did all the work: there is nothing to cut short, and the kills that did land are
    checked below)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT FROM sync.runs WHERE engine = $1 AND counts <> '{}') "
            "OR NOT EXISTS (SELECT FROM sync.jobs WHERE status IN ('queued', 'running'))",
            engine,
        )
    )


async def test_kill_9_leaves_no_write_unaudited_and_no_audit_row_of_a_write_not_made(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    """Killed mid-write three times, then run to the end: each item created once has exactly
    one create in the trail, and each run's audit rows are its counts."""
    config = SimulatorConfig(latency=LatencyConfig(base_s=0.05, per_item_s=0.01))
    async with harness(pool, config) as h:
        await _seed_for_crash(h)
        env = service_env(
            SYNC_DATABASE_URL=db_url,
            SYNC_API_BIND=f"127.0.0.1:{free_port()}",
            SYNC_ROLES="engine,api",
            SYNC_JOB_LEASE="2s",
            SYNC_MAX_CONCURRENT_MAILBOXES="2",
            **{SECRET_ENV: os.environ[SECRET_ENV]},
        )
        for kill in range(3):
            name = f"audit-kill-{kill}"
            service = ServiceProcess({**env, "SYNC_ENGINE_NAME": name}, tmp_path / f"{name}.log")
            try:
                async with asyncio.timeout(90):  # killed once it has linked some writes
                    while not await _wrote_or_done(pool, name):
                        await asyncio.sleep(0.02)
            except TimeoutError:
                service.kill()
                raise AssertionError(f"{name} wrote nothing in 90 s:\n{service.output()}") from None
            await asyncio.sleep(0.1 * kill)
            service.kill()
        final = ServiceProcess(env, tmp_path / "final.log")
        try:
            await asyncio.to_thread(final.wait_ready)
            async with asyncio.timeout(120):
                while await pool.fetchval(
                    "SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')"
                ):
                    await asyncio.sleep(0.3)
        finally:
            assert final.terminate() == 0, final.output()
    assert await pool.fetchval("SELECT count(*) FROM sync.runs WHERE outcome = 'lost'") >= 2
    # Creates a kill cut off from their links, found and linked by a later pass: audited for
    # the run that made them, as they are counted.
    found_later = await pool.fetchval(
        "SELECT count(*) FROM sync.audit WHERE reason LIKE 'made by a pass cut short%'"
    )
    assert found_later > 0, "the kills must land between a create and its link"
    creates = await pool.fetch(
        "SELECT side, count(*) AS n, count(DISTINCT (mailbox_id, crm_id)) AS items "
        "FROM sync.audit WHERE operation = 'create' GROUP BY side"
    )
    assert {r["side"]: (r["n"], r["items"]) for r in creates} == {
        "exchange": (CRASH_BOXES * CRM_ONLY, CRASH_BOXES * CRM_ONLY),
        "crm": (CRASH_BOXES * EXCHANGE_ONLY, CRASH_BOXES * EXCHANGE_ONLY),
    }
    direction = {"exchange": "crm_to_exchange", "crm": "exchange_to_crm"}
    for run_id, counts in await pool.fetch("SELECT id, counts FROM sync.runs"):
        tally: dict[str, dict[str, int]] = {}
        for side, operation, n in await pool.fetch(
            "SELECT side, operation, count(*) FROM sync.audit WHERE run_id = $1 GROUP BY 1, 2",
            run_id,
        ):
            tally.setdefault(direction[side], {})[operation] = n
        assert tally == counts.get("contact", {}), run_id
