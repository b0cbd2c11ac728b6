"""What the multi-replica test proves afterwards, read from both sides and the runs table.

- Every mailbox converged: each folder holds exactly the expected items on both sides, each
  once (counted: a duplicate or a loss fails), and every item is linked.
- No mailbox was synced by two engines at once: per mailbox, each run started after the one
  before it ended. A run killed with its engine ends when a reaper closes it (after its lease
  ran out), which is later than the dead pass's last write, so the check is conservative.
- Every run is closed: none left open once the lease reaper ran.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import aiohttp
import asyncpg

from tests.scale.sim_process import SimProcess, items

CRM_CONTACTS = ("P1", "P2", "P3")  # last names of the CRM's contacts per user (first 'Crm')


def expected_contacts(per_folder: int, edited: bool) -> list[tuple[str, str]]:
    seeded = [(f"Seed{n}", "Contact") for n in range(per_folder)]
    crm = [("Crm", name) for name in CRM_CONTACTS]
    if not edited:
        return sorted(seeded + crm)
    seeded[0] = ("Seed0", "Contact-edited")
    crm[0] = ("Crm", "P1-edited")
    return sorted([*seeded, *crm, ("Crm", "New"), ("Ex", "New")])


def expected_subjects(per_folder: int, folder: str) -> list[str]:
    if folder == "calendar":
        return sorted([f"Seed meeting {n}" for n in range(per_folder)] + ["Crm meeting"])
    return sorted([f"Seed task {n}" for n in range(per_folder)] + ["Crm task"])


def _exchange_side(listing: list[dict[str, Any]]) -> dict[str, list[Any]]:
    by_folder: dict[str, list[Any]] = {"contacts": [], "calendar": [], "tasks": []}
    for item in listing:
        fields = item["fields"]
        if item["folder"] == "contacts":
            by_folder["contacts"].append((fields.get("GivenName", ""), fields.get("Surname", "")))
        elif item["folder"] in by_folder:
            by_folder[item["folder"]].append(fields.get("Subject", ""))
    return {k: sorted(v) for k, v in by_folder.items()}


async def _crm_side(pool: asyncpg.Pool) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for row in await pool.fetch(
        "SELECT u.email, c.first_name, c.last_name FROM crm.contacts c "
        "JOIN crm.users u ON u.id = c.owner_id"
    ):
        box = out.setdefault(row["email"], {"contacts": [], "calendar": [], "tasks": []})
        box["contacts"].append((row["first_name"] or "", row["last_name"] or ""))
    for table, folder in (("appointments", "calendar"), ("tasks", "tasks")):
        for row in await pool.fetch(
            f"SELECT u.email, t.subject FROM crm.{table} t JOIN crm.users u ON u.id = t.owner_id"
        ):
            box = out.setdefault(row["email"], {"contacts": [], "calendar": [], "tasks": []})
            box[folder].append(row["subject"])
    return {e: {k: sorted(v) for k, v in box.items()} for e, box in out.items()}


async def divergent(
    pool: asyncpg.Pool,
    http: aiohttp.ClientSession,
    homes: dict[str, SimProcess],
    per_folder: int,
    edited: bool,
) -> dict[str, Any]:
    """The mailboxes that do not hold what they should, with what each side holds."""
    wanted = {
        "contacts": expected_contacts(per_folder, edited),
        "calendar": expected_subjects(per_folder, "calendar"),
        "tasks": expected_subjects(per_folder, "tasks"),
    }
    crm = await _crm_side(pool)
    links = {
        r["email"]: r["n"]
        for r in await pool.fetch(
            "SELECT m.email, count(l.*) AS n FROM sync.mailboxes m "
            "LEFT JOIN sync.item_links l ON l.mailbox_id = m.id GROUP BY 1"
        )
    }
    listings = await _listings(http, homes)
    wrong: dict[str, Any] = {}
    linked = sum(len(v) for v in wanted.values())
    for email in homes:
        exchange = _exchange_side(listings[email])
        if exchange != wanted or crm.get(email) != wanted or links.get(email) != linked:
            wrong[email] = {"exchange": exchange, "crm": crm.get(email), "links": links.get(email)}
    return wrong


async def _listings(
    http: aiohttp.ClientSession, homes: dict[str, SimProcess]
) -> dict[str, list[dict[str, Any]]]:
    emails = list(homes)
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(emails), 50):  # 50 listings at a time
        chunk = emails[start : start + 50]
        found = await asyncio.gather(*(items(http, homes[e], e) for e in chunk))
        out.update(zip(chunk, found, strict=True))
    return out


async def overlapping_runs(pool: asyncpg.Pool) -> list[tuple[int, int, int]]:
    """(mailbox, run, run) of every two runs of one mailbox whose times overlap."""
    rows = await pool.fetch(
        "SELECT mailbox_id, id, started_at, finished_at FROM sync.runs "
        "ORDER BY mailbox_id, started_at, id"
    )
    clashes = []
    for before, after in itertools.pairwise(rows):
        if before["mailbox_id"] != after["mailbox_id"]:
            continue
        if before["finished_at"] is None or after["started_at"] < before["finished_at"]:
            clashes.append((before["mailbox_id"], before["id"], after["id"]))
    return clashes


async def run_outcomes(pool: asyncpg.Pool) -> Counter[str]:
    rows = await pool.fetch(
        "SELECT coalesce(outcome, 'open') AS o, count(*) AS n FROM sync.runs GROUP BY 1"
    )
    return Counter({r["o"]: int(r["n"]) for r in rows})
