"""Apply a plan: perform each action's writes, then commit its link row.

One item's trouble stays with that item: a value the other side refuses is recorded in
`item_errors` and skipped; a conflict (the item changed since it was read) is left for the next
pass, which re-reads and re-plans it. Transient and mailbox-wide errors end the pass; what was
committed so far stays committed, and a replay finds it linked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from ews_client.errors import ConflictError, ItemNotFoundError, ItemRejectedError
from ews_client.models import ExchangeBackend, ItemRef
from sync_service import metrics
from sync_service.crm.port import CrmPort, CrmRejected, RecordGone, VersionConflict
from sync_service.db.store import Mailbox, Store
from sync_service.engine.actions import (
    Action,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Link,
    Plan,
    Unlink,
    Update,
)
from sync_service.engine.mapping import Binding, new_item, new_record, updated_record
from sync_service.engine.records import CrmRecord
from sync_service.engine.state import SyncedRow

log = logging.getLogger("sync_service.applier")
# Writes of one mailbox in flight at once; the client's per-mailbox limits still apply.
APPLY_CONCURRENCY = 4


@dataclass(slots=True)
class EntityOutcome:
    """What a pass did to one entity: counts[direction][operation], errors, conflicts."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: int = 0
    skipped: int = 0
    conflicts: int = 0
    planned: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_plan(cls, plan: Plan) -> EntityOutcome:
        """A dry run's outcome: what would have been done."""
        return cls(planned=plan.counts())

    def count(self, direction: str, operation: str) -> None:
        ops = self.counts.setdefault(direction, {})
        ops[operation] = ops.get(operation, 0) + 1


class Applier:
    def __init__(
        self,
        mailbox: Mailbox,
        backend: ExchangeBackend,
        crm: CrmPort,
        store: Store,
        binding: Binding,
        records: dict[str, CrmRecord],
        pending: dict[str, str] | None = None,
    ) -> None:
        self.mailbox = mailbox
        # Creates intended by an earlier pass that may have happened before a crash: only
        # those need a look-up first (every create commits its intent before it is made).
        self.pending = pending or {}
        self.backend = backend
        self.crm = crm
        self.store = store
        self.binding = binding
        self.records = records
        self.entity = binding.entity
        self.outcome = EntityOutcome()
        self.refused: set[str] = set()

    async def apply(self, plan: Plan) -> EntityOutcome:
        self.outcome.planned = plan.counts()
        rows = await self.store.pool.fetch(
            self.store.q["item_errors_refused"], self.mailbox.id, self.entity.value
        )
        self.refused = {r["content_hash"] for r in rows}
        limit = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(action: Action) -> None:
            async with limit:
                await self._guarded(action)

        try:
            async with asyncio.TaskGroup() as group:
                for action in plan.actions:
                    group.create_task(one(action))
        except ExceptionGroup as group:
            # A pass-ending error (transient, mailbox-wide) stopped the other writes: the pass
            # ends with it; what was committed so far stays committed.
            raise group.exceptions[0] from None
        return self.outcome

    async def _guarded(self, action: Action) -> None:
        row: SyncedRow | None = getattr(action, "row", None)
        if row is not None and not isinstance(action, Link) and row.crm_hash in self.refused:
            self.outcome.skipped += 1  # refused before with this very content: wait for a change
            return
        try:
            await self._apply(action)
        except (ItemRejectedError, CrmRejected) as exc:
            await self._item_error(action, exc)
        except (ConflictError, VersionConflict, RecordGone, ItemNotFoundError) as exc:
            # Changed or removed behind our back since it was read: re-plan on the next pass.
            log.info(
                "item changed during the pass; will re-plan",
                extra={
                    "mailbox": self.mailbox.email,
                    "entity": self.entity.value,
                    "error": type(exc).__name__,
                },
            )
            self.outcome.conflicts += 1

    async def _apply(self, action: Action) -> None:
        match action:
            case CreateExchange():
                await self._create_exchange(action)
            case CreateCrm():
                await self._create_crm(action)
            case Update():
                await self._update(action)
            case DeleteExchange():
                await self.backend.delete_item(self.mailbox.email, action.ref, self.entity)
                await self._unlink(action.crm_id)
                self._written("crm_to_exchange", "delete")
            case DeleteCrm():
                record = await self._record(action.crm_id)
                await self.crm.delete_for_user(
                    self.entity,
                    action.crm_id,
                    self.mailbox.crm_user_id,
                    record.version,
                    self.mailbox.crm_user_id,
                )
                await self._unlink(action.crm_id)
                self._written("exchange_to_crm", "delete")
            case Link():
                await self._link(action.row)
            case Unlink():
                await self._unlink(action.crm_id)

    async def _create_exchange(self, action: CreateExchange) -> None:
        email = self.mailbox.email
        item = new_item(self.binding, action.fields, action.crm_id)
        await self._link(action.intent)
        # Idempotent create: a crash after an earlier create left the item behind.
        ref = None
        if self.pending.get(action.crm_id) == "exchange":
            ref = await self.backend.find_by_crm_id(email, self.entity, action.crm_id)
        if ref is None:
            ref = await self.backend.create_item(email, item)
        else:
            ref = await self.backend.update_item(email, ref, item, _all_fields(item))
        await self._link(replace(action.row, exchange_id=ref.id, change_key=ref.change_key))
        self._written("crm_to_exchange", "create")

    async def _create_crm(self, action: CreateCrm) -> None:
        user = self.mailbox.crm_user_id
        record = new_record(self.binding, action.fields, action.crm_id, user)
        await self._link(action.intent)
        existing = {}
        if self.pending.get(action.crm_id) == "crm":
            existing = await self.crm.get_records(self.entity, [action.crm_id])
        if action.crm_id in existing:  # a replay after a crash: the record is already there
            old = existing[action.crm_id]
            await self.crm.update_record(replace(record, version=old.version), old.version, user)
        else:
            await self.crm.create_record(record, user)
        ref = action.source
        if action.stamp:
            item = new_item(self.binding, action.fields, action.crm_id)
            ref = await self.backend.update_item(
                self.mailbox.email, ref, item, frozenset({"crm_id"})
            )
        await self._link(replace(action.row, exchange_id=ref.id, change_key=ref.change_key))
        self._written("exchange_to_crm", "create")

    async def _update(self, action: Update) -> None:
        user = self.mailbox.crm_user_id
        if action.intent is not None:
            await self._link(action.intent)
        if action.crm_changes:
            old = await self._record(action.crm_id)
            record = updated_record(self.binding, old, action.target, action.crm_changes)
            await self.crm.update_record(record, old.version, user)
            self._written("exchange_to_crm", "update")
        ref = action.ref
        names = action.model_fields | ({"crm_id"} if action.stamp else set())
        if names:
            item = new_item(self.binding, action.target, action.crm_id)
            ref = await self.backend.update_item(self.mailbox.email, ref, item, frozenset(names))
            self._written("crm_to_exchange", "update")
        await self._link(replace(action.row, exchange_id=ref.id, change_key=ref.change_key))

    async def _record(self, crm_id: str) -> CrmRecord:
        """The record as read in this pass, or read now: an express pass reads only the
        records that changed, and an unchanged one may still need an Exchange-side change."""
        record = self.records.get(crm_id)
        if record is None:
            record = (await self.crm.get_records(self.entity, [crm_id])).get(crm_id)
            if record is None:
                raise RecordGone(self.entity, crm_id)
        return record

    async def _link(self, row: SyncedRow) -> None:
        await self.store.pool.execute(
            self.store.q["item_link_upsert"],
            self.mailbox.id,
            self.entity.value,
            row.crm_id,
            row.exchange_id,
            row.change_key,
            row.crm_hash,
            row.exchange_hash,
            dict(row.fields),
            row.pending,
            row.intent_hash,
        )

    async def _unlink(self, crm_id: str) -> None:
        await self.store.pool.execute(
            self.store.q["item_link_delete"], self.mailbox.id, self.entity.value, crm_id
        )

    async def _item_error(self, action: Action, exc: Exception) -> None:
        direction = (
            "exchange_to_crm" if isinstance(action, CreateCrm | DeleteCrm) else ("crm_to_exchange")
        )
        crm_id = getattr(action, "crm_id", None)
        ref: ItemRef | None = getattr(action, "ref", None) or getattr(action, "source", None)
        row: SyncedRow | None = getattr(action, "row", None)
        content_hash = row.crm_hash if row else None
        await self.store.pool.execute(
            self.store.q["item_error_insert"],
            self.mailbox.id,
            self.entity.value,
            crm_id,
            ref.id if ref else None,
            direction,
            str(exc)[:1000],
            content_hash,
        )
        metrics.ITEM_ERRORS.labels(self.entity.value, direction).inc()
        self.outcome.errors += 1

    def _written(self, direction: str, operation: str) -> None:
        self.outcome.count(direction, operation)
        metrics.ITEMS_WRITTEN.labels(self.entity.value, direction, operation).inc()


def _all_fields(item: object) -> frozenset[str]:
    names = getattr(item, "__slots__", ())
    return frozenset(n for n in names if n not in ("ref", "last_modified", "kind"))
