"""The audit trail (`sql/audit.sql`): one row per write the sync made, read back by mailbox,
record and time, newest first, a page at a time.

The rows are written by the link statements of `LinkStore` (the write's link row and its audit
row commit together); `AuditEntry` is what the applier hands them. Pages are keyset-paginated on
(at, id): a page starts strictly below the last row of the previous one, so a page costs an
index range scan however deep it is, and rows written meanwhile never shift it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import asyncpg

from sync_service.db.queries import load_queries


class AuditEntry(TypedDict):
    """One write as the applier describes it (every key present: the SQL reads them all).

    side: "crm" or "exchange" (the side written); operation: "create", "update", "delete";
    changed_on: "crm", "exchange" or "both" (whose change the write carries over); changes:
    {field: {"before": value, "after": value}}; policy, winner, losing: the conflict's policy,
    the side kept and the other side's values ({field: value}), else None. earlier: the create
    of an earlier pass (cut short before it linked it), audited for the run that made it.
    """

    crm_id: str
    exchange_id: str
    title: str
    side: str
    operation: str
    changed_on: str
    reason: str
    changes: dict[str, dict[str, Any]]
    policy: str | None
    winner: str | None
    losing: dict[str, Any] | None
    earlier: bool


# Where a page starts: strictly below this (at, id), newest first.
Position = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which rows: of one mailbox, of one record (its CRM id or its Exchange id), in
    [since, until), below `after`; at most `limit`."""

    mailbox_id: int | None = None
    record: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: Position | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    mailbox: str
    run_id: int | None
    entity: str
    crm_id: str
    exchange_id: str
    title: str
    side: str
    operation: str
    changed_on: str
    reason: str
    changes: dict[str, dict[str, Any]]
    policy: str | None
    winner: str | None
    losing: dict[str, Any] | None

    @property
    def position(self) -> Position:
        return (self.at, self.id)


class AuditTrail:
    """Reads of `sync.audit`; retention deletes from it with the other tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def rows(self, wanted: AuditFilter) -> list[AuditRow]:
        """The rows `wanted` selects, newest first: one index range per access path."""
        at, after_id = wanted.after or (None, None)
        bounds = (wanted.since, wanted.until, at, after_id, wanted.limit)
        if wanted.record is not None:
            found = await self.pool.fetch(
                self._q["audit_of_record"], wanted.record, wanted.mailbox_id, *bounds
            )
        elif wanted.mailbox_id is not None:
            found = await self.pool.fetch(self._q["audit_of_mailbox"], wanted.mailbox_id, *bounds)
        else:
            found = await self.pool.fetch(self._q["audit_all"], *bounds)
        return [AuditRow(**dict(row)) for row in found]
