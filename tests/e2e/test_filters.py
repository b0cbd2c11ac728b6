"""Sync filters over HTTP to the simulator, both backends: each filter keeps its items out in
both directions; an item that leaves a filter is left as it is on both sides (nothing deleted,
nothing written) and comes back linked, without a duplicate; a private item never reaches the
other side; a mailbox's setting overrides its server's key by key."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ews_client.models import EntityKind
from sync_service.db.filters import FilterStore
from sync_service.db.links import LinkStore
from sync_service.db.queue import PassKind
from sync_service.db.store import NewServer, Store
from sync_service.planning.filters import Screened
from sync_service.planning.state import SyncedRow
from sync_service.process import main as cli
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.operator.apiclient import AUTH, api_client
from tests.operator.apiclient import SERVER as API_SERVER

BOX = "filters@sim.example"
SOON = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
PASSES = (PassKind.EXPRESS, PassKind.COMPLETE)


async def _new(h: Harness, folder: str, fields: dict[str, Any]) -> str:
    created = await h.owner("POST", f"/mailboxes/{BOX}/items", {"folder": folder, "fields": fields})
    return str(created["id"])


async def _by(h: Harness, folder: str, field: str) -> dict[str, dict[str, Any]]:
    return {str(i["fields"][field]): i for i in await h.items(BOX, folder)}


async def _patch(h: Harness, item_id: str, fields: dict[str, Any]) -> None:
    await h.owner("PATCH", f"/mailboxes/{BOX}/items/{item_id}", {"fields": fields})


async def _state(h: Harness, table: str, folder: str) -> tuple[list[tuple[Any, ...]], Any]:
    """Every CRM row of the table (id, version) and every item of the folder (id, change key):
    a write anywhere moves one of them."""
    rows = await h.pool.fetch(f"SELECT id, version FROM crm.{table} ORDER BY id")
    items = sorted((i["id"], i["change_key"]) for i in await h.items(BOX, folder))
    return [tuple(r) for r in rows], items


async def _parked(h: Harness) -> int:
    return int(await h.pool.fetchval("SELECT count(*) FROM sync.parked_links"))


async def test_categories_both_ways_and_an_item_that_loses_its_category(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await FilterStore(pool).set_server_setting("sim", {"categories": ["CRM"]})
        user, _ = await h.add_user(BOX)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name, categories) "
            "VALUES ($1, 'Lovelace', '{CRM}'), ($1, 'Babbage', '{}')",
            user,
        )
        hopper = await _new(h, "contacts", {"Surname": "Hopper", "Categories": ["crm"]})
        await _new(h, "contacts", {"Surname": "Knuth", "Categories": ["Personal"]})
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        items = await _by(h, "contacts", "Surname")
        assert sorted(items) == ["Hopper", "Knuth", "Lovelace"]
        assert ">CRM</" in items["Lovelace"]["fields"]["Categories"]  # written with it
        names = "SELECT last_name FROM crm.contacts ORDER BY last_name"
        assert [r[0] for r in await pool.fetch(names)] == ["Babbage", "Hopper", "Lovelace"]
        assert await h.links(BOX) == 2

        # Hopper loses the category in Outlook and is edited: it leaves the sync. Nothing is
        # deleted or written on either side by any pass, the CRM's edit of it stays there.
        await _patch(h, hopper, {"Categories": ["Personal"], "JobTitle": "Admiral"})
        # A dry run plans nothing for it and sets nothing aside.
        assert await h.sync(BOX, dry_run=True) == Done("ok")
        assert (await h.links(BOX), await _parked(h)) == (2, 0)
        plan = await pool.fetchval("SELECT plan FROM sync.runs WHERE dry_run ORDER BY id DESC")
        assert plan is not None and "Hopper" not in plan, plan
        assert await h.sync(BOX) == Done("ok")
        await pool.execute("UPDATE crm.contacts SET company = 'Navy' WHERE last_name = 'Hopper'")
        before = await _state(h, "contacts", "contacts")
        for kind in (*PASSES, PassKind.INITIAL):
            assert await h.sync(BOX, kind) == Done("ok")
            assert await _state(h, "contacts", "contacts") == before, kind
        assert (await h.links(BOX), await _parked(h)) == (1, 1)
        hopper_row = await pool.fetchrow(
            "SELECT company, job_title FROM crm.contacts WHERE last_name = 'Hopper'"
        )
        assert tuple(hopper_row) == ("Navy", None)

        # The category back: linked again (no second Hopper anywhere) and reconciled as a
        # linked pair edited on both sides: the conflict policy (the CRM's record wins).
        await _patch(h, hopper, {"Categories": ["CRM"]})
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert (await h.links(BOX), await _parked(h)) == (2, 0)
        assert [r[0] for r in await pool.fetch(names)] == ["Babbage", "Hopper", "Lovelace"]
        items = await _by(h, "contacts", "Surname")
        assert sorted(items) == ["Hopper", "Knuth", "Lovelace"]
        assert items["Hopper"]["fields"]["CompanyName"] == "Navy"
        assert "JobTitle" not in items["Hopper"]["fields"]
        before = await _state(h, "contacts", "contacts")
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert await _state(h, "contacts", "contacts") == before


async def test_an_item_entering_the_filter_is_linked_to_its_counterpart_not_copied(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await FilterStore(pool).set_server_setting("sim", {"categories": ["CRM"]})
        user, _ = await h.add_user(BOX)
        email = {"EmailAddresses": {"EmailAddress1": "alan@bletchley.test"}}
        await _new(h, "contacts", {"Surname": "Turing", "JobTitle": "Fellow", **email})
        turing = await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, last_name, email) "
            "VALUES ($1, 'Turing', 'alan@bletchley.test') RETURNING id",
            user,
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert await h.links(BOX) == 0  # both out: neither is copied nor paired

        # The CRM record is given the category: the express pass pairs it with the Outlook
        # contact (matched by address, as an initial pass does) instead of making a second.
        await pool.execute("UPDATE crm.contacts SET categories = '{CRM}' WHERE id = $1", turing)
        assert await h.sync(BOX) == Done("ok")
        items = await h.items(BOX, "contacts")
        assert len(items) == 1 and ">CRM</" in items[0]["fields"]["Categories"]
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 1
        assert await h.links(BOX) == 1
        before = await _state(h, "contacts", "contacts")
        for kind in PASSES:
            assert await h.sync(BOX, kind) == Done("ok")
            assert await _state(h, "contacts", "contacts") == before, kind

        # The other way: an Outlook contact given the category pairs with its CRM counterpart,
        # and keeps it though the CRM's record wins the conflict.
        email = {"EmailAddresses": {"EmailAddress1": "ada@analytical.test"}}
        ada = await _new(h, "contacts", {"Surname": "Lovelace", "Categories": ["Own"], **email})
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name, email, company) "
            "VALUES ($1, 'Lovelace', 'ada@analytical.test', 'Engine Ltd')",
            user,
        )
        assert await h.sync(BOX, PassKind.COMPLETE) == Done("ok")
        assert await h.links(BOX) == 1
        await _patch(h, ada, {"Categories": ["Own", "CRM"]})
        assert await h.sync(BOX) == Done("ok")
        assert await h.links(BOX) == 2
        assert await pool.fetchval("SELECT count(*) FROM crm.contacts") == 2
        categories = "SELECT categories FROM crm.contacts WHERE last_name = 'Lovelace'"
        assert await pool.fetchval(categories) == ["CRM"]
        items = await _by(h, "contacts", "Surname")
        assert sorted(items) == ["Lovelace", "Turing"]
        assert ">CRM</" in items["Lovelace"]["fields"]["Categories"]
        assert items["Lovelace"]["fields"]["CompanyName"] == "Engine Ltd"


async def test_a_private_appointment_never_reaches_the_other_side(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await FilterStore(pool).set_server_setting("sim", {"exclude_private": True})
        user, _ = await h.add_user(BOX)
        await pool.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at, sensitivity) "
            "VALUES ($1, 'Doctor', $2, $3, 'private'), ($1, 'Review', $2, $3, 'normal')",
            user,
            SOON,
            SOON + timedelta(hours=1),
        )
        span = {"Start": SOON.isoformat(), "End": (SOON + timedelta(hours=1)).isoformat()}
        await _new(h, "calendar", {"Subject": "Dentist", "Sensitivity": "Private", **span})
        lunch = await _new(h, "calendar", {"Subject": "Lunch", **span})
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert sorted(await _by(h, "calendar", "Subject")) == ["Dentist", "Lunch", "Review"]
        subjects = "SELECT subject FROM crm.appointments ORDER BY subject"
        assert [r[0] for r in await pool.fetch(subjects)] == ["Doctor", "Lunch", "Review"]

        # Lunch made private in Outlook, with a new subject: it leaves, the CRM keeps its copy
        # as it was; the private CRM appointment edited: still nothing reaches Exchange.
        await _patch(h, lunch, {"Sensitivity": "Private", "Subject": "Lunch with Ann"})
        await pool.execute(
            "UPDATE crm.appointments SET location = 'Clinic' WHERE subject = 'Doctor'"
        )
        for kind in PASSES:
            assert await h.sync(BOX, kind) == Done("ok")
            assert [r[0] for r in await pool.fetch(subjects)] == ["Doctor", "Lunch", "Review"]
            assert sorted(await _by(h, "calendar", "Subject")) == [
                "Dentist",
                "Lunch with Ann",
                "Review",
            ]
        assert (await h.links(BOX), await _parked(h)) == (1, 1)

        # Review made private in the CRM, renamed: Outlook keeps it as it was.
        await pool.execute(
            "UPDATE crm.appointments SET sensitivity = 'private', subject = 'Review (HR)' "
            "WHERE subject = 'Review'"
        )
        for kind in PASSES:
            assert await h.sync(BOX, kind) == Done("ok")
            assert sorted(await _by(h, "calendar", "Subject")) == [
                "Dentist",
                "Lunch with Ann",
                "Review",
            ]
        assert (await h.links(BOX), await _parked(h)) == (0, 2)


async def test_categories_select_tasks_and_appointments_too(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await FilterStore(pool).set_server_setting("sim", {"categories": ["CRM"]})
        user, _ = await h.add_user(BOX)
        await pool.execute(
            "INSERT INTO crm.tasks (owner_id, subject, categories) "
            "VALUES ($1, 'Call back', '{CRM}'), ($1, 'Water plants', '{}')",
            user,
        )
        await pool.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at, categories) "
            "VALUES ($1, 'Board', $2, $3, '{CRM}'), ($1, 'Gym', $2, $3, '{}')",
            user,
            SOON,
            SOON + timedelta(hours=1),
        )
        await _new(h, "tasks", {"Subject": "Send offer", "Categories": ["CRM"]})
        await _new(h, "tasks", {"Subject": "Buy milk"})
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert sorted(await _by(h, "tasks", "Subject")) == ["Buy milk", "Call back", "Send offer"]
        assert sorted(await _by(h, "calendar", "Subject")) == ["Board"]
        tasks = "SELECT subject FROM crm.tasks ORDER BY subject"
        assert [r[0] for r in await pool.fetch(tasks)] == [
            "Call back",
            "Send offer",
            "Water plants",
        ]


async def test_a_calendar_range_and_an_appointment_moved_out_of_it(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        await FilterStore(pool).set_server_setting("sim", {"calendar_range": "-30d:+365d"})
        user, _ = await h.add_user(BOX)
        old = SOON - timedelta(days=90)
        await pool.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "VALUES ($1, 'Long ago', $2, $3), ($1, 'Soon', $4, $5)",
            user,
            old,
            old + timedelta(hours=1),
            SOON,
            SOON + timedelta(hours=1),
        )
        far = SOON + timedelta(days=500)
        await _new(
            h,
            "calendar",
            {
                "Subject": "Far",
                "Start": far.isoformat(),
                "End": (far + timedelta(hours=1)).isoformat(),
            },
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        items = await _by(h, "calendar", "Subject")
        assert sorted(items) == ["Far", "Soon"]
        subjects = "SELECT subject FROM crm.appointments ORDER BY subject"
        assert [r[0] for r in await pool.fetch(subjects)] == ["Long ago", "Soon"]

        # Soon moved two years ahead in Outlook: it leaves, nothing deleted or written.
        later = SOON + timedelta(days=730)
        moved = {"Start": later.isoformat(), "End": (later + timedelta(hours=1)).isoformat()}
        await _patch(h, items["Soon"]["id"], moved)
        await pool.execute("UPDATE crm.appointments SET location = 'Hall' WHERE subject = 'Soon'")
        for kind in PASSES:
            assert await h.sync(BOX, kind) == Done("ok")
            assert [r[0] for r in await pool.fetch(subjects)] == ["Long ago", "Soon"]
            assert sorted(await _by(h, "calendar", "Subject")) == ["Far", "Soon"]
        starts = "SELECT starts_at FROM crm.appointments WHERE subject = 'Soon'"
        assert await pool.fetchval(starts) == SOON
        assert (await h.links(BOX), await _parked(h)) == (0, 1)


async def test_a_blocked_domain_and_a_mailbox_that_overrides_its_server(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        filters = FilterStore(pool)
        await filters.set_server_setting("sim", {"categories": ["CRM"], "block": ["example.org"]})
        user, _ = await h.add_user(BOX)
        # The mailbox syncs every category but keeps the server's block list.
        await filters.set_mailbox_setting(BOX, {"categories": []})
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name, email) "
            "VALUES ($1, 'Spam', 'x@mail.example.org'), ($1, 'Ada', 'ada@example.com')",
            user,
        )
        await _new(
            h,
            "contacts",
            {"Surname": "Eve", "EmailAddresses": {"EmailAddress1": "eve@example.org"}},
        )
        grace = await _new(
            h,
            "contacts",
            {"Surname": "Grace", "EmailAddresses": {"EmailAddress1": "grace@navy.test"}},
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        assert sorted(await _by(h, "contacts", "Surname")) == ["Ada", "Eve", "Grace"]
        names = "SELECT last_name FROM crm.contacts ORDER BY last_name"
        assert [r[0] for r in await pool.fetch(names)] == ["Ada", "Grace", "Spam"]

        # Grace's address moves to a blocked domain: she leaves; her CRM record is kept as is.
        await _patch(h, grace, {"EmailAddresses": {"EmailAddress1": "grace@example.org"}})
        for kind in PASSES:
            assert await h.sync(BOX, kind) == Done("ok")
            assert [r[0] for r in await pool.fetch(names)] == ["Ada", "Grace", "Spam"]
        email = "SELECT email FROM crm.contacts WHERE last_name = 'Grace'"
        assert await pool.fetchval(email) == "grace@navy.test"
        assert (await h.links(BOX), await _parked(h)) == (1, 1)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse: bad usage (2)
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_cli_sets_and_shows_filters_of_servers_and_mailboxes(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_DATABASE_URL", db_url)
    url = "https://ex1.example.com/EWS/Exchange.asmx"
    add = ["servers", "add", "ex1", "--backend", "ews", "--url", url, "--username", "svc"]
    assert _cli(capsys, *add, "--password-env", "EXCHANGE_EX1_PASSWORD")[0] == 0
    csv = "crm_user_id,email,server\nu1,alice@sim.example,ex1\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(csv))
    assert _cli(capsys, "mailboxes", "import", "-")[0] == 0

    flags = ["--filter-categories", "CRM,Clients", "--exclude-private"]
    flags += ["--calendar-range", "-30d:+365d", "--block-domain", "Example.org"]
    code, out, _ = _cli(capsys, "servers", "set", "ex1", *flags)
    assert code == 0
    wanted = "categories CRM, Clients; private excluded; calendar -30d:+365d; blocked example.org"
    assert out.strip() == f"server ex1: filters {wanted}"
    code, out, _ = _cli(capsys, "servers", "show", "ex1", "--json")
    assert json.loads(out)["filters"] == {
        "categories": ["CRM", "Clients"],
        "exclude_private": True,
        "calendar_range": "-30d:+365d",
        "block": ["example.org"],
    }

    # The mailbox overrides two keys; the others come from its server.
    args = ["mailboxes", "set", "alice@sim.example", "--filter-categories", "", "--no-block"]
    code, out, _ = _cli(capsys, *args)
    assert code == 0 and "filters categories any; private excluded;" in out
    code, out, _ = _cli(capsys, "mailboxes", "show", "alice@sim.example", "--json")
    shown = json.loads(out)["filters"]
    assert shown["own"] == {"categories": [], "block": []}
    assert shown["effective"] == {
        "categories": [],
        "exclude_private": True,
        "calendar_range": "-30d:+365d",
        "block": [],
    }
    code, out, _ = _cli(capsys, "mailboxes", "show", "alice@sim.example")
    assert "  own:          categories any; blocked none\n" in out
    args = ["mailboxes", "set", "alice@sim.example", "--inherit-filters", "--json"]
    assert _cli(capsys, *args)[0] == 0
    code, out, _ = _cli(capsys, "mailboxes", "show", "alice@sim.example", "--json")
    assert json.loads(out)["filters"]["own"] == {}

    # Bad input names its key and exits 2, nothing stored.
    code, _, err = _cli(capsys, "servers", "set", "ex1", "--calendar-range", "30 days")
    assert code == 2 and "calendar_range" in err, err
    code, _, err = _cli(capsys, "servers", "set", "ex1", "--block-email", "not an address")
    assert code == 2 and "block" in err, err
    code, _, err = _cli(capsys, "servers", "set", "nope", "--exclude-private")
    assert code == 2 and "nope" in err, err


async def test_the_api_reads_and_changes_filters(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:

        async def call(method: str, path: str, status: int, body: Any = None) -> Any:
            resp = await client.request(method, f"/api/v1{path}", headers=AUTH, json=body)
            assert resp.status == status, await resp.text()
            return await resp.json(content_type=None)

        await call("POST", "/servers", 201, API_SERVER)
        csv = "crm_user_id,email,server\nu1,alice@example.com,ex1\n"
        resp = await client.post("/api/v1/mailboxes/import", headers=AUTH, data=csv)
        assert resp.status == 200, await resp.text()

        assert await call("GET", "/servers/ex1/filters", 200) == {"server": "ex1", "filters": {}}
        body = {"categories": ["CRM"], "calendar_range": "-7d:+30d"}
        answer = await call("PATCH", "/servers/ex1/filters", 200, body)
        assert answer["filters"] == body
        answer = await call("PATCH", "/servers/ex1/filters", 200, {"block": ["Example.org"]})
        assert answer["filters"] == {**body, "block": ["example.org"]}

        box = "/mailboxes/alice@example.com/filters"
        answer = await call("PATCH", box, 200, {"calendar_range": None, "exclude_private": True})
        assert answer["own"] == {"calendar_range": None, "exclude_private": True}
        assert answer["effective"] == {
            "categories": ["CRM"],
            "exclude_private": True,
            "calendar_range": None,
            "block": ["example.org"],
        }
        answer = await call("PATCH", box, 200, {"inherit": ["calendar_range"]})
        assert answer["own"] == {"exclude_private": True}
        assert answer["effective"]["calendar_range"] == "-7d:+30d"
        shown = await call("GET", "/mailboxes/alice@example.com", 200)
        assert shown["filters"] == answer

        # Bad input: a problem naming the key, nothing changed.
        for path, bad, key in (
            ("/servers/ex1/filters", {"calendar_range": "soon"}, "calendar_range"),
            ("/servers/ex1/filters", {"colour": "red"}, "colour"),
            ("/servers/ex1/filters", {"block": ["no such domain"]}, "block"),
            (box, {"inherit": ["colour"]}, "inherit"),
        ):
            problem = await call("PATCH", path, 400, bad)
            assert problem["field"] == key, problem
        deep = b"[" * 10_000 + b"]" * 10_000
        for path in ("/servers/ex1/filters", box):
            resp = await client.patch(f"/api/v1{path}", headers=AUTH, data=deep)
            assert resp.status == 400 and (await resp.json())["field"] == "body"
        assert (await call("GET", box, 200)) == answer
        await call("GET", "/servers/nope/filters", 404)
        await call("PATCH", "/mailboxes/nobody@example.com/filters", 404, {})


async def test_rows_are_set_aside_and_come_back_as_they_were(pool: asyncpg.Pool) -> None:
    store = Store(pool)
    server = await store.add_server(NewServer("ex1", "ews", "https://ex1.test/EWS", "basic"))
    async with pool.acquire() as conn:
        mailbox, _ = await store.upsert_mailbox(conn, "u1", BOX, server.id, None, ("two-way",) * 3)
    columns = "crm_id, exchange_id, change_key, crm_hash, exchange_hash, synced_fields, pending"
    await pool.execute(
        f"INSERT INTO sync.item_links (mailbox_id, entity, {columns}, intent_run) VALUES "
        "($1, 'contact', 'c1', 'x1', 'k1', 'h1', 'h2', '{\"a\": 1}', '', 7), "
        "($1, 'contact', 'c2', 'x2', 'k2', 'h3', 'h4', '{}', '', NULL)",
        mailbox.id,
    )
    links = await LinkStore(pool).links(mailbox.id, "contact")
    rows = {r.crm_id: SyncedRow(r.crm_id, r.exchange_id, r.change_key, r.crm_hash,
                                r.exchange_hash, r.synced_fields) for r in links}  # fmt: skip
    filters = FilterStore(pool)
    contact = EntityKind.CONTACT
    await filters.settle(mailbox.id, contact, _screened(leaving=list(rows.values())))
    assert await pool.fetchval("SELECT count(*) FROM sync.item_links") == 0
    assert {r.crm_id: r for r in await filters.parked(mailbox.id, contact)} == rows
    assert (await filters.for_mailbox(mailbox.id)).parked == {"contact"}

    # c1 comes back under a new item id; c2's item was linked to another record meanwhile:
    # that link is kept, c2's parked row goes.
    await pool.execute(
        f"INSERT INTO sync.item_links (mailbox_id, entity, {columns}) "
        "VALUES ($1, 'contact', 'c9', 'x2', 'k9', 'h9', 'h9', '{}', '')",
        mailbox.id,
    )
    back = [replace(rows["c1"], exchange_id="y1", change_key=""), rows["c2"]]
    await filters.settle(mailbox.id, contact, _screened(entering=back))
    found = await pool.fetch(f"SELECT {columns}, intent_run FROM sync.item_links ORDER BY crm_id")
    assert [tuple(r) for r in found] == [
        ("c1", "y1", "", "h1", "h2", {"a": 1}, "", 7),
        ("c9", "x2", "k9", "h9", "h9", {}, "", None),
    ]
    assert await filters.parked(mailbox.id, contact) == []


def _screened(
    leaving: list[SyncedRow] | None = None, entering: list[SyncedRow] | None = None
) -> Screened:
    empty: frozenset[str] = frozenset()
    return Screened({}, [], [], empty, empty, leaving or [], entering or [], [])
