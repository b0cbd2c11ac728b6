"""Apply a plan: perform each action's writes, then commit its link row.

Each link statement also adds the writes it records to the pass's run and inserts their audit
rows (one statement, one transaction), so a pass cut short at any moment has counted and
audited exactly the writes it linked. A write is handed around as its audit entry
(`runtime/audit.py`), from which its count follows. A create made but not yet linked when a
pass is cut short is found by a later pass, which links it and counts it for the run that
committed its intent (the one that made it).

One item's trouble stays with that item: a value the other side refuses is recorded in
`item_errors` and skipped; a conflict (the item changed since it was read) is left for the next
pass, which re-reads and re-plans it. Transient and mailbox-wide errors end the pass; what was
committed so far stays committed, and a replay finds it linked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg

from ews_client import (
    Appointment,
    ConflictError,
    EntityKind,
    ExchangeBackend,
    ExchangeError,
    Item,
    ItemNotFoundError,
    ItemRef,
    ItemRejectedError,
)
from sync_service import metrics
from sync_service.crm.port import CrmPort, CrmRejected, RecordGone, VersionConflict
from sync_service.db.audit import AuditEntry
from sync_service.db.links import LinkStore
from sync_service.db.store import Mailbox
from sync_service.planning.actions import (
    Action,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Link,
    Plan,
    Unlink,
    Update,
    apply_phase,
)
from sync_service.planning.mapping import Binding, new_item, new_record, updated_record
from sync_service.planning.records import CrmRecord
from sync_service.planning.shared import OwnerDelete
from sync_service.planning.state import SyncedRow
from sync_service.runtime import audit

log = logging.getLogger("sync_service.runtime.applier")
A = TypeVar("A")
# Writes of one mailbox in flight at once; the client's per-mailbox limits still apply.
APPLY_CONCURRENCY = 4
# Items per CreateItem / UpdateItem request: Microsoft suggests modest batches.
BATCH_SIZE = 50
# Writing these means more than one request per item (occurrences are items of their own).
_OCCURRENCE_FIELDS = frozenset({"recurrence", "modified_occurrences", "deleted_occurrences"})


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
        links: LinkStore,
        binding: Binding,
        records: dict[str, CrmRecord],
        pending: dict[str, str] | None = None,
        *,
        run_id: int | None = None,
        owner_delete: OwnerDelete = OwnerDelete.KEEP,
    ) -> None:
        self.mailbox = mailbox
        self.owner_delete = owner_delete  # what the owner's delete of a shared record does
        self.run_id = run_id  # the runs row that counts the writes (None: not counted there)
        # Creates intended by an earlier pass that may have happened before a crash: only
        # those need a look-up first (every create commits its intent before it is made).
        self.pending = pending or {}
        self.backend = backend
        self.crm = crm
        self.links = links
        self.binding = binding
        self.records = records
        self.entity = binding.entity
        self.outcome = EntityOutcome()
        self.refused: set[str] = set()
        # CRM ids of pending creates this pass made itself (not found made by an earlier one).
        self.made: set[str] = set()

    async def apply(self, plan: Plan) -> EntityOutcome:
        self.outcome.planned = plan.counts()
        self.refused = await self.links.refused_hashes(self.mailbox.id, self.entity.value)
        # Phases in the planner's order (stamps, then the rest, then Exchange creates); within
        # a phase, creates go in batches (one request for many items) and the rest run a few
        # at a time.
        for phase in sorted({apply_phase(a) for a in plan.actions}):
            actions = [a for a in plan.actions if apply_phase(a) == phase and not self._skip(a)]
            crm_creates = [a for a in actions if isinstance(a, CreateCrm)]
            ex_creates = [
                a for a in actions if isinstance(a, CreateExchange) and self._batchable(a)
            ]
            updates = [a for a in actions if isinstance(a, Update) and self._plain_update(a)]
            batched = {id(a) for a in [*crm_creates, *ex_creates, *updates]}
            # Every batch of the phase side by side (they write different items): a CRM
            # create batch waits for the CRM and its stamps' UpdateItem, and one after another
            # they left the mailbox's other requests idle (issue 15's far profile).
            await self._in_flight(
                [
                    *(self._create_crm_batch(c) for c in _chunks(crm_creates)),
                    *(self._create_exchange_batch(c) for c in _chunks(ex_creates)),
                    *(self._update_batch(c) for c in _chunks(updates)),
                ]
            )
            await self._concurrently([a for a in actions if id(a) not in batched])
        return self.outcome

    def _skip(self, action: Action) -> bool:
        """Refused before with this very content: wait for a change."""
        row: SyncedRow | None = getattr(action, "row", None)
        if row is not None and not isinstance(action, Link) and row.crm_hash in self.refused:
            self.outcome.skipped += 1
            return True
        return False

    def _batchable(self, action: CreateExchange) -> bool:
        """Plain creates: no earlier attempt to look up, no occurrence exceptions to write."""
        if self.pending.get(action.crm_id) == "exchange":
            return False
        if self.entity is not EntityKind.APPOINTMENT:
            return True  # only appointments have occurrences: no item to build just to look
        item = new_item(self.binding, action.fields, action.crm_id)
        return not (
            isinstance(item, Appointment)
            and (item.modified_occurrences or item.deleted_occurrences)
        )

    def _plain_update(self, action: Update) -> bool:
        """Exchange-side only (a CRM-id stamp, plain fields): many go in one UpdateItem."""
        return not action.crm_changes and not (action.model_fields & _OCCURRENCE_FIELDS)

    async def _update_batch(self, chunk: list[Update]) -> None:
        await self._link_many([a.intent for a in chunk if a.intent is not None])
        writes = [a for a in chunk if a.model_fields or a.stamp]
        changes = [
            (a.ref, new_item(self.binding, a.target, a.crm_id),
             a.model_fields | ({"crm_id"} if a.stamp else frozenset()))
            for a in writes
        ]  # fmt: skip
        try:
            results = await self.backend.update_many(self.mailbox.email, changes)
        except ItemRejectedError:
            results = [await self._one_update(change) for change in changes]
        sent = {id(a) for a in writes}
        refs: dict[int, ItemRef] = {id(a): a.ref for a in chunk if id(a) not in sent}
        failures: list[tuple[Action, ExchangeError]] = []
        written: list[AuditEntry] = []
        for action, result in zip(writes, results, strict=True):
            if isinstance(result, ExchangeError):
                failures.append((action, result))
                continue
            refs[id(action)] = result
            if action.model_fields:
                written.append(audit.update(self.binding, action, "exchange", result.id))
        rows = [
            replace(a.row, exchange_id=refs[id(a)].id, change_key=refs[id(a)].change_key)
            for a in chunk if id(a) in refs
        ]  # fmt: skip
        await self._settle(rows, failures, written)

    async def _in_flight(self, batches: list[Coroutine[Any, Any, None]]) -> None:
        """Batches of writes side by side, as many as the backend says a mailbox takes
        (EWS: several requests per mailbox; Graph: a `$batch` already uses the mailbox's
        four, so one at a time). Each batch commits its own links and counts."""
        limit = asyncio.Semaphore(getattr(self.backend, "write_batches_in_flight", 1))

        async def one(batch: Coroutine[Any, Any, None]) -> None:
            async with limit:
                await batch

        try:
            async with asyncio.TaskGroup() as group:
                for batch in batches:
                    group.create_task(one(batch))
        except ExceptionGroup as group:
            raise group.exceptions[0] from None

    async def _concurrently(self, actions: list[Action]) -> None:
        limit = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(action: Action) -> None:
            async with limit:
                await self._guarded(action)

        try:
            async with asyncio.TaskGroup() as group:
                for action in actions:
                    group.create_task(one(action))
        except ExceptionGroup as group:
            # A pass-ending error (transient, mailbox-wide) stopped the other writes: the pass
            # ends with it; what was committed so far stays committed.
            raise group.exceptions[0] from None

    async def _create_exchange_batch(self, chunk: list[CreateExchange]) -> None:
        await self._link_many([a.intent for a in chunk])
        items = [new_item(self.binding, a.fields, a.crm_id) for a in chunk]
        try:
            results = await self.backend.create_many(self.mailbox.email, items)
        except ItemRejectedError:
            # One item could not even be sent (e.g. text XML cannot carry): one by one, so
            # that only that item is refused.
            await self._concurrently(list(chunk))
            return
        done, written = [], []
        failures: list[tuple[Action, ExchangeError]] = []
        for action, result in zip(chunk, results, strict=True):
            if isinstance(result, ExchangeError):
                failures.append((action, result))
            else:
                self.made.add(action.crm_id)
                done.append(
                    replace(action.row, exchange_id=result.id, change_key=result.change_key)
                )
                ids = (action.crm_id, result.id)
                written.append(audit.create("exchange", ids, action.title, action.fields))
        await self._settle(done, failures, written)

    async def _create_crm_batch(self, chunk: list[CreateCrm]) -> None:
        await self._link_many([a.intent for a in chunk])
        fresh = [a for a in chunk if self.pending.get(a.crm_id) != "crm"]
        user = self.mailbox.crm_user_id
        records = [new_record(self.binding, a.fields, a.crm_id, user) for a in fresh]
        try:
            await self.crm.create_records(records, user)
        except CrmRejected:
            fresh = []  # one record is refused: all of them one by one, below
        operations = {id(a): "create" for a in fresh}
        self.made.update(a.crm_id for a in fresh)
        created = list(fresh)
        for action in chunk:
            if id(action) in operations:
                continue
            try:
                operations[id(action)] = await self._crm_record(action)
            except (ItemRejectedError, CrmRejected, ConflictError, VersionConflict,
                    RecordGone) as exc:  # fmt: skip
                await self._failed(action, exc)
                continue
            created.append(action)
        stamps = [a for a in created if a.stamp]
        changes = [(a.source, new_item(self.binding, a.fields, a.crm_id), frozenset({"crm_id"}))
                   for a in stamps]  # fmt: skip
        try:
            results = await self.backend.update_many(self.mailbox.email, changes)
        except ItemRejectedError:
            # As for creates: one change could not be sent; each on its own.
            results = [await self._one_update(change) for change in changes]
        refs = {id(a): a.source for a in created if not a.stamp}
        failures: list[tuple[Action, ExchangeError]] = []
        for action, result in zip(stamps, results, strict=True):
            if isinstance(result, ExchangeError):
                failures.append((action, result))
            else:
                refs[id(action)] = result
        rows, written = [], []
        for action in created:
            ref = refs.get(id(action))
            if ref is not None:
                rows.append(replace(action.row, exchange_id=ref.id, change_key=ref.change_key))
                written.append(_crm_written(action, operations[id(action)], ref.id))
        # A record whose stamp failed is linked (and counted for its run) by a later pass.
        await self._settle(rows, failures, written)

    async def _one_update(
        self, change: tuple[ItemRef, Item, frozenset[str]]
    ) -> ItemRef | ExchangeError:
        try:
            return await self.backend.update_item(self.mailbox.email, *change)
        except (ItemRejectedError, ConflictError, ItemNotFoundError) as exc:
            return exc

    async def _settle(
        self,
        rows: list[SyncedRow],
        failures: list[tuple[Action, ExchangeError]],
        written: Sequence[AuditEntry],
    ) -> None:
        """End of a batch: link (and count) what was written first, since a failure may end
        the pass."""
        await self._link_many(rows, written)
        for failed, error in failures:
            await self._failed(failed, error)

    async def _failed(self, action: Action, exc: Exception) -> None:
        """One item's failure: recorded, or left for the next pass; anything else ends it."""
        if isinstance(exc, ItemRejectedError | CrmRejected):
            await self._item_error(action, exc)
        elif isinstance(exc, ConflictError | VersionConflict | RecordGone | ItemNotFoundError):
            self.outcome.conflicts += 1
        else:
            raise exc

    async def _guarded(self, action: Action) -> None:
        try:
            await self._apply(action)
        except (ItemRejectedError, CrmRejected, ConflictError, VersionConflict, RecordGone,
                ItemNotFoundError) as exc:  # fmt: skip
            # Refused, or changed or removed behind our back: recorded or re-planned next pass.
            await self._failed(action, exc)

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
                ids = (action.crm_id, action.ref.id)
                deleted = audit.delete("exchange", ids, action.title)
                await self._unlink(action.crm_id, [deleted], settles=True)
            case DeleteCrm():
                if await self._still_in_mailbox(action):
                    return
                record = await self._record(action.crm_id)
                await self.crm.delete_for_user(
                    self.entity,
                    action.crm_id,
                    self.mailbox.crm_user_id,
                    record.version,
                    self.mailbox.crm_user_id,
                    self.owner_delete,
                )
                deleted = audit.delete("crm", (action.crm_id, action.exchange_id), action.title)
                await self._unlink(action.crm_id, [deleted], settles=True)
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
            self.made.add(action.crm_id)
            describe = audit.create
        else:  # made by the earlier pass (counted for it as linked): here it is only written
            ref = await self.backend.update_item(email, ref, item, _all_fields(item))
            describe = audit.replayed
        row = replace(action.row, exchange_id=ref.id, change_key=ref.change_key)
        written = describe("exchange", (action.crm_id, ref.id), action.title, action.fields)
        await self._link(row, [written])

    async def _create_crm(self, action: CreateCrm) -> None:
        await self._link(action.intent)
        operation = await self._crm_record(action)
        ref = action.source
        if action.stamp:
            item = new_item(self.binding, action.fields, action.crm_id)
            ref = await self.backend.update_item(
                self.mailbox.email, ref, item, frozenset({"crm_id"})
            )
        row = replace(action.row, exchange_id=ref.id, change_key=ref.change_key)
        await self._link(row, [_crm_written(action, operation, ref.id)])

    async def _crm_record(self, action: CreateCrm) -> str:
        """Create the record, or update it when a replay after a crash finds it there; which
        operation it was."""
        user = self.mailbox.crm_user_id
        record = new_record(self.binding, action.fields, action.crm_id, user)
        existing = {}
        if self.pending.get(action.crm_id) == "crm":
            existing = await self.crm.get_records(self.entity, [action.crm_id])
        if action.crm_id in existing:  # a replay after a crash: the record is already there
            old = existing[action.crm_id]
            await self.crm.update_record(replace(record, version=old.version), old.version, user)
            return "update"
        await self.crm.create_record(record, user)
        self.made.add(action.crm_id)
        return "create"

    async def _update(self, action: Update) -> None:
        user = self.mailbox.crm_user_id
        if action.intent is not None:
            await self._link(action.intent)
        written: list[AuditEntry] = []
        if action.crm_changes:
            old = await self._record(action.crm_id)
            record = updated_record(self.binding, old, action.target, action.crm_changes)
            await self.crm.update_record(record, old.version, user)
            written.append(audit.update(self.binding, action, "crm", action.ref.id))
        ref = action.ref
        names = action.model_fields | ({"crm_id"} if action.stamp else set())
        if names:
            item = new_item(self.binding, action.target, action.crm_id)
            try:
                ref = await self.backend.update_item(
                    self.mailbox.email, ref, item, frozenset(names)
                )
            except Exception:
                # The CRM half is written and stays so, though the item's link now waits.
                await self._count(written)
                raise
            written.append(audit.update(self.binding, action, "exchange", ref.id))
        row = replace(action.row, exchange_id=ref.id, change_key=ref.change_key)
        await self._link(row, written)

    async def _record(self, crm_id: str) -> CrmRecord:
        """The record as read in this pass, or read now: an express pass reads only the
        records that changed, and an unchanged one may still need an Exchange-side change."""
        record = self.records.get(crm_id)
        if record is None:
            record = (await self.crm.get_records(self.entity, [crm_id])).get(crm_id)
            if record is None:
                raise RecordGone(self.entity, crm_id)
        return record

    async def _link_many(self, rows: list[SyncedRow], written: Sequence[AuditEntry] = ()) -> None:
        """Upsert a batch of link rows in one statement (the last row of a CRM id wins), and
        count and audit `written`, the writes they record, with them."""
        latest = list({row.crm_id: row for row in rows}.values())
        if not latest:
            await self._count(written)
            return
        try:
            await self._upsert_links(latest, written)
        except asyncpg.UniqueViolationError:
            # Two rows of the batch claim one Exchange item: one by one, each replacing the
            # previous holder. The writes count (and are audited) with the last: cut short
            # before it, the pass that replays the unlinked creates counts them.
            for row in latest[:-1]:
                await self._link(row)
            await self._link(latest[-1], written)

    async def _link(self, row: SyncedRow, written: Sequence[AuditEntry] = ()) -> None:
        await self._upsert_links([row], written)

    async def _upsert_links(self, rows: list[SyncedRow], written: Sequence[AuditEntry]) -> None:
        # A settled row over a pending one whose create an earlier pass made: that create is
        # counted (and audited) for the run that made it, in the same statement.
        earlier = [
            audit.earlier(
                self.pending[row.crm_id],
                (row.crm_id, row.exchange_id),
                self.binding.map.title(row.fields),
                row.fields,
            )
            for row in rows
            if not row.pending and self._made_earlier(row.crm_id)
        ]
        await self.links.upsert_links(
            self.mailbox.id,
            self.entity.value,
            [_link_json(row, self._made_earlier(row.crm_id)) for row in rows],
            run_id=self.run_id,
            written=_tally(written),
            audit=[*written, *earlier],
        )
        self._counted(written)

    def _made_earlier(self, crm_id: str) -> bool:
        """Whether a settled row of `crm_id` confirms a create an earlier pass made: it was
        pending when this pass began (the planner found the item or record made, or a replay
        did) and this pass did not make it."""
        return bool(self.pending.get(crm_id)) and crm_id not in self.made

    async def _count(self, written: Sequence[AuditEntry]) -> None:
        """Count and audit writes that no link statement records."""
        if written:
            await self.links.count_writes(
                self.mailbox.id, self.entity.value, self.run_id, _tally(written), written
            )
        self._counted(written)

    async def _still_in_mailbox(self, action: DeleteCrm) -> bool:
        """Whether the item that carries the record's CRM id is still in the mailbox.

        A CRM record is deleted only once its Exchange item is really gone: a listing can
        miss an item that is there (a full Graph listing pages by offset, so a deletion while
        it runs shifts the rest by one). Still there under the linked id: the read missed it,
        nothing is written. Under another id (a copy kept the id): the old link goes, so the
        next pass links the record to the item that carries it.
        """
        ref = await self.backend.find_by_crm_id(self.mailbox.email, self.entity, action.crm_id)
        if ref is None:
            return False
        if ref.id != action.exchange_id:
            await self._unlink(action.crm_id)
        log.warning(
            "CRM record kept: its Exchange item is still in the mailbox",
            extra={"mailbox": self.mailbox.email, "entity": self.entity.value},
        )
        self.outcome.skipped += 1
        return True

    async def _unlink(
        self, crm_id: str, written: Sequence[AuditEntry] = (), *, settles: bool = False
    ) -> None:
        """Drop a link; `settles`: a delete of what the row links, which a pending row's
        create (made by an earlier pass) preceded."""
        earlier = settles and self._made_earlier(crm_id)
        made = [
            audit.earlier(self.pending[crm_id], (e["crm_id"], e["exchange_id"]), e["title"], {})
            for e in written[:1]
            if earlier
        ]
        await self.links.delete_link(
            self.mailbox.id,
            self.entity.value,
            crm_id,
            run_id=self.run_id,
            written=_tally(written),
            earlier=earlier,
            audit=[*made, *written],
        )
        self._counted(written)

    async def _item_error(self, action: Action, exc: Exception) -> None:
        direction = (
            "exchange_to_crm" if isinstance(action, CreateCrm | DeleteCrm) else ("crm_to_exchange")
        )
        crm_id = getattr(action, "crm_id", None)
        ref: ItemRef | None = getattr(action, "ref", None) or getattr(action, "source", None)
        row: SyncedRow | None = getattr(action, "row", None)
        content_hash = row.crm_hash if row else None
        await self.links.add_item_error(
            self.mailbox.id,
            self.entity.value,
            (crm_id, ref.id if ref else None),
            direction,
            _describe(exc)[:1000],
            content_hash,
        )
        metrics.ITEM_ERRORS.labels(self.entity.value, direction).inc()
        self.outcome.errors += 1

    def _counted(self, written: Sequence[AuditEntry]) -> None:
        """Writes the run's row now counts: the pass's report and the metric follow it."""
        for direction, operation in _writes(written):
            self.outcome.count(direction, operation)
            metrics.ITEMS_WRITTEN.labels(self.entity.value, direction, operation).inc()


def _describe(exc: Exception) -> str:
    # The Graph client refuses a write that would mail a meeting's attendees (code
    # "MeetingWouldNotify"): the item error names the setting that decides.
    if getattr(exc, "code", None) == "MeetingWouldNotify":
        return f"{exc} (SYNC_MEETING_INVITATIONS)"
    return str(exc)


def _crm_written(action: CreateCrm, operation: str, exchange_id: str) -> AuditEntry:
    """A CRM create's audit entry ("update": a replay found the record an earlier pass made)."""
    describe = audit.create if operation == "create" else audit.replayed
    return describe("crm", (action.crm_id, exchange_id), action.title, action.fields)


def _writes(written: Sequence[AuditEntry]) -> list[tuple[str, str]]:
    """(direction, operation) of each write, e.g. ("crm_to_exchange", "create")."""
    return [(audit.DIRECTION_OF[entry["side"]], entry["operation"]) for entry in written]


def _tally(written: Sequence[AuditEntry]) -> dict[str, dict[str, int]]:
    """{direction: {operation: n}} of some writes."""
    counts: dict[str, dict[str, int]] = {}
    for direction, operation in _writes(written):
        ops = counts.setdefault(direction, {})
        ops[operation] = ops.get(operation, 0) + 1
    return counts


def _chunks(actions: list[A]) -> list[list[A]]:
    return [actions[i : i + BATCH_SIZE] for i in range(0, len(actions), BATCH_SIZE)]


def _all_fields(item: object) -> frozenset[str]:
    names = getattr(item, "__slots__", ())
    return frozenset(n for n in names if n not in ("ref", "last_modified", "kind"))


def _link_json(row: SyncedRow, earlier: bool = False) -> dict[str, Any]:
    """A link row for `item_links_upsert`; `earlier`: it settles a create an earlier pass made."""
    return {
        "earlier": earlier and not row.pending,
        "crm_id": row.crm_id,
        "exchange_id": row.exchange_id,
        "change_key": row.change_key,
        "crm_hash": row.crm_hash,
        "exchange_hash": row.exchange_hash,
        "synced_fields": dict(row.fields),
        "pending": row.pending,
        "intent_hash": row.intent_hash,
    }
