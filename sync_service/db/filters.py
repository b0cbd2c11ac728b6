"""Sync filters (`sql/filters.sql`): the settings of servers and mailboxes, and the link rows
of item pairs that left a filter (`sync.parked_links`).

A pass screens each entity's reads through the pure `planning.filters.apply` and, unless it is
a dry run, moves the rows of pairs that left the filter aside and those that came back among
the links before it plans (`settle`): a pass cut short after that finds them where they belong.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg

from ews_client.models import EntityKind, Item
from sync_service.db.queries import load_queries
from sync_service.db.store import Store
from sync_service.planning.filter_settings import check_setting, effective
from sync_service.planning.filters import Filter, Screened, apply
from sync_service.planning.mapping import Binding
from sync_service.planning.records import CrmRecord
from sync_service.planning.state import SyncedRow
from sync_service.planning.values import Fields

Setting = dict[str, object]


@dataclass(frozen=True, slots=True)
class MailboxFilter:
    """The filter in effect for one mailbox, and the entities with parked rows."""

    spec: Filter
    parked: frozenset[str]

    def applies_to(self, entity: EntityKind) -> bool:
        return self.spec.active or entity.value in self.parked


@dataclass(frozen=True, slots=True)
class Reads:
    """One entity's reads as a pass hands them to the filter."""

    crm: Mapping[str, CrmRecord]
    exchange: list[Item]
    links: list[SyncedRow]
    full: bool  # both sides listed in full
    deleted_crm: Collection[str] = frozenset()
    deleted_exchange: Collection[str] = frozenset()


class FilterStore:
    """Filter settings and parked link rows."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def for_mailbox(self, mailbox_id: int) -> MailboxFilter:
        row = await self.pool.fetchrow(self._q["filters_of_mailbox"], mailbox_id)
        if row is None:
            return MailboxFilter(Filter(), frozenset())
        spec = effective(_json(row["server_filters"]), _json(row["mailbox_filters"]))
        return MailboxFilter(spec, frozenset(row["parked"]))

    async def screen(
        self,
        mailbox_id: int,
        binding: Binding,
        mine: MailboxFilter,
        reads: Reads,
        *,
        now: datetime,
    ) -> Screened:
        """The reads the planner may see (`settle` then moves the rows it names)."""
        entity = binding.entity
        if not mine.applies_to(entity):
            empty: frozenset[str] = frozenset()
            return Screened(dict(reads.crm), reads.exchange, reads.links, empty, empty, [], [], [])
        parked = await self.parked(mailbox_id, entity) if entity.value in mine.parked else []
        return apply(
            mine.spec,
            reads.crm,
            reads.exchange,
            reads.links,
            parked,
            full=reads.full,
            now=now,
            deleted_crm=reads.deleted_crm,
            deleted_exchange=reads.deleted_exchange,
            binding=binding,
        )

    async def settle(self, mailbox_id: int, entity: EntityKind, screened: Screened) -> None:
        """Set the rows of pairs that left the filter aside, restore those back in it, and
        forget those whose items are gone: in one transaction, before the plan's writes."""
        leaving, entering, forgotten = screened.leaving, screened.entering, screened.forgotten
        if not (leaving or entering or forgotten):
            return
        key = (mailbox_id, entity.value)
        async with self.pool.acquire() as conn, conn.transaction():
            if leaving:
                await conn.execute(self._q["links_park"], *key, [r.crm_id for r in leaving])
            if entering:
                ids = [r.crm_id for r in entering]
                items = [r.exchange_id for r in entering]
                keys = [r.change_key for r in entering]
                await conn.execute(self._q["links_restore"], *key, ids, items, keys)
            if forgotten:
                ids = [r.crm_id for r in forgotten]
                await conn.execute(self._q["parked_links_forget"], *key, ids)

    async def parked(self, mailbox_id: int, entity: EntityKind) -> list[SyncedRow]:
        rows = await self.pool.fetch(self._q["parked_links_list"], mailbox_id, entity.value)
        return [_row(r) for r in rows]

    async def parked_counts(self, mailbox_id: int) -> dict[str, int]:
        rows = await self.pool.fetch(self._q["parked_links_count"], mailbox_id)
        return {r["entity"]: int(r["n"]) for r in rows}

    # -- settings --------------------------------------------------------------------------

    async def server_setting(self, name: str) -> Setting | None:
        """A server's setting; None: no such server."""
        raw = await self.pool.fetchval(self._q["server_filters_get"], name)
        return None if raw is None else _json(raw)

    async def set_server_setting(self, name: str, setting: Mapping[str, object]) -> Setting | None:
        """Store a server's setting (checked); None: no such server."""
        text = json.dumps(check_setting(setting))
        raw = await self.pool.fetchval(self._q["server_filters_set"], name, text)
        return None if raw is None else _json(raw)

    async def mailbox_setting(self, email: str) -> tuple[Setting, Setting] | None:
        """(the mailbox's own setting, its server's); None: no such mailbox."""
        row = await self.pool.fetchrow(self._q["mailbox_filters_get"], email)
        return None if row is None else (_json(row["filters"]), _json(row["server_filters"]))

    async def mailbox_detail(self, email: str) -> dict[str, Any] | None:
        """A mailbox's own setting, its server's, the filter in effect and its parked pairs
        per entity; None: no such mailbox."""
        found = await self.mailbox_setting(email)
        mailbox = await Store(self.pool).mailbox_by_email(email)
        if found is None or mailbox is None:
            return None
        own, server = found
        return {
            "own": own,
            "server": server,
            "effective": effective(server, own).setting(),
            "set_aside": await self.parked_counts(mailbox.id),
        }

    async def set_mailbox_setting(
        self, email: str, setting: Mapping[str, object]
    ) -> Setting | None:
        """Store a mailbox's own setting (checked); None: no such mailbox."""
        text = json.dumps(check_setting(setting))
        raw = await self.pool.fetchval(self._q["mailbox_filters_set"], email, text)
        return None if raw is None else _json(raw)


def _json(raw: Any) -> Setting:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return dict(value) if isinstance(value, dict) else {}


def _row(r: asyncpg.Record) -> SyncedRow:
    return SyncedRow(
        crm_id=r["crm_id"],
        exchange_id=r["exchange_id"],
        change_key=r["change_key"],
        crm_hash=r["crm_hash"],
        exchange_hash=r["exchange_hash"],
        fields=cast(Fields, _json(r["synced_fields"])),
        pending=r["pending"],
        intent_hash=r["intent_hash"],
    )
