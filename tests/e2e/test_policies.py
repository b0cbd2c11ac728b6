"""Conflicts under each policy, initial matching without duplicates, failures, dry runs."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from sync_service.db.queue import PassKind
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

BOX = "dave@sim.example"


async def _linked_contact(h: Harness, user: str) -> tuple[str, str]:
    crm_id = await h.pool.fetchval(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name, company, job_title) "
        "VALUES ($1, 'Alan', 'Turing', 'Bletchley', 'Cryptanalyst') RETURNING id",
        user,
    )
    assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
    [item] = await h.items(BOX, "contacts")
    return str(crm_id), item["id"]


@pytest.mark.parametrize(
    ("policy", "company", "title"),
    [
        ("crm_wins", "CRM Ltd", "CRM title"),
        ("exchange_wins", "Outlook Ltd", "Outlook title"),
        # newest_wins: the Outlook edit is made after the CRM edit, so Outlook is newer.
        ("newest_wins", "Outlook Ltd", "Outlook title"),
        # merge: company changed on both sides -> fallback crm_wins; job title only in Outlook.
        ("merge", "CRM Ltd", "Outlook title"),
    ],
)
async def test_conflict_resolved_by_policy(
    pool: asyncpg.Pool, policy: str, company: str, title: str, backend: str
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
        assert await h.sync(BOX) == Done("ok")
        row = await pool.fetchrow(
            "SELECT company, job_title FROM crm.contacts WHERE id = $1", crm_id
        )
        [item] = await h.items(BOX, "contacts")
        assert (row["company"], row["job_title"]) == (company, title)
        assert (item["fields"]["CompanyName"], item["fields"]["JobTitle"]) == (company, title)


async def test_initial_pass_over_50_shared_contacts_creates_no_duplicates(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        for i in range(50):
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
                "VALUES ($1, 'First', $2, $3)",
                user,
                f"Person{i:02d}",
                f"p{i}@example.com",
            )
            await h.owner(
                "POST",
                f"/mailboxes/{BOX}/items",
                {
                    "folder": "contacts",
                    "fields": {
                        "GivenName": "First",
                        "Surname": f"Person{i:02d}",
                        # Case differs: matching compares addresses without case.
                        "EmailAddresses": {"EmailAddress1": f"P{i}@Example.com"},
                    },
                },
            )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert len(await h.items(BOX, "contacts")) == 50
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 50
        assert await h.links(BOX) == 50
        counters = h.sim.sim.counters()["requests"]
        assert counters.get("CreateItem", 0) == 0


async def test_a_mailbox_that_may_not_be_impersonated_is_disabled_while_others_sync(
    pool: asyncpg.Pool,
) -> None:
    """EWS only: Graph has no impersonation (app permissions cover every mailbox)."""
    config = SimulatorConfig(impersonable=frozenset({"ok@sim.example"}))
    async with harness(pool, config) as h:
        ok_user, _ = await h.add_user("ok@sim.example")
        await h.add_user("denied@sim.example")
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Fine')", ok_user
        )
        assert await h.sync("denied@sim.example", PassKind.INITIAL) == Done("failed", failed=True)
        assert await h.sync("ok@sim.example", PassKind.INITIAL) == Done("ok")
        denied = await h.store.mailbox_by_email("denied@sim.example")
        assert denied is not None and denied.state == "disabled"
        assert denied.state_reason is not None and "ImpersonateUserDenied" in denied.state_reason
        assert len(await h.items("ok@sim.example", "contacts")) == 1


async def _snapshot_tables(pool: asyncpg.Pool) -> dict[str, list[str]]:
    tables = [
        "sync.item_links",
        "sync.folder_links",
        "sync.crm_watermarks",
        "sync.mailboxes",
        "sync.item_errors",
        "crm.contacts",
        "crm.tasks",
        "crm.appointments",
        "crm.change_log",
    ]
    return {
        t: sorted(str(tuple(r)) for r in await pool.fetch(f"SELECT * FROM {t}")) for t in tables
    }


async def test_dry_run_changes_nothing_and_reports_the_plan(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Dry')", user
        )
        await h.owner(
            "POST", f"/mailboxes/{BOX}/items", {"folder": "contacts", "fields": {"Surname": "Wet"}}
        )
        tables = await _snapshot_tables(pool)
        items = await h.items(BOX, "contacts")
        writes_before = {
            k: v
            for k, v in h.sim.sim.counters()["requests"].items()
            if k
            in (
                "CreateItem",
                "UpdateItem",
                "DeleteItem",
                "CreateUserConfiguration",
                "UpdateUserConfiguration",
            )
        }
        assert await h.sync(BOX, PassKind.INITIAL, dry_run=True) == Done("ok")
        assert await _snapshot_tables(pool) == tables
        assert await h.items(BOX, "contacts") == items
        writes_after = {
            k: v
            for k, v in h.sim.sim.counters()["requests"].items()
            if k in writes_before or k in ("CreateItem", "UpdateItem", "DeleteItem")
        }
        assert writes_after == writes_before
        plan = await pool.fetchval("SELECT plan FROM sync.runs ORDER BY id DESC LIMIT 1")
        assert "create_exchange" in plan.replace(" ", "_") or "Dry" in plan
        assert "Wet" in plan


async def test_a_mass_deletion_quarantines_the_mailbox(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, env={"SYNC_DELETE_GUARD_COUNT": "5"}, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        for i in range(10):
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, $2)", user, f"N{i}"
            )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        await pool.execute("DELETE FROM crm.contacts WHERE owner_id = $1", user)
        assert await h.sync(BOX) == Done("guarded", failed=True)
        mailbox = await h.store.mailbox_by_email(BOX)
        assert mailbox is not None and mailbox.state == "quarantined"
        assert len(await h.items(BOX, "contacts")) == 10  # nothing deleted
