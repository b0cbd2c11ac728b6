"""Appointments (a recurring series with exceptions) and tasks, both ways, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from ews_client.models import (
    Appointment,
    EntityKind,
    ModifiedOccurrence,
    Recurrence,
    Upsert,
)
from ews_client.recurrence import expand
from sync_service.crm.port import CrmPort
from sync_service.db.queue import PassKind
from sync_service.planning.records import CrmAppointment
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness


def _next_monday() -> datetime:
    """08:00 UTC on a Monday two weeks ahead: inside Graph's calendar window."""
    today = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    return today + timedelta(days=14 - today.weekday())


START = _next_monday()
WEEKLY = Recurrence(
    kind="weekly", interval=1, days_of_week=("monday",), start_date=START.date(), occurrences=6
)


def _series() -> tuple[datetime, datetime]:
    starts = expand(START, "Europe/Berlin", WEEKLY)
    return starts[1], starts[3]  # the second is moved, the fourth cancelled


async def _crm_series(crm: CrmPort, owner: str) -> str:
    moved, cancelled = _series()
    record = CrmAppointment(
        id="",
        owner_id=owner,
        subject="Weekly review",
        starts_at=START,
        ends_at=START + timedelta(hours=1),
        time_zone="Europe/Berlin",
        location="Room 1",
        recurrence=WEEKLY,
        modified_occurrences=(
            ModifiedOccurrence(
                original_start=moved,
                start=moved + timedelta(hours=2),
                end=moved + timedelta(hours=3),
                subject="Weekly review (moved)",
            ),
        ),
        deleted_occurrences=(cancelled,),
    )
    stored = await crm.create_record(record, owner)
    return stored.id


async def test_recurring_appointment_with_exceptions_reaches_the_mailbox_and_back(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user("bob@sim.example")
        crm_id = await _crm_series(h.crm, user)
        assert await h.sync("bob@sim.example", PassKind.INITIAL) == Done("ok")

        client = await h.runner.backends.get(h.server)
        result = await client.sync_changes("bob@sim.example", EntityKind.APPOINTMENT, None)
        [item] = [c.item for c in result.changes if isinstance(c, Upsert)]
        assert isinstance(item, Appointment) and item.crm_id == crm_id
        moved, cancelled = _series()
        assert item.recurrence is not None and item.recurrence.occurrences == 6
        assert item.deleted_occurrences == (cancelled,)
        [exception] = item.modified_occurrences
        assert exception.original_start == moved
        assert exception.start == moved + timedelta(hours=2)
        assert exception.subject == "Weekly review (moved)"

        # The series is unchanged by a further pass (no rewrite of the whole series).
        before = h.sim.sim.counters()["requests"].get("UpdateItem", 0)
        assert await h.sync("bob@sim.example", PassKind.COMPLETE) == Done("ok")
        assert h.sim.sim.counters()["requests"].get("UpdateItem", 0) == before

        # Outlook: a new series created in the mailbox reaches the CRM with its pattern.
        daily = Recurrence(kind="daily", interval=2, start_date=START.date(), occurrences=3)
        created = Appointment(
            subject="Stand-up",
            start=START,
            end=START + timedelta(minutes=15),
            time_zone="UTC",
            recurrence=daily,
        )
        await client.create_item("bob@sim.example", created)
        assert await h.sync("bob@sim.example") == Done("ok")
        row = await pool.fetchrow(
            "SELECT recurrence, starts_at FROM crm.appointments WHERE subject = 'Stand-up'"
        )
        assert row is not None and row["starts_at"] == START
        assert row["recurrence"]["kind"] == "daily" and row["recurrence"]["interval"] == 2


async def test_tasks_flow_both_ways(pool: asyncpg.Pool, backend: str) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user("carol@sim.example")
        due = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
        task_id = await pool.fetchval(
            "INSERT INTO crm.tasks (owner_id, subject, due_at, status, notes) "
            "VALUES ($1, 'Send contract', $2, 'in_progress', 'draft attached') RETURNING id",
            user,
            due,
        )
        assert await h.sync("carol@sim.example", PassKind.INITIAL) == Done("ok")
        [item] = await h.items("carol@sim.example", "tasks")
        assert item["fields"]["Subject"] == "Send contract"
        assert item["fields"]["Status"] == "InProgress"

        await h.owner(
            "PATCH",
            f"/mailboxes/carol@sim.example/items/{item['id']}",
            {"fields": {"Status": "Completed", "PercentComplete": "100"}},
        )
        await h.owner(
            "POST",
            "/mailboxes/carol@sim.example/items",
            {"folder": "tasks", "fields": {"Subject": "Call back"}},
        )
        assert await h.sync("carol@sim.example") == Done("ok")
        row = await pool.fetchrow(
            "SELECT status, percent_complete FROM crm.tasks WHERE id = $1", task_id
        )
        assert (row["status"], row["percent_complete"]) == ("completed", 100)
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM crm.tasks WHERE subject = 'Call back' AND owner_id = $1", user
            )
            == 1
        )

        await pool.execute("DELETE FROM crm.tasks WHERE id = $1", task_id)
        assert await h.sync("carol@sim.example") == Done("ok")
        assert [i["fields"]["Subject"] for i in await h.items("carol@sim.example", "tasks")] == [
            "Call back"
        ]
