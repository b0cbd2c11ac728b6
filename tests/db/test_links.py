"""A batch of link rows upserted in one statement equals the same rows upserted one by one."""

from __future__ import annotations

import asyncpg

from sync_service.db.links import LinkStore
from tests.db.test_queue import _mailboxes

COLUMNS = ("crm_id", "exchange_id", "change_key", "crm_hash", "exchange_hash", "synced_fields",
           "pending", "intent_hash")  # fmt: skip


def _row(crm_id: str, exchange_id: str, pending: str = "", **fields: str) -> dict[str, object]:
    return {
        "crm_id": crm_id,
        "exchange_id": exchange_id,
        "change_key": f"ck-{exchange_id}",
        "crm_hash": f"h-{crm_id}",
        "exchange_hash": f"x-{exchange_id}",
        "synced_fields": {"surname": "O'Brien; DROP TABLE x", **fields},
        "pending": pending,
        "intent_hash": "",
    }


async def _links(pool: asyncpg.Pool, mailbox: int) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM sync.item_links WHERE mailbox_id = $1 ORDER BY crm_id",
        mailbox,
    )
    return [tuple(r[c] for c in COLUMNS) for r in rows]


async def test_batch_upsert_matches_single_upserts(pool: asyncpg.Pool) -> None:
    one, many = await _mailboxes(pool, 2)
    links = LinkStore(pool)
    before = [_row("c1", "e1"), _row("c2", "e2"), _row("c3", "", pending="exchange")]
    after = [
        _row("c1", "e1", given="Ada"),  # updated in place
        _row("c3", "e3"),  # an intent confirmed
        _row("c4", "e2"),  # takes over c2's Exchange item: c2's row goes
        _row("c5", "", pending="exchange"),
    ]
    for batch in (before, after):
        for row in batch:
            await links.upsert_links(one, "contact", [row])
        await links.upsert_links(many, "contact", batch)
    assert await _links(pool, many) == await _links(pool, one)
    assert [r[0] for r in await _links(pool, many)] == ["c1", "c3", "c4", "c5"]
