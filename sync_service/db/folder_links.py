"""Folder links (`sql/folder_links.sql`): the folder each mailbox entity syncs, as the
operator chose it, as a pass resolved it, and why it cannot be served."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sync_service.db.queries import load_queries


@dataclass(frozen=True, slots=True)
class FolderLink:
    entity: str
    choice_by: str | None  # 'id' | 'well_known' | 'path'; None: the default folder
    choice_value: str | None
    create_missing: bool
    folder_id: str | None  # the folder resolved (kept when renamed or moved)
    folder_path: str | None
    error: str | None  # why the link cannot be served; None: it is fine
    error_at: datetime | None
    rematch: bool  # the next pass lists the folder in full and matches it afresh
    generation: int

    @property
    def linked(self) -> bool:
        return self.choice_by is not None


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """One link to set (an import row): `by` None clears it."""

    line: int
    email: str
    entity: str
    by: str | None
    value: str | None
    create: bool = False


@dataclass(frozen=True, slots=True)
class BulkResult:
    changed: int
    unknown: list[tuple[int, str]]  # (line, email) of rows naming no mailbox


class FolderLinkStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._q = load_queries()

    async def links(self, mailbox_id: int) -> dict[str, FolderLink]:
        rows = await self.pool.fetch(self._q["folder_links_of"], mailbox_id)
        return {r["entity"]: _link(r) for r in rows}

    async def set(
        self, mailbox_id: int, entity: str, by: str | None, value: str | None, create: bool
    ) -> bool:
        """Link (or with `by` None unlink) the entity; False when it already was so."""
        got = await self.pool.fetchval(
            self._q["folder_link_set"], mailbox_id, entity, by, value, create
        )
        return got is not None

    async def set_many(self, rows: Sequence[LinkRequest]) -> BulkResult:
        payload = json.dumps(
            [
                {
                    "line": r.line,
                    "email": r.email,
                    "entity": r.entity,
                    "by": r.by,
                    "value": r.value,
                    "create": r.create,
                }
                for r in rows
            ]
        )
        got = await self.pool.fetchrow(self._q["folder_link_bulk_set"], payload)
        assert got is not None
        raw = got["unknown"]  # decoded by the pool's jsonb codec, or text without one
        found = json.loads(raw) if isinstance(raw, str) else raw
        unknown = [(int(line), str(email)) for line, email in found]
        return BulkResult(int(got["changed"]), unknown)

    async def resolved(
        self, mailbox_id: int, entity: str, generation: int, folder_id: str, path: str
    ) -> None:
        await self.pool.execute(
            self._q["folder_link_resolved"], mailbox_id, entity, generation, folder_id, path
        )

    async def failed(self, mailbox_id: int, entity: str, generation: int, error: str) -> None:
        await self.pool.execute(
            self._q["folder_link_failed"], mailbox_id, entity, generation, error[:1000]
        )

    async def drop_item_links(self, mailbox_id: int, entity: str) -> None:
        await self.pool.execute(self._q["folder_link_drop_item_links"], mailbox_id, entity)

    async def settled(self, mailbox_id: int, read: Sequence[tuple[str, int, str | None]]) -> None:
        """The pass that read (entity, generation, folder id) each has ended."""
        if not read:
            return
        await self.pool.execute(
            self._q["folder_link_settled"],
            mailbox_id,
            [entity for entity, _, _ in read],
            [generation for _, generation, _ in read],
            [folder for _, _, folder in read],
        )

    async def error_count(self) -> int:
        return int(await self.pool.fetchval(self._q["folder_link_errors"]))


def _link(r: asyncpg.Record) -> FolderLink:
    return FolderLink(
        entity=r["entity"],
        choice_by=r["choice_by"],
        choice_value=r["choice_value"],
        create_missing=r["create_missing"],
        folder_id=r["folder_id"],
        folder_path=r["folder_path"],
        error=r["folder_error"],
        error_at=r["folder_error_at"],
        rematch=r["rematch"],
        generation=r["link_generation"],
    )
