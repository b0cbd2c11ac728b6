"""Reading the test database from synchronous tests (the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql, *args))


def table_dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the operator-visible tables, to compare before and after a failed request."""
    names = ("servers", "mailboxes", "jobs", "runs")
    return {n: [tuple(r) for r in fetch(url, f"SELECT * FROM sync.{n} ORDER BY 1")] for n in names}
