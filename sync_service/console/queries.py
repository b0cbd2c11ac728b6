"""What only the console reads (`sql/console.sql`): the mailbox search, the 24-hour activity,
throttling per server, mailboxes per server, a mailbox's folder links.

Everything an operator can also do from the CLI or the API goes through `Operations` instead;
these are read models the other surfaces have no use for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import asyncpg

from sync_service.db.queries import parse_queries

Row = dict[str, Any]
PAGE_SIZE = 50


@cache
def _queries() -> dict[str, str]:
    text = (resources.files("sync_service.console") / "sql" / "console.sql").read_text()
    return parse_queries(text, "console.sql")


@dataclass(frozen=True, slots=True)
class MailboxSearch:
    """The mailbox list's search text and filters, as the operator gave them (None: any)."""

    text: str | None = None
    state: str | None = None
    server_id: int | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxRows:
    rows: list[Row]
    total: int  # matching mailboxes in all
    next_after: str | None  # the address the next page starts after


def like_pattern(text: str | None) -> str | None:
    """`text` as a contains-pattern for ILIKE, its wildcards taken literally."""
    if text is None or not text.strip():
        return None
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ConsoleQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = _queries()

    async def mailboxes(
        self, search: MailboxSearch, after: str = "", limit: int = PAGE_SIZE
    ) -> MailboxRows:
        """A page of mailboxes in address order after `after`, and how many match in all."""
        args = (like_pattern(search.text), search.state, search.server_id, search.group)
        rows = await self.pool.fetch(self._q["console_mailbox_page"], *args, after, limit + 1)
        total = await self.pool.fetchval(self._q["console_mailbox_count"], *args)
        page = [dict(r) for r in rows[:limit]]
        more = len(rows) > limit
        return MailboxRows(page, int(total), page[-1]["email"] if more else None)

    async def groups(self) -> list[str]:
        return [r[0] for r in await self.pool.fetch(self._q["console_groups"])]

    async def server_mailboxes(self) -> dict[int, dict[str, int]]:
        """{server id: {state: mailboxes}}."""
        counts: dict[int, dict[str, int]] = {}
        for r in await self.pool.fetch(self._q["console_server_mailboxes"]):
            counts.setdefault(int(r["server_id"]), {})[r["state"]] = int(r["n"])
        return counts

    async def activity(self, since: datetime) -> list[Row]:
        """Per hour since `since`: passes, failed passes, items written (dry runs apart).

        Without JIT: the planner cannot know that a run's counts hold a handful of numbers,
        prices the query high enough to compile it, and the compiling (~150 ms) costs several
        times what the query does (~30 ms over 40,000 runs)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL jit = off")
            rows = await conn.fetch(self._q["console_activity"], since)
        return [dict(r) for r in rows]

    async def throttling(self, since: datetime) -> dict[int, Row]:
        """{server id: passes, requests, throttled} since `since`."""
        rows = await self.pool.fetch(self._q["console_throttling"], since)
        return {int(r["server_id"]): dict(r) for r in rows}

    async def folder_links(self, mailbox_id: int) -> list[Row]:
        return [dict(r) for r in await self.pool.fetch(self._q["console_folder_links"], mailbox_id)]
