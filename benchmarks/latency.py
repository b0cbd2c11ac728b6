"""Benchmark (3): change latency under push, both directions.

K changes spread evenly over a window, alternating sides, each on a different mailbox where
possible: an Outlook edit (the simulator's owner PATCH of a contact's JobTitle) must show up in
crm.contacts.job_title; a CRM edit (UPDATE crm.contacts SET job_title) must show up in the
mailbox's contact (read through the simulator's admin API). Each change carries a unique
marker; arrival is polled every POLL_S, so figures are accurate to about that.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from benchmarks.stack import address_of

POLL_S = 0.2
GRACE_S = 60.0


@dataclass(slots=True)
class Change:
    side: str  # where the edit is made: "exchange" or "crm"
    mailbox: int
    marker: str
    made_at: float = 0.0
    arrived_at: float | None = None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return round(ordered[index], 3)


async def _items(http: aiohttp.ClientSession, base: str, mailbox: int) -> list[dict[str, Any]]:
    async with http.get(f"{base}/_sim/mailboxes/{address_of(mailbox)}/items") as resp:
        resp.raise_for_status()
        return list((await resp.json())["items"])


async def _make(change: Change, http: aiohttp.ClientSession, base: str, conn: Any) -> None:
    if change.side == "exchange":
        items = await _items(http, base, change.mailbox)
        target = next(i for i in items if i["kind"] == "Contact")
        change.made_at = time.monotonic()
        url = f"{base}/_sim/mailboxes/{address_of(change.mailbox)}/items/{target['id']}"
        async with http.patch(url, json={"fields": {"JobTitle": change.marker}}) as resp:
            resp.raise_for_status()
    else:
        change.made_at = time.monotonic()
        await conn.execute(
            "UPDATE crm.contacts SET job_title = $2 WHERE id = ("
            "SELECT c.id FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
            "WHERE u.email = $1 ORDER BY c.first_name LIMIT 1)",
            address_of(change.mailbox),
            change.marker,
        )


async def _check(pending: list[Change], http: aiohttp.ClientSession, base: str, conn: Any) -> None:
    to_crm = [c for c in pending if c.side == "exchange"]
    if to_crm:
        rows = await conn.fetch(
            "SELECT job_title FROM crm.contacts WHERE job_title = ANY($1::text[])",
            [c.marker for c in to_crm],
        )
        found = {r["job_title"] for r in rows}
        now = time.monotonic()
        for c in to_crm:
            if c.marker in found:
                c.arrived_at = now
    for c in (c for c in pending if c.side == "crm"):
        items = await _items(http, base, c.mailbox)
        if any(i["fields"].get("JobTitle") == c.marker for i in items):
            c.arrived_at = time.monotonic()


async def measure(
    url: str, base: str, mailboxes: int, changes: int, window_s: float, seed: int = 7
) -> dict[str, Any]:
    rng = random.Random(seed)
    boxes = rng.sample(range(1, mailboxes + 1), min(changes, mailboxes))
    plan = [
        Change("exchange" if n % 2 else "crm", boxes[n % len(boxes)], f"bench-{n}-{rng.random()}")
        for n in range(changes)
    ]
    gap = window_s / max(1, changes)
    # Two connections: the maker's writes and the checker's reads run concurrently.
    conn, check_conn = await asyncpg.connect(url), await asyncpg.connect(url)
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as http:

            async def maker() -> None:
                for n, change in enumerate(plan):
                    delay = started + n * gap - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await _make(change, http, base, conn)

            make_task = asyncio.create_task(maker())
            deadline = started + window_s + GRACE_S
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
                if make_task.done():
                    make_task.result()
                pending = [c for c in plan if c.made_at and c.arrived_at is None]
                if pending:
                    await _check(pending, http, base, check_conn)
                if make_task.done() and all(c.arrived_at for c in plan):
                    break
            if not make_task.done():
                make_task.cancel()
    finally:
        await conn.close()
        await check_conn.close()
    out: dict[str, Any] = {"changes": changes, "window_s": window_s, "poll_s": POLL_S}
    for side in ("exchange", "crm", "all"):
        chosen = [c for c in plan if side in ("all", c.side)]
        lags = [c.arrived_at - c.made_at for c in chosen if c.arrived_at is not None]
        out[f"{side}_to_other_side" if side != "all" else "all"] = {
            "made": len(chosen),
            "arrived": len(lags),
            "lost_within_grace": len(chosen) - len(lags),
            "p50_s": _quantile(lags, 0.50),
            "p95_s": _quantile(lags, 0.95),
            "p99_s": _quantile(lags, 0.99),
            "max_s": round(max(lags), 3) if lags else None,
        }
    return out
