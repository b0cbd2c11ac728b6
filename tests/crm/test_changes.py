"""Change capture: the log, fan-out to linked users, no echo, and safe watermarks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from ews_client.models import EntityKind
from sync_service.crm.port import ChangeOp, RecordChange
from sync_service.crm.postgres import PostgresCrm
from sync_service.db.pool import connect
from sync_service.planning.records import CrmAppointment, CrmAttendee, CrmContact, CrmTask
from tests.crm.conftest import Users

UPSERT, REMOVED = ChangeOp.UPSERT, ChangeOp.REMOVED
ADD_TASK = "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, $2)"


async def log_ops(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT entity, op FROM crm.change_log ORDER BY seq")
    return [(r["entity"], r["op"]) for r in rows]


async def changes(crm: PostgresCrm, user: str, entity: EntityKind, after: int) -> list:
    batch = await crm.changes_since(user, entity, after)
    return [(c.record_id, c.op) for c in batch.changes]


async def test_triggers_log_every_write(crm: PostgresCrm, users: Users, pool: asyncpg.Pool) -> None:
    start = await crm.current_seq()
    task = await crm.create_record(CrmTask("", users.alice, subject="a"), users.alice)
    await pool.execute("UPDATE crm.tasks SET subject = 'b' WHERE id = $1", task.id)
    await pool.execute("DELETE FROM crm.tasks WHERE id = $1", task.id)
    contact = await crm.create_record(CrmContact("", users.alice, last_name="X"), users.alice)
    await pool.execute("UPDATE crm.contacts SET owner_id = $1 WHERE id = $2", users.bob, contact.id)

    assert await log_ops(pool) == [
        ("task", "insert"),
        ("task", "update"),
        ("task", "delete"),
        ("contact", "insert"),
        ("contact", "update"),
        ("contact", "unlink"),  # the previous owner's mailbox drops it
    ]
    row = await pool.fetchrow("SELECT * FROM crm.change_log ORDER BY seq LIMIT 1")
    assert str(row["origin_user_id"]) == users.alice
    assert [str(u) for u in row["user_ids"]] == [users.alice]
    # Made in the CRM (no origin): Alice gets the update and the delete of the task.
    assert await changes(crm, users.alice, EntityKind.TASK, start) == [(task.id, REMOVED)]
    assert await changes(crm, users.alice, EntityKind.CONTACT, start) == [(contact.id, REMOVED)]
    assert await changes(crm, users.bob, EntityKind.CONTACT, start) == [(contact.id, UPSERT)]


async def test_attendee_change_is_an_appointment_update(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    meeting = await crm.create_record(
        CrmAppointment("", users.alice, attendees=(CrmAttendee("x@example.com", "X", True),)),
        users.alice,
    )
    assert await log_ops(pool) == [("appointment", "insert")]  # one write, one log row
    await pool.execute(
        "UPDATE crm.appointment_attendees SET required = false WHERE appointment_id = $1",
        meeting.id,
    )
    assert await log_ops(pool) == [("appointment", "insert"), ("appointment", "update")]
    version = await pool.fetchval("SELECT version FROM crm.appointments WHERE id = $1", meeting.id)
    assert version == meeting.version + 1

    # Deleting the appointment cascades to its attendees without a bogus update after it.
    await pool.execute("DELETE FROM crm.appointments WHERE id = $1", meeting.id)
    assert (await log_ops(pool))[-1] == ("appointment", "delete")
    after = await changes(crm, users.bob, EntityKind.APPOINTMENT, 0)
    assert after == []
    assert await changes(crm, users.alice, EntityKind.APPOINTMENT, 0) == [(meeting.id, REMOVED)]


async def test_fan_out_and_no_echo(crm: PostgresCrm, users: Users) -> None:
    firm = await crm.create_record(CrmContact("", users.alice, last_name="Firm"), users.alice)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.bob)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.carol)
    start = await crm.current_seq()

    # Bob edits the contact in his mailbox; the service writes it back for him.
    await crm.update_record(replace(firm, company="Acme"), firm.version, users.bob)

    assert await changes(crm, users.bob, EntityKind.CONTACT, start) == []  # never back to Bob
    for other in (users.alice, users.carol):
        assert await changes(crm, other, EntityKind.CONTACT, start) == [(firm.id, UPSERT)]
    pending = await crm.pending_users(start)
    assert set(pending) == {users.alice, users.carol}


async def test_change_made_in_the_crm_reaches_every_linked_user(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    firm = await crm.create_record(CrmContact("", users.alice, last_name="Firm"), users.alice)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.bob)
    start = await crm.current_seq()
    await pool.execute("UPDATE crm.contacts SET notes = 'x' WHERE id = $1", firm.id)
    for user in (users.alice, users.bob):
        assert await changes(crm, user, EntityKind.CONTACT, start) == [(firm.id, UPSERT)]
    assert await changes(crm, users.carol, EntityKind.CONTACT, start) == []


async def test_link_and_unlink_affect_that_user_only(crm: PostgresCrm, users: Users) -> None:
    firm = await crm.create_record(CrmContact("", users.alice, last_name="Firm"), users.alice)
    await crm.link_user(EntityKind.CONTACT, firm.id, users.carol)
    start = await crm.current_seq()

    await crm.link_user(EntityKind.CONTACT, firm.id, users.bob)
    assert await changes(crm, users.bob, EntityKind.CONTACT, start) == [(firm.id, UPSERT)]
    assert await changes(crm, users.alice, EntityKind.CONTACT, start) == []

    middle = await crm.current_seq()
    await crm.unlink_user(EntityKind.CONTACT, firm.id, users.bob)
    assert await changes(crm, users.bob, EntityKind.CONTACT, middle) == [(firm.id, REMOVED)]
    assert await changes(crm, users.alice, EntityKind.CONTACT, middle) == []
    assert await changes(crm, users.carol, EntityKind.CONTACT, middle) == []
    # Seen from before the link: the last word is the removal.
    assert await changes(crm, users.bob, EntityKind.CONTACT, start) == [(firm.id, REMOVED)]

    # Carol drops her copy in Outlook: her link goes, without echo; the others keep it.
    later = await crm.current_seq()
    await crm.delete_for_user(EntityKind.CONTACT, firm.id, users.carol, firm.version, users.carol)
    assert await changes(crm, users.carol, EntityKind.CONTACT, later) == []
    assert await crm.list_records(users.carol, EntityKind.CONTACT) == []
    assert await changes(crm, users.alice, EntityKind.CONTACT, later) == []


async def test_owner_delete_removes_from_every_linked_mailbox(
    crm: PostgresCrm, users: Users
) -> None:
    meeting = await crm.create_record(CrmAppointment("", users.alice, subject="M"), users.alice)
    await crm.link_user(EntityKind.APPOINTMENT, meeting.id, users.bob)
    start = await crm.current_seq()
    await crm.delete_for_user(
        EntityKind.APPOINTMENT, meeting.id, users.alice, meeting.version, users.alice
    )
    assert await changes(crm, users.bob, EntityKind.APPOINTMENT, start) == [(meeting.id, REMOVED)]
    assert await changes(crm, users.alice, EntityKind.APPOINTMENT, start) == []


async def test_last_operation_per_record(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    start = await crm.current_seq()
    kept = await crm.create_record(CrmTask("", users.alice, subject="kept"), users.bob)
    gone = await crm.create_record(CrmTask("", users.alice, subject="gone"), users.bob)
    await pool.execute("UPDATE crm.tasks SET subject = 'x'")
    await pool.execute("DELETE FROM crm.tasks WHERE id = $1", gone.id)
    batch = await crm.changes_since(users.bob, EntityKind.TASK, start)
    assert batch.changes == (RecordChange(kept.id, UPSERT), RecordChange(gone.id, REMOVED))
    assert batch.complete
    # The watermark moved past everything: nothing more from there.
    again = await crm.changes_since(users.bob, EntityKind.TASK, batch.last_seq)
    assert again.changes == () and again.last_seq >= batch.last_seq


async def test_limit_pages_end_on_a_transaction_boundary(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    start = await crm.current_seq()
    await pool.execute(
        "INSERT INTO crm.tasks (owner_id, subject) SELECT $1, 't' FROM generate_series(1, 5)",
        users.alice,
    )
    await pool.execute(ADD_TASK, users.alice, "late")

    first = await crm.changes_since(users.alice, EntityKind.TASK, start, limit=2)
    # The first transaction had five rows: the page takes all of them, not just two.
    assert len(first.changes) == 5 and not first.complete
    second = await crm.changes_since(users.alice, EntityKind.TASK, first.last_seq, limit=2)
    assert len(second.changes) == 1 and second.complete
    assert not {c.record_id for c in first.changes} & {c.record_id for c in second.changes}


async def test_watermark_waits_for_in_flight_transactions(
    crm: PostgresCrm, users: Users, db_url: str
) -> None:
    start = await crm.current_seq()
    slow = await connect(db_url)
    fast = await connect(db_url)
    try:
        # The slow transaction takes its transaction id first, then logs a change it does not
        # commit yet; a later transaction logs and commits.
        await slow.execute("BEGIN")
        await slow.execute(ADD_TASK, users.alice, "slow")
        await fast.execute(ADD_TASK, users.alice, "fast")

        slow_xid = int(await slow.fetchval("SELECT pg_current_xact_id()::text"))

        batch = await crm.changes_since(users.alice, EntityKind.TASK, start)
        assert batch.changes == ()  # the fast one is committed, but not yet safe to hand out
        # The watermark stays at or below the open transaction: its change lies ahead of it.
        assert start <= batch.last_seq <= slow_xid
        assert await crm.pending_users(start) == {}

        await slow.execute("COMMIT")
        batch = await crm.changes_since(users.alice, EntityKind.TASK, batch.last_seq)
        assert len(batch.changes) == 2
    finally:
        await slow.close()
        await fast.close()


async def test_older_transaction_drawing_a_later_seq_is_not_skipped(
    crm: PostgresCrm, users: Users, db_url: str
) -> None:
    """The case a seq watermark gets wrong: T0 starts first, T1 logs seq n and stays open, T0
    logs seq n+1 and commits. Every transaction older than T1 has ended, yet n is in flight."""
    start = await crm.current_seq()
    t0 = await connect(db_url)
    t1 = await connect(db_url)
    try:
        await t0.execute("BEGIN")
        await t0.execute("INSERT INTO crm.users (email) VALUES ('early@example.com')")  # xid
        await t1.execute("BEGIN")
        await t1.execute(ADD_TASK, users.alice, "n")
        await t0.execute(ADD_TASK, users.alice, "n+1")
        await t0.execute("COMMIT")

        batch = await crm.changes_since(users.alice, EntityKind.TASK, start)
        seen = len(batch.changes)
        await t1.execute("COMMIT")
        rest = await crm.changes_since(users.alice, EntityKind.TASK, batch.last_seq)
        assert seen + len(rest.changes) == 2  # each change handed out exactly once
    finally:
        await t0.close()
        await t1.close()


async def test_notify_reaches_a_listener(crm: PostgresCrm, users: Users, db_url: str) -> None:
    listener = await connect(db_url)
    received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    try:
        await listener.add_listener("crm_changes", lambda *a: received.put_nowait((a[2], a[3])))
        await crm.create_record(CrmTask("", users.alice, subject="ping"), users.alice)
        channel, payload = await asyncio.wait_for(received.get(), timeout=5)
        assert (channel, payload) == ("crm_changes", "task")
    finally:
        await listener.close()


async def test_crm_edit_between_echoes_is_still_delivered(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    task = await crm.create_record(CrmTask("", users.alice, subject="a"), users.alice)
    start = await crm.current_seq()
    await pool.execute("UPDATE crm.tasks SET notes = 'from the CRM' WHERE id = $1", task.id)
    stored = (await crm.get_records(EntityKind.TASK, [task.id]))[task.id]
    await crm.update_record(replace(stored, subject="b"), stored.version, users.alice)
    # Alice's own write does not come back, but it does not hide the CRM's edit either.
    assert await changes(crm, users.alice, EntityKind.TASK, start) == [(task.id, UPSERT)]


async def test_pending_users_reports_newest_position_and_oldest_time(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    start = await crm.current_seq()
    await pool.execute(ADD_TASK, users.alice, "one")
    middle = await crm.current_seq()
    await pool.execute(ADD_TASK, users.alice, "two")
    await pool.execute(ADD_TASK, users.bob, "three")

    pending = await crm.pending_users(start)
    assert set(pending) == {users.alice, users.bob}
    newest = await crm.current_seq()
    assert start < middle <= pending[users.alice].max_seq <= newest
    oldest = await pool.fetchval("SELECT min(changed_at) FROM crm.change_log")
    assert pending[users.alice].oldest_changed_at == oldest

    assert set(await crm.pending_users(start, up_to=middle)) == {users.alice}
    assert await crm.pending_users(newest) == {}
    # A user's batch from the dispatcher's position sees the same changes.
    batch = await crm.changes_since(users.bob, EntityKind.TASK, middle)
    assert len(batch.changes) == 1 and batch.last_seq >= pending[users.bob].max_seq


async def test_changes_of_several_entities_at_once_match_one_by_one(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool
) -> None:
    start = await crm.current_seq()
    task = str(await pool.fetchval(ADD_TASK + " RETURNING id", users.alice, "a"))
    contact = str(
        await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'X') RETURNING id",
            users.alice,
        )
    )
    middle = await crm.current_seq()
    await pool.execute("DELETE FROM crm.tasks WHERE id = $1::uuid", task)
    await pool.execute(
        "INSERT INTO crm.tasks (owner_id, subject) SELECT $1, 't' FROM generate_series(1, 3)",
        users.alice,
    )
    # Each entity from its own position; a full page goes the long way (transaction cut).
    after = {EntityKind.TASK: middle, EntityKind.CONTACT: start, EntityKind.APPOINTMENT: start}
    for limit in (10_000, 2):
        many = await crm.changes_since_many(users.alice, after, limit=limit)
        assert set(many) == set(after)
        for entity, seq in after.items():
            one = await crm.changes_since(users.alice, entity, seq, limit=limit)
            assert (many[entity].changes, many[entity].complete) == (one.changes, one.complete)
            if one.complete:  # the safe position only grows between the two reads
                assert seq <= many[entity].last_seq <= one.last_seq
            else:  # cut at the same transaction
                assert many[entity].last_seq == one.last_seq
    many = await crm.changes_since_many(users.alice, after)
    assert [c.record_id for c in many[EntityKind.CONTACT].changes] == [contact]
    assert (task, REMOVED) in [(c.record_id, c.op) for c in many[EntityKind.TASK].changes]
    assert len(many[EntityKind.TASK].changes) == 4
    assert many[EntityKind.APPOINTMENT].changes == ()
