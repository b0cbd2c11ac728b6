"""50 mailboxes move from Exchange Server (EWS) to Exchange Online (Graph), their links kept.

Each mailbox holds a CRM-made contact, a CRM-made weekly series with a moved and a cancelled
occurrence, a CRM-made task and an Outlook-made contact, synchronized on the EWS persona.
The simulator moves them to its Graph persona (every item re-keyed); `MailboxMover` carries
them over. Afterwards: no item created or deleted on either side, every link names the
item's Graph id, the first pass on Graph writes nothing, and an edit on each side syncs.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ews_client.models import ModifiedOccurrence
from ews_client.simulator.graph.ids import graph_id
from sync_service import metrics
from sync_service.db.queue import PassKind
from sync_service.db.store import NewServer, Server
from sync_service.operator.moves import MailboxMover
from sync_service.operator.operations import Conflict, Operations
from sync_service.planning.records import CrmAppointment, CrmContact, CrmTask
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.e2e.test_entities import START, WEEKLY, _series

EWS_SECRET_ENV = "EXCHANGE_E2E_EWS_PASSWORD"
COUNT = 50
EMAILS = [f"mover{n:02d}@sim.example" for n in range(COUNT)]
CRM_TABLES = ("crm.contacts", "crm.appointments", "crm.tasks")


async def _onprem(h: Harness) -> Server:
    os.environ[EWS_SECRET_ENV] = h.sim.password
    return await h.store.add_server(
        NewServer(
            "onprem",
            "ews",
            h.sim.ews_url,
            "basic",
            username=h.sim.username,
            secret_env=EWS_SECRET_ENV,
            ca_file=h.sim.ca_file,
        )
    )


async def _seed(h: Harness, server: Server, email: str) -> None:
    user = str(
        await h.pool.fetchval("INSERT INTO crm.users (email) VALUES ($1) RETURNING id", email)
    )
    h.sim.sim.add_mailbox(email)
    async with h.pool.acquire() as conn:
        await h.store.upsert_mailbox(conn, user, email, server.id, None, ("two-way",) * 3)
    await h.crm.create_record(CrmContact("", user, "Ada", "Lovelace", "ada@x.example"), user)
    moved, cancelled = _series()
    # The moved occurrence names its location: Exchange gives an occurrence the series'
    # location when it has none of its own, and a link written from a CRM exception without
    # one does not hold what Exchange holds (a finding of its own, not the move's).
    occurrence = dataclasses.replace(_moved_occurrence(moved), location="Room 1")
    await h.crm.create_record(
        CrmAppointment("", user, "Weekly review", START, START + timedelta(hours=1),
                       "Europe/Berlin", location="Room 1", recurrence=WEEKLY,
                       modified_occurrences=(occurrence,), deleted_occurrences=(cancelled,)),
        user,
    )  # fmt: skip
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    await h.crm.create_record(CrmTask("", user, "File report", due_at=due), user)
    outlook = {"folder": "contacts", "fields": {"GivenName": "Grace", "Surname": "Hopper"}}
    await h.owner("POST", f"/mailboxes/{email}/items", outlook)


def _moved_occurrence(original: datetime) -> ModifiedOccurrence:
    return ModifiedOccurrence(
        original_start=original,
        start=original + timedelta(hours=2),
        end=original + timedelta(hours=3),
        subject="Weekly review (moved)",
    )


async def _crm_counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in CRM_TABLES}


def _sim_items(h: Harness) -> dict[str, set[str]]:
    return {e: set(h.sim.sim.mailboxes[e].items) for e in EMAILS}


async def test_fifty_mailboxes_move_from_ews_to_graph_keeping_their_links(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, backend="graph") as h:
        onprem = await _onprem(h)
        for email in EMAILS:
            await _seed(h, onprem, email)
        for email in EMAILS:
            assert await h.sync(email, PassKind.INITIAL) == Done("ok")
            assert await h.links(email) == 4
        crm_before = await _crm_counts(pool)
        assert crm_before == {"crm.contacts": 2 * COUNT, "crm.appointments": COUNT,
                              "crm.tasks": COUNT}  # fmt: skip
        ews_ids = _sim_items(h)
        for email in EMAILS:
            await h.owner("POST", f"/mailboxes/{email}/relocate", {"to": "graph"})
        assert h.sim.graph is not None
        graph_before = dict(h.sim.graph.counters()["requests"])

        mover = MailboxMover(h.store, h.runner.backends)
        reports = [await mover.move(email, h.server.name) for email in EMAILS]
        graph_after = dict(h.sim.graph.counters()["requests"])
        took = {k: v - graph_before.get(k, 0) for k, v in graph_after.items()
                if v != graph_before.get(k, 0)}  # fmt: skip
        print(f"\nthe move of {COUNT} mailboxes took {sum(r.requests for r in reports)} "
              f"requests ({sum(r.requests for r in reports) / COUNT:.0f} per mailbox), "
              f"{sum(r.batches for r in reports)} link transactions; by route: {took}")  # fmt: skip
        assert all(r.linked == {"contact": 2, "appointment": 1, "task": 1} for r in reports)
        # Reads, and the marker (an open extension of the user): no item written.
        writes = {k for k in took if not k.startswith("GET ")}
        assert all("/extensions" in k for k in writes), took

        # Every link names its item's Graph id; the items are the ones of before, re-keyed.
        graph_ids = _sim_items(h)
        for email in EMAILS:
            assert not graph_ids[email] & ews_ids[email]
            assert len(graph_ids[email]) == len(ews_ids[email]) == 4
            links = await pool.fetch(
                "SELECT l.exchange_id FROM sync.item_links l JOIN sync.mailboxes m "
                "ON m.id = l.mailbox_id WHERE m.email = $1", email)  # fmt: skip
            assert {r["exchange_id"] for r in links} == {graph_id(i) for i in graph_ids[email]}

        # The first pass on Graph reads every folder in full and writes nothing.
        for email in EMAILS:
            assert await h.sync(email, PassKind.EXPRESS) == Done("ok")
        counts = await pool.fetch(
            "SELECT r.counts FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id "
            "WHERE r.kind = 'express' AND m.server_id = $1", h.server.id)  # fmt: skip
        assert len(counts) == COUNT and all(not c["counts"] for c in counts), counts[:3]
        assert await _crm_counts(pool) == crm_before  # none created, none deleted in the CRM
        assert _sim_items(h) == graph_ids  # none created, none deleted in Exchange

        # An edit on each side syncs, through Graph.
        email = EMAILS[0]
        box = h.sim.sim.mailboxes[email]
        [grace] = [i for i in await h.items(email, "contacts")
                   if i["fields"].get("GivenName") == "Grace"]  # fmt: skip
        await h.owner("PATCH", f"/mailboxes/{email}/items/{grace['id']}",
                      {"fields": {"Surname": "Hopper-Moved"}})  # fmt: skip
        await pool.execute(
            "UPDATE crm.contacts SET last_name = 'Lovelace-Moved' WHERE last_name = 'Lovelace' "
            "AND owner_id = (SELECT id FROM crm.users WHERE email = $1)", email)  # fmt: skip
        assert await h.sync(email, PassKind.EXPRESS) == Done("ok")
        assert await pool.fetchval(
            "SELECT count(*) FROM crm.contacts WHERE last_name = 'Hopper-Moved'") == 1  # fmt: skip
        surnames = {i["fields"].get("Surname") for i in await h.items(email, "contacts")}
        assert surnames == {"Hopper-Moved", "Lovelace-Moved"}
        assert set(box.items) == graph_ids[email]
        assert await _crm_counts(pool) == crm_before


async def _written(pool: asyncpg.Pool, server: Server) -> list[object]:
    """The counts of every pass on `server` that wrote something."""
    rows = await pool.fetch(
        "SELECT r.counts FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id "
        "WHERE r.kind = 'express' AND m.server_id = $1", server.id)  # fmt: skip
    return [r["counts"] for r in rows if r["counts"]]


async def test_to_graph_and_back_and_a_move_that_is_not_complete(pool: asyncpg.Pool) -> None:
    async with harness(pool, backend="graph") as h:
        onprem = await _onprem(h)
        email = EMAILS[0]
        await _seed(h, onprem, email)
        assert await h.sync(email, PassKind.INITIAL) == Done("ok")
        crm_before = await _crm_counts(pool)
        mover = MailboxMover(h.store, h.runner.backends)
        # A move Exchange has not completed: one linked item is not on the new server yet.
        await h.owner("POST", f"/mailboxes/{email}/relocate", {"to": "graph"})
        box = h.sim.sim.mailboxes[email]
        task = next(i for i in box.items.values() if i.kind == "Task")
        snapshot = task.clone()
        box.remove(task)
        with pytest.raises(Conflict) as refused:
            await mover.move(email, h.server.name)
        assert "1 linked task item(s) carry no CRM id on sim" in refused.value.message
        unmoved = await h.store.mailbox_by_email(email)
        assert unmoved is not None and unmoved.server_id == onprem.id
        assert (unmoved.state, unmoved.state_reason) == ("active", None)  # given back
        # A pass running on the mailbox: no move under it.
        job = await pool.fetchval(
            "INSERT INTO sync.jobs (mailbox_id, kind, status) VALUES ($1, 'express', 'running') "
            "RETURNING id", unmoved.id)  # fmt: skip
        with pytest.raises(Conflict, match="a pass is running"):
            await mover.move(email, h.server.name)
        await pool.execute("UPDATE sync.jobs SET status = 'done' WHERE id = $1", job)
        box.items[snapshot.id] = snapshot  # the move completes: the task arrives
        box.folders[snapshot.folder_id].items[snapshot.id] = None

        report = await mover.move(email, h.server.name)
        assert report.linked == {"contact": 2, "appointment": 1, "task": 1}
        assert (report.source, report.target) == ("onprem", h.server.name)
        assert await h.sync(email, PassKind.EXPRESS) == Done("ok")
        assert await _written(pool, h.server) == []

        # And back to Exchange Server: the links follow the items' new EWS ids.
        await h.owner("POST", f"/mailboxes/{email}/relocate", {"to": "ews"})
        await mover.move(email, "onprem")
        assert await h.sync(email, PassKind.EXPRESS) == Done("ok")
        assert await _written(pool, onprem) == []
        links = await pool.fetch(
            "SELECT l.exchange_id FROM sync.item_links l JOIN sync.mailboxes m "
            "ON m.id = l.mailbox_id WHERE m.email = $1", email)  # fmt: skip
        assert {r["exchange_id"] for r in links} == set(box.items)
        with pytest.raises(Conflict, match="already served by onprem"):
            await mover.move(email, "onprem")
        assert await _crm_counts(pool) == crm_before


def _moved_passes() -> float:
    labels = {"kind": "express", "outcome": "moved"}
    return metrics.REGISTRY.get_sample_value("sync_passes_total", labels) or 0.0


async def _moved_away(h: Harness) -> str:
    """A mailbox synchronized on the EWS persona, then moved by Exchange to Graph; the pass
    after the move finds it gone. Its address."""
    onprem = await _onprem(h)
    email = EMAILS[0]
    await _seed(h, onprem, email)
    assert await h.sync(email, PassKind.INITIAL) == Done("ok")
    await h.owner("POST", f"/mailboxes/{email}/relocate", {"to": "graph"})
    # EWS now answers every call on it ErrorNonExistentMailbox, "No mailbox with such guid."
    assert await h.sync(email, PassKind.EXPRESS) == Done("moved")
    return email


async def test_a_mailbox_moved_away_gets_the_moved_state_with_the_command_that_carries_it(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, backend="graph") as h:
        moved_before = _moved_passes()
        email = await _moved_away(h)
        shown = await Operations(pool, timedelta(seconds=60)).show_mailbox(email)
        assert (shown["state"], shown["failure_count"]) == ("moved", 0)
        reason = shown["reason"]
        assert reason.startswith("moved: onprem no longer holds this mailbox")
        assert "No mailbox with such guid." in reason
        # The only other server is named: the command can be run as it is.
        assert f"sync-service mailboxes move {email} --to {h.server.name}" in reason
        # The pass is recorded as what it was, not as a failure.
        [run] = shown["last_runs"][:1]
        assert (run["kind"], run["outcome"], run["error"]) == ("express", "moved", reason)
        assert _moved_passes() == moved_before + 1
        status = await Operations(pool, timedelta(seconds=60)).status()
        assert status["mailboxes"]["moved"] == 1 and status["mailboxes"]["disabled"] == 0

        await MailboxMover(h.store, h.runner.backends).move(email, h.server.name)
        moved = await h.store.mailbox_by_email(email)
        assert moved is not None and moved.state == "active" and moved.state_reason is None
        assert await h.sync(email, PassKind.EXPRESS) == Done("ok")
        assert await _written(pool, h.server) == []


async def test_a_moved_mailbox_enabled_by_an_operator_is_active_until_a_pass_finds_it_moved(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, backend="graph") as h:
        email = await _moved_away(h)
        ops = Operations(pool, timedelta(seconds=60))
        enabled = await ops.set_state(email, True)
        assert (enabled.state, enabled.state_reason) == ("active", None)
        # Enabled where Exchange no longer holds it: the next pass tells the same story, and
        # still counts no failure.
        assert await h.sync(email, PassKind.EXPRESS) == Done("moved")
        again = await h.store.mailbox_by_email(email)
        assert again is not None and (again.state, again.failure_count) == ("moved", 0)
