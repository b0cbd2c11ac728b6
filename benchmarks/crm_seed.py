"""Seed the bundled CRM (schema crm) for N mailbox users, overlapping the simulator's items.

For every user: the first `overlap` share of each folder's simulator items also exists in the
CRM with the same matching fields (contacts: first + last name; appointments: subject + start;
tasks: subject), so the initial pass links them instead of duplicating, plus CRM-only records
that the pass must create in Exchange. Set-based SQL: 10,000 users seed in seconds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from benchmarks.stack import address_of


@dataclass(frozen=True, slots=True)
class CrmShape:
    overlap_contacts: int = 0
    overlap_appointments: int = 0
    overlap_tasks: int = 0
    crm_only_contacts: int = 0
    crm_only_appointments: int = 0
    crm_only_tasks: int = 0

    def per_user(self) -> int:
        return (
            self.overlap_contacts + self.overlap_appointments + self.overlap_tasks
            + self.crm_only_contacts + self.crm_only_appointments + self.crm_only_tasks
        )  # fmt: skip


def proportional(items: tuple[int, int, int]) -> CrmShape:
    """The benchmarks' CRM for a mailbox of (contacts, appointments, tasks): half of each
    folder also in the CRM, plus a tenth of its size as CRM-only records
    ((200, 100, 50) gives 100/50/25 overlapping and 20/10/5 CRM-only: 385 synced items)."""
    contacts, appointments, tasks = items
    return CrmShape(
        overlap_contacts=contacts // 2,
        overlap_appointments=appointments // 2,
        overlap_tasks=tasks // 2,
        crm_only_contacts=contacts // 10,
        crm_only_appointments=appointments // 10,
        crm_only_tasks=tasks // 10,
    )


def parse_items(text: str) -> tuple[int, int, int]:
    """`"5000,1500,500"`: contacts, appointments, tasks per mailbox."""
    parts = text.split(",")
    try:
        counts = tuple(int(p) for p in parts)
    except ValueError:
        counts = ()
    if len(counts) != 3 or min(counts) < 0:
        raise ValueError(f"items {text!r}: expected CONTACTS,APPOINTMENTS,TASKS (counts >= 0)")
    return counts[0], counts[1], counts[2]


async def seed(url: str, mailboxes: int, shape: CrmShape, csv_path: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO crm.users (email, display_name) "
            "SELECT format('user%s@sim.example', lpad(g::text, 5, '0')), 'User ' || g "
            "FROM generate_series(1, $1) g",
            mailboxes,
        )
        await conn.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name, company) "
            "SELECT u.id, 'Seed' || g, 'Contact', 'Sim Corp' "
            "FROM crm.users u, generate_series(0, $1 - 1) g",
            shape.overlap_contacts,
        )
        await conn.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
            "SELECT u.id, 'Crm', 'Person ' || g, 'p' || g || '@crm.example' "
            "FROM crm.users u, generate_series(1, $1) g",
            shape.crm_only_contacts,
        )
        # Same (subject, start) as benchmarks/sim_server.appointment_fields(n).
        await conn.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "SELECT u.id, 'Seed meeting ' || g, s, s + interval '30 minutes' "
            "FROM crm.users u, generate_series(0, $1 - 1) g, "
            "LATERAL (SELECT timestamptz '2026-01-01 00:00Z' + ((g % 28) || ' days')::interval "
            "  + ((8 + g % 9) || ' hours')::interval AS s) t",
            shape.overlap_appointments,
        )
        await conn.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "SELECT u.id, 'Crm meeting ' || g, s, s + interval '1 hour' "
            "FROM crm.users u, generate_series(1, $1) g, "
            "LATERAL (SELECT timestamptz '2026-03-01 09:00Z' + (g || ' days')::interval AS s) t",
            shape.crm_only_appointments,
        )
        await conn.execute(
            "INSERT INTO crm.tasks (owner_id, subject) "
            "SELECT u.id, 'Seed task ' || g FROM crm.users u, generate_series(0, $1 - 1) g",
            shape.overlap_tasks,
        )
        await conn.execute(
            "INSERT INTO crm.tasks (owner_id, subject, status) "
            "SELECT u.id, 'Crm task ' || g, 'in_progress' "
            "FROM crm.users u, generate_series(1, $1) g",
            shape.crm_only_tasks,
        )
        users = await conn.fetch("SELECT id, email FROM crm.users ORDER BY email")
    finally:
        await conn.close()
    assert len(users) == mailboxes and users[0]["email"] == address_of(1)
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["crm_user_id", "email", "server", "group"])
        writer.writerows((str(u["id"]), u["email"], "sim", "bench") for u in users)
