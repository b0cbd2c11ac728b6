"""The folder each entity of a pass reads and writes: the default one, or the folder its link
names (resolved here once, then kept by id), and what a link that cannot be served does: the
entity is left out of the pass with the reason stored, nothing is planned for it, so nothing
is deleted on either side because of it; the pass goes on with the other entities.

A link that changed is matched afresh: the entity's links to the old folder are dropped and
the new folder is read in full as an initial pass reads it (items paired by CRM id, then by
content; the rest created on the other side), so no record is deleted because the old
folder's items are not in the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from ews_client import (
    EntityKind,
    ExchangeBackend,
    ExchangeError,
    FolderChoice,
    FolderNotFoundError,
    Item,
    ItemRef,
    KnownKeys,
    LinkedFolder,
    SyncMarker,
    SyncResult,
)
from sync_service.db.folder_links import FolderLink, FolderLinkStore
from sync_service.db.store import Mailbox

log = logging.getLogger("sync_service.runtime.folder_links")


@dataclass(slots=True)
class PassFolders:
    """One pass's folder links: read at its start, settled at its end."""

    store: FolderLinkStore
    mailbox: Mailbox
    dry_run: bool
    links: dict[str, FolderLink] = field(default_factory=dict)
    folders: dict[EntityKind, str] = field(default_factory=dict)
    skipped: set[EntityKind] = field(default_factory=set)

    @classmethod
    def of(cls, pool: asyncpg.Pool, mailbox: Mailbox, dry_run: bool) -> PassFolders:
        return cls(FolderLinkStore(pool), mailbox, dry_run)

    async def prepare(
        self, backend: ExchangeBackend, entities: Sequence[EntityKind]
    ) -> ExchangeBackend:
        """Resolve the links of `entities` not resolved yet; the backend that reads and writes
        each entity in its folder. Entities whose link cannot be served are in `skipped`."""
        self.links = await self.store.links(self.mailbox.id)
        for entity in entities:
            link = self.links.get(entity.value)
            if link is None or not link.linked:
                continue
            if link.error is not None:
                self.skipped.add(entity)
                continue
            folder = link.folder_id or await self._resolve(backend, entity, link)
            if folder is not None:
                self.folders[entity] = folder
        return FolderBackend(backend, self.folders) if self.folders else backend

    async def _resolve(
        self, backend: ExchangeBackend, entity: EntityKind, link: FolderLink
    ) -> str | None:
        assert link.choice_by is not None and link.choice_value is not None
        choice = FolderChoice(link.choice_by, link.choice_value)  # type: ignore[arg-type]
        try:
            # A dry run makes nothing: a folder it would make is reported missing instead.
            create = link.create_missing and not self.dry_run
            found: LinkedFolder = await backend.resolve_folder(
                self.mailbox.email, entity, choice, create=create
            )
        except FolderNotFoundError as exc:
            await self.gone(entity, exc)
            return None
        if not self.dry_run:
            await self.store.resolved(
                self.mailbox.id, entity.value, link.generation, found.id, found.path
            )
        log.info(
            "folder link resolved",
            extra={
                "mailbox": self.mailbox.email,
                "entity": entity.value,
                "folder": found.path,
                "created": found.created,
            },
        )
        return found.id

    def rematching(self, entity: EntityKind) -> bool:
        link = self.links.get(entity.value)
        return link is not None and link.rematch and entity not in self.skipped

    async def restart(self, entity: EntityKind) -> None:
        """Before the fresh match of a newly linked folder: the old folder's links go."""
        if not self.dry_run:
            await self.store.drop_item_links(self.mailbox.id, entity.value)

    async def gone(self, entity: EntityKind, exc: ExchangeError) -> None:
        """The entity's linked folder cannot be read: stored, and the entity left out."""
        self.skipped.add(entity)
        link = self.links.get(entity.value)
        reason = f"linked folder {_shown(link)} cannot be read: {exc}"
        log.warning(
            "folder link failed",
            extra={"mailbox": self.mailbox.email, "entity": entity.value, "error": reason},
        )
        if link is not None and not self.dry_run:
            await self.store.failed(self.mailbox.id, entity.value, link.generation, reason)

    async def settle(self, done: Sequence[EntityKind]) -> None:
        """After the pass's commit: the entities read are matched, their folder ids kept."""
        read = [
            (e.value, link.generation, self.folders.get(e))
            for e in done
            if (link := self.links.get(e.value)) is not None and e not in self.skipped
        ]
        if read and not self.dry_run:
            await self.store.settled(self.mailbox.id, read)


def _shown(link: FolderLink | None) -> str:
    if link is None or link.choice_value is None:
        return "(default)"
    return f"{link.choice_by} {link.choice_value!r}"


class FolderBackend:
    """An `ExchangeBackend` that reads and writes each entity in its linked folder."""

    def __init__(self, backend: ExchangeBackend, folders: dict[EntityKind, str]) -> None:
        self.inner = backend
        self.folders = folders

    async def resolve_folder(
        self, mailbox: str, entity: EntityKind, choice: FolderChoice, *, create: bool = False
    ) -> LinkedFolder:
        return await self.inner.resolve_folder(mailbox, entity, choice, create=create)

    async def sync_changes(
        self,
        mailbox: str,
        entity: EntityKind,
        sync_state: str | None,
        known: KnownKeys | None = None,
        *,
        folder: str | None = None,
    ) -> SyncResult:
        where = folder or self.folders.get(entity)
        return await self.inner.sync_changes(mailbox, entity, sync_state, known, folder=where)

    async def list_items(
        self, mailbox: str, entity: EntityKind, *, folder: str | None = None
    ) -> list[Item]:
        where = folder or self.folders.get(entity)
        return await self.inner.list_items(mailbox, entity, folder=where)

    async def create_item(self, mailbox: str, item: Item, *, folder: str | None = None) -> ItemRef:
        where = folder or self.folders.get(item.kind)
        return await self.inner.create_item(mailbox, item, folder=where)

    async def update_item(
        self,
        mailbox: str,
        ref: ItemRef,
        item: Item,
        fields: frozenset[str],
        *,
        folder: str | None = None,
    ) -> ItemRef:
        where = folder or self.folders.get(item.kind)
        return await self.inner.update_item(mailbox, ref, item, fields, folder=where)

    async def create_many(
        self, mailbox: str, items: Sequence[Item], *, folder: str | None = None
    ) -> list[ItemRef | ExchangeError]:
        where = folder or (self.folders.get(items[0].kind) if items else None)
        return await self.inner.create_many(mailbox, items, folder=where)

    async def update_many(
        self,
        mailbox: str,
        changes: Sequence[tuple[ItemRef, Item, frozenset[str]]],
        *,
        folder: str | None = None,
    ) -> list[ItemRef | ExchangeError]:
        where = folder or (self.folders.get(changes[0][1].kind) if changes else None)
        return await self.inner.update_many(mailbox, changes, folder=where)

    async def delete_item(
        self, mailbox: str, ref: ItemRef, entity: EntityKind, *, folder: str | None = None
    ) -> None:
        where = folder or self.folders.get(entity)
        await self.inner.delete_item(mailbox, ref, entity, folder=where)

    async def find_by_crm_id(
        self, mailbox: str, entity: EntityKind, crm_id: str, *, folder: str | None = None
    ) -> ItemRef | None:
        where = folder or self.folders.get(entity)
        return await self.inner.find_by_crm_id(mailbox, entity, crm_id, folder=where)

    async def read_marker(self, mailbox: str) -> SyncMarker | None:
        return await self.inner.read_marker(mailbox)

    async def write_marker(self, mailbox: str, marker: SyncMarker) -> None:
        await self.inner.write_marker(mailbox, marker)

    def __getattr__(self, name: str) -> object:
        # What the runtime reaches past the protocol (write_batches_in_flight, ...).
        return getattr(self.inner, name)


def _conforms(backend: FolderBackend) -> ExchangeBackend:
    return backend  # mypy proves FolderBackend implements the ExchangeBackend Protocol
