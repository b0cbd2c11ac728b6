"""Planner throughput: a complete pass of one 50,000-item mailbox (generated contacts).

    .venv/bin/python benchmarks/planner.py [--items 50000] [--drift 0.02]

Prints the CPU seconds (time.process_time) of reading both sides into snapshots (normalize +
hash) and of planning, items/s, the plan's action counts, the machine and the date.
Target: planning under one second of CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ews_client import Contact, ItemRef
from sync_service.planning import (
    CONTACTS,
    Binding,
    CrmContact,
    PassKind,
    SyncedRow,
    bind,
    new_item,
    plan,
    row_for,
    snapshot_crm,
    snapshot_exchange,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
FIRST = ["Ann", "Bob", "Chen", "Dana", "Eve", "Femi", "Gus", "Hana", "Ivo", "Jun"]
LAST = ["Lee", "Ray", "Ito", "Okafor", "Novak", "Silva", "Berg", "Khan", "Moreau", "Park"]


def record(n: int) -> CrmContact:
    first, last = FIRST[n % 10], LAST[(n // 10) % 10]
    return CrmContact(
        id=f"00000000-0000-4000-8000-{n:012d}",
        owner_id="user-1",
        first_name=first,
        last_name=f"{last}{n}",
        email=f"{first.lower()}.{last.lower()}{n}@example.com",
        company=f"Company {n % 500}",
        job_title="Engineer",
        business_phone=f"+1 (555) {n % 1000:03d}-{n % 10000:04d}",
        mobile_phone=f"+15550{n:06d}",
        street=f"{n} Main Street",
        city="Oslo",
        postal_code=f"{n % 9000 + 1000}",
        country="Norway",
        categories=("Customer", "VIP") if n % 7 == 0 else ("Customer",),
        notes=f"Met at event {n % 40}.\nFollow up in spring.",
        updated_at=EPOCH + timedelta(seconds=n),
        version=1,
    )


def world(
    binding: Binding, items: int, drift: float, rng: random.Random
) -> tuple[list[CrmContact], list[Contact], list[SyncedRow]]:
    """A synced mailbox, then drift: edits, deletions and creations on both sides."""
    records, contacts, rows = [], [], []
    for n in range(items):
        rec = record(n)
        snap = snapshot_crm(binding, rec)
        item = replace(new_item(binding, snap.fields, rec.id), ref=ItemRef(f"AAMk{n:08d}", "ck1"))
        assert isinstance(item, Contact)
        records.append(rec)
        contacts.append(item)
        rows.append(row_for(binding, rec.id, ItemRef(f"AAMk{n:08d}", "ck1"), snap.fields))
    share = int(items * drift / 4)
    for n in rng.sample(range(items), share):
        records[n] = replace(records[n], job_title="Manager", version=2)
    for n in rng.sample(range(items), share):
        contacts[n] = replace(contacts[n], company="Elsewhere", ref=ItemRef(f"AAMk{n:08d}", "ck2"))
    gone = set(rng.sample(range(items), share))
    records = [r for i, r in enumerate(records) if i not in gone]
    records += [record(items + n) for n in range(share)]
    fresh = [new_item(binding, snapshot_crm(binding, record(2 * items + n)).fields, "")
             for n in range(share)]  # fmt: skip
    contacts += [
        replace(item, crm_id=None, ref=ItemRef(f"AAMn{n:08d}", "ck1"))
        for n, item in enumerate(fresh)
        if isinstance(item, Contact)
    ]
    return records, contacts, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--drift", type=float, default=0.02, help="share of items that changed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    binding = bind(CONTACTS)
    records, contacts, rows = world(binding, args.items, args.drift, random.Random(args.seed))

    started = time.process_time()
    crm = [snapshot_crm(binding, r) for r in records]
    exchange = [snapshot_exchange(binding, i) for i in contacts]
    snapshots_s = time.process_time() - started

    started = time.process_time()
    by_item = {row.exchange_id: row for row in rows}
    warm = [snapshot_exchange(binding, i, by_item.get(i.ref.id if i.ref else "")) for i in contacts]
    warm_s = time.process_time() - started
    assert [s.hash for s in warm] == [s.hash for s in exchange]

    started = time.process_time()
    result = plan(binding, crm, exchange, rows, kind=PassKind.COMPLETE)
    plan_s = time.process_time() - started

    print(f"date       {datetime.now(UTC):%Y-%m-%d %H:%M UTC}")
    print(
        f"machine    {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    print(
        f"mailbox    {args.items} linked contacts, drift {args.drift:.0%}: "
        f"{len(crm)} CRM records, {len(exchange)} Exchange items"
    )
    rate = (len(crm) + len(exchange)) / snapshots_s
    print(
        f"snapshots  {snapshots_s:.3f} s CPU  ({rate:,.0f} items/s; normalize + hash, both sides)"
    )
    print(f"           {warm_s:.3f} s CPU  Exchange side only, unchanged change keys reuse the row")
    print(f"plan       {plan_s:.3f} s CPU  ({args.items / plan_s:,.0f} items/s)")
    print(f"actions    {result.counts()}")


if __name__ == "__main__":
    main()
