"""Passes that cover some entities only, both backends, over HTTP to the simulator.

A contacts-only run syncs the contacts both ways and leaves calendar and tasks untouched: their
sync states and CRM watermarks do not move, and no call of the pass names their folders (every
call the pass makes to the Exchange client is recorded at the client's interface).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ews_client import Appointment, Contact, EntityKind, Task
from sync_service.db.queue import Entities, PassKind
from sync_service.db.store import Server
from sync_service.dispatcher.sweeps import Sweeper
from sync_service.operator.operations import Operations
from sync_service.operator.schedules import Schedules, ScheduleSpec
from sync_service.process import main as cli
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness
from tests.operator.apiclient import AUTH, SERVER, api_client
from tests.operator.conftest import add_server_args

BOX = "dora@sim.example"
SOON = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
ITEM_KINDS = {Contact: EntityKind.CONTACT, Appointment: EntityKind.APPOINTMENT,
              Task: EntityKind.TASK}  # fmt: skip


def _entities_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> set[EntityKind]:
    found: set[EntityKind] = set()
    for value in (*args, *kwargs.values()):
        values = value if isinstance(value, list | tuple) else [value]
        for one in values:
            if isinstance(one, EntityKind):
                found.add(one)
            elif type(one) in ITEM_KINDS:
                found.add(ITEM_KINDS[type(one)])
    return found


@dataclass
class _Recording:
    """The real client, every call's entities (named or implied by an item) recorded."""

    inner: Any
    seen: set[EntityKind] = field(default_factory=set)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.seen |= _entities_of(args, kwargs)
            return attr(*args, **kwargs)

        return call


@dataclass
class _RecordingBackends:
    inner: Any
    recording: _Recording | None = None

    async def get(self, server: Server) -> Any:
        client = await self.inner.get(server)
        if self.recording is None or self.recording.inner is not client:
            self.recording = _Recording(client)
        return self.recording


async def _states(pool: asyncpg.Pool, mailbox_id: int) -> dict[str, tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT f.entity, f.sync_state, w.last_seq FROM sync.folder_links f "
        "JOIN sync.crm_watermarks w USING (mailbox_id, entity) WHERE f.mailbox_id = $1",
        mailbox_id,
    )
    return {r["entity"]: (r["sync_state"], r["last_seq"]) for r in rows}


async def _scoped_pass(h: Harness, entities: frozenset[EntityKind]) -> set[EntityKind]:
    """Queue an express pass of `entities`, run it, and return the entities its calls named."""
    mailbox = await h.store.mailbox_by_email(BOX)
    assert mailbox is not None
    await h.settle()
    await h.queue.enqueue(mailbox.id, PassKind.EXPRESS, source="test", entities=entities)
    [job] = await h.queue.claim("e2e", 1)
    assert job.entities == entities
    backends = _RecordingBackends(h.runner.backends)
    original, h.runner.backends = h.runner.backends, backends  # type: ignore[assignment]
    try:
        result = await h.runner(job)
    finally:
        h.runner.backends = original
    assert result == Done("ok"), result
    await h.queue.finish(job.id, "e2e", failed=False, outcome="ok")
    assert backends.recording is not None
    return backends.recording.seen


async def _edit_every_entity(h: Harness, user: str, tag: str) -> None:
    """A new record of each entity in the CRM and a new item in each folder of the mailbox."""
    await h.pool.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'Ann', $2)",
        user,
        f"Crm contact {tag}",
    )
    await h.pool.execute(
        "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
        "VALUES ($1, $2, $3, $4)",
        user,
        f"Crm meeting {tag}",
        SOON,
        SOON + timedelta(hours=1),
    )
    await h.pool.execute(
        "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, $2)", user, f"Crm task {tag}"
    )
    start = SOON + timedelta(days=1)
    for folder, fields in (
        ("contacts", {"GivenName": "Bo", "Surname": f"Outlook contact {tag}"}),
        (
            "calendar",
            {
                "Subject": f"Outlook meeting {tag}",
                "Start": start.isoformat(),
                "End": (start + timedelta(hours=1)).isoformat(),
            },
        ),
        ("tasks", {"Subject": f"Outlook task {tag}"}),
    ):
        await h.owner("POST", f"/mailboxes/{BOX}/items", {"folder": folder, "fields": fields})


async def _crm_names(pool: asyncpg.Pool, user: str) -> dict[str, set[str]]:
    queries = {
        "contact": "SELECT last_name AS n FROM crm.contacts WHERE owner_id = $1",
        "appointment": "SELECT subject AS n FROM crm.appointments WHERE owner_id = $1",
        "task": "SELECT subject AS n FROM crm.tasks WHERE owner_id = $1",
    }
    return {e: {r["n"] for r in await pool.fetch(q, user)} for e, q in queries.items()}


async def _exchange_names(h: Harness) -> dict[str, set[str]]:
    keys = {"contact": ("contacts", "Surname"), "appointment": ("calendar", "Subject"),
            "task": ("tasks", "Subject")}  # fmt: skip
    return {
        entity: {i["fields"].get(key, "") for i in await h.items(BOX, folder)}
        for entity, (folder, key) in keys.items()
    }


async def _in_sync(h: Harness, user: str, tag: str) -> dict[str, bool]:
    """Per entity: whether both of `tag`'s new records are on both sides."""
    crm, exchange = await _crm_names(h.pool, user), await _exchange_names(h)
    words = {"contact": "contact", "appointment": "meeting", "task": "task"}
    return {
        entity: all(
            f"{side} {word} {tag}" in crm[entity] and f"{side} {word} {tag}" in exchange[entity]
            for side in ("Crm", "Outlook")
        )
        for entity, word in words.items()
    }


async def test_a_contacts_only_run_leaves_calendar_and_tasks_untouched(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, mailbox = await h.add_user(BOX)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        await _edit_every_entity(h, user, "one")
        before = await _states(pool, mailbox.id)
        assert set(before) == {"contact", "appointment", "task"}
        synced = h.sim.sim.requests["SyncFolderItems"]

        touched = await _scoped_pass(h, frozenset({EntityKind.CONTACT}))

        assert touched == {EntityKind.CONTACT}, "the pass named another entity's folder"
        if backend == "ews":  # and the server saw one folder read: the contacts'
            assert h.sim.sim.requests["SyncFolderItems"] - synced == 1
        after = await _states(pool, mailbox.id)
        assert after["appointment"] == before["appointment"]
        assert after["task"] == before["task"]
        assert after["contact"] != before["contact"]
        assert await _in_sync(h, user, "one") == {
            "contact": True,
            "appointment": False,
            "task": False,
        }
        run = await pool.fetchrow(
            "SELECT entities, counts FROM sync.runs WHERE mailbox_id = $1 ORDER BY id DESC LIMIT 1",
            mailbox.id,
        )
        assert run["entities"] == ["contact"] and set(run["counts"]) == {"contact"}

        # The calendar and tasks on their own run later: nothing of theirs was lost.
        touched = await _scoped_pass(h, frozenset({EntityKind.APPOINTMENT, EntityKind.TASK}))
        assert touched == {EntityKind.APPOINTMENT, EntityKind.TASK}
        assert await _in_sync(h, user, "one") == dict.fromkeys(before, True)
        assert (await _states(pool, mailbox.id))["contact"] == after["contact"]


async def test_a_first_pass_covers_every_entity_whatever_was_asked(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        await _edit_every_entity(h, user, "first")
        touched = await _scoped_pass(h, frozenset({EntityKind.TASK}))
        assert touched == set(EntityKind)
        assert await _in_sync(h, user, "first") == dict.fromkeys(
            ("contact", "appointment", "task"), True
        )


BOXES = "crm_user_id,email,server,group\nu1,alice@example.com,ex1,paris\n"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


async def _open_jobs(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT kind, entities, status FROM sync.jobs ORDER BY id")
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


def test_sync_entity_queues_a_job_of_those_entities(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_DATABASE_URL", db_url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the CLI installs its own log handler
    try:
        assert _cli(capsys, *add_server_args("ex1"))[0] == 0
        monkeypatch.setattr("sys.stdin", io.StringIO(BOXES))
        assert _cli(capsys, "mailboxes", "import", "-")[0] == 0
        code, out, err = _cli(
            capsys, "sync", "--mailbox", "alice@example.com", "--entity", "contacts"
        )
        assert code == 0, err
        assert "queued express of contacts for 1 mailbox(es)" in out
        assert asyncio.run(_open_jobs(db_url)) == [("express", ["contact"], "queued")]
        code, out, _ = _cli(capsys, "sync", "--group", "paris", "--entity", "calendar", "--json")
        assert code == 0 and json.loads(out)["entities"] == ["calendar"]
        # coalesced into the queued job, which now covers both
        assert asyncio.run(_open_jobs(db_url)) == [
            ("express", ["appointment", "contact"], "queued")
        ]
        code, _, err = _cli(capsys, "sync", "--server", "ex1", "--entity", "tasks,notes")
        assert code == 2 and "entities: 'notes' is not an entity" in err
        code, _, _ = _cli(capsys, "sync", "--server", "ex1", "--entity", "tasks", "--entity",
                          "contacts")  # fmt: skip
        assert code == 0
        # every entity named: the job covers every entity (NULL)
        assert asyncio.run(_open_jobs(db_url)) == [("express", None, "queued")]
    finally:
        root.handlers[:], root.level = handlers, level


async def test_the_api_queues_passes_of_some_entities(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        resp = await client.post("/api/v1/servers", json=SERVER, headers=AUTH)
        assert resp.status == 201, await resp.text()
        resp = await client.post(
            "/api/v1/mailboxes/import", data=BOXES, headers=AUTH | {"Content-Type": "text/csv"}
        )
        assert resp.status == 200, await resp.text()
        body = {"mailbox": "alice@example.com", "entities": ["tasks", "contact"]}
        resp = await client.post("/api/v1/sync", json=body, headers=AUTH)
        assert resp.status == 202, await resp.text()
        assert (await resp.json())["entities"] == ["contacts", "tasks"]
        assert await pool.fetchval("SELECT entities FROM sync.jobs") == ["contact", "task"]
        bad = {"mailbox": "alice@example.com", "entities": ["notes"]}
        resp = await client.post("/api/v1/sync", json=bad, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["field"] == "entities"


MIN = timedelta(minutes=1)


async def _drain(h: Harness) -> dict[int, Entities]:
    """Run every queued job to its end: {mailbox id: the entities its job covered}."""
    await h.settle()
    ran: dict[int, Entities] = {}
    while jobs := await h.queue.claim("e2e", 10):
        for job in jobs:
            result = await h.runner(job)
            assert result == Done("ok"), result
            await h.queue.finish(job.id, "e2e", failed=False, outcome="ok")
            ran[job.mailbox_id] = job.entities
    return ran


async def _outlook_edits(h: Harness, email: str, tag: str) -> None:
    start = SOON + timedelta(days=2)
    for folder, fields in (
        ("contacts", {"GivenName": "Bo", "Surname": f"Outlook contact {tag}"}),
        ("calendar", {"Subject": f"Outlook meeting {tag}", "Start": start.isoformat(),
                      "End": (start + timedelta(hours=1)).isoformat()}),
        ("tasks", {"Subject": f"Outlook task {tag}"}),
    ):  # fmt: skip
        await h.owner("POST", f"/mailboxes/{email}/items", {"folder": folder, "fields": fields})


async def _arrived(pool: asyncpg.Pool, user: str, tag: str) -> set[str]:
    """The entities whose Outlook item of `tag` reached the CRM."""
    names = await _crm_names(pool, user)
    words = {"contact": "contact", "appointment": "meeting", "task": "task"}
    return {e for e, w in words.items() if f"Outlook {w} {tag}" in names[e]}


async def test_per_entity_schedules_fire_at_their_own_cadence(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, box = await h.add_user(BOX)
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        schedules = Schedules(Operations(pool))
        for name, entity, every in (("c", "contacts", "15m"), ("a", "calendar", "5m"),
                                    ("t", "tasks", "1h")):  # fmt: skip
            await schedules.set(name, ScheduleSpec(server="sim", entities=[entity], every=every))
        sweeper = Sweeper(pool, e2e_settings())
        start = await pool.fetchval("SELECT now()")  # the passes are dated in database time
        arrived: dict[int, set[str]] = {}
        for minute in (4, 5, 10, 15, 20, 60):
            await _outlook_edits(h, BOX, f"m{minute}")
            await sweeper.tick(start + minute * MIN)
            await _drain(h)
            arrived[minute] = await _arrived(pool, user, f"m{minute}")
        assert arrived[4] == set()
        assert arrived[5] == arrived[10] == arrived[20] == {"appointment"}
        # the contacts pass at 15 also brings the contact of 4 and 10; tasks wait for the hour
        assert arrived[15] == {"appointment", "contact"}
        assert arrived[60] == {"appointment", "contact", "task"}
        assert await _arrived(pool, user, "m10") == {"appointment", "contact", "task"}
        runs = await pool.fetch(
            "SELECT entities FROM sync.runs WHERE mailbox_id = $1 ORDER BY id", box.id
        )
        assert [r["entities"] for r in runs] == [
            None,  # the initial pass
            ["appointment"],
            ["appointment"],
            ["appointment", "contact"],
            ["appointment"],
            None,  # everything due at once
        ]


async def test_a_group_schedule_runs_only_its_groups(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        users = {}
        for email, group in (("paris@sim.example", "paris"), ("london@sim.example", "london")):
            users[email], _ = await h.add_user(email)
            await Operations(pool).set_options(email, group=group, set_group=True)
            assert await h.sync(email, PassKind.INITIAL) == Done("ok")
        schedules = Schedules(Operations(pool))
        await schedules.set("quiet", ScheduleSpec(server="sim", every="off"))
        await schedules.set("paris", ScheduleSpec(groups=["paris"], every="5m"))
        sweeper = Sweeper(pool, e2e_settings())
        start = await pool.fetchval("SELECT now()")
        for minute in (5, 10, 30):
            for email in users:
                await _outlook_edits(h, email, f"m{minute}")
            report = await sweeper.tick(start + minute * MIN)
            ran = await _drain(h)
            paris = await h.store.mailbox_by_email("paris@sim.example")
            assert paris is not None and set(report.express) == set(ran) == {paris.id}
            assert await _arrived(pool, users["paris@sim.example"], f"m{minute}") == set(
                ("contact", "appointment", "task")
            )
            assert await _arrived(pool, users["london@sim.example"], f"m{minute}") == set()


def test_schedules_from_the_command_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_DATABASE_URL", db_url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert _cli(capsys, *add_server_args("ex1"))[0] == 0
        code, out, err = _cli(
            capsys, "schedules", "set", "cal", "--server", "ex1", "--entity", "calendar",
            "--every", "5m",
        )  # fmt: skip
        assert code == 0, err
        assert out.strip() == "schedule cal added: calendar of server ex1: express every 300s"
        code, out, _ = _cli(
            capsys, "schedules", "set", "south", "--group", "paris", "rome", "--every", "off"
        )
        assert code == 0 and "every entity of every server, groups paris,rome" in out
        code, out, _ = _cli(capsys, "schedules", "list", "--json")
        assert [(s["name"], s["every"], s["entities"]) for s in json.loads(out)] == [
            ("cal", "300s", ["calendar"]),
            ("south", "off", None),
        ]
        code, out, _ = _cli(capsys, "schedules", "list")
        assert out.splitlines()[1].split() == ["cal", "ex1", "(every)", "calendar", "300s"]
        code, _, err = _cli(capsys, "schedules", "set", "x", "--group", "a", "--every", "soon")
        assert code == 2 and "every:" in err
        code, _, err = _cli(capsys, "schedules", "set", "x", "--server", "nope", "--every", "5m")
        assert code == 2 and "no server named 'nope'" in err
        assert _cli(capsys, "schedules", "remove", "cal")[0] == 0
        code, _, err = _cli(capsys, "schedules", "remove", "cal")
        assert code == 2 and "no schedule named 'cal'" in err
    finally:
        root.handlers[:], root.level = handlers, level


async def test_schedules_over_the_api(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        resp = await client.post("/api/v1/servers", json=SERVER, headers=AUTH)
        assert resp.status == 201, await resp.text()
        body = {"server": "ex1", "entities": ["tasks"], "every": "1h"}
        resp = await client.put("/api/v1/schedules/hourly-tasks", json=body, headers=AUTH)
        assert resp.status == 200, await resp.text()
        made = await resp.json()
        assert (made["entities"], made["express_interval_seconds"]) == (["tasks"], 3600)
        resp = await client.get("/api/v1/schedules", params={"server": "ex1"}, headers=AUTH)
        assert [s["name"] for s in (await resp.json())["schedules"]] == ["hourly-tasks"]
        resp = await client.get("/api/v1/schedules/hourly-tasks", headers=AUTH)
        assert resp.status == 200 and (await resp.json())["every"] == "3600s"
        bad = await client.put("/api/v1/schedules/x", json={"every": "5m"}, headers=AUTH)
        assert bad.status == 400 and (await bad.json())["field"] == "server"
        resp = await client.delete("/api/v1/schedules/hourly-tasks", headers=AUTH)
        assert resp.status == 204
        resp = await client.get("/api/v1/schedules/hourly-tasks", headers=AUTH)
        assert resp.status == 404
