"""An in-memory CRM, an in-memory mailbox folder and a link table, with a faithful applier.

The applier follows the contract documented on the actions: writes first, then the link row
(upserted, replacing rows with the same CRM id or item id); creates are idempotent (Exchange:
look the CRM id up first; CRM: the planner chose the id). A crash can be injected after any
write of any action, before its row is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ews_client.models import Item, ItemRef
from sync_service.planning import (
    Binding,
    ConflictPolicy,
    CreateCrm,
    CreateExchange,
    CrmRecord,
    DeleteCrm,
    DeleteExchange,
    Link,
    PassKind,
    Plan,
    SyncedRow,
    Unlink,
    Update,
    new_item,
    new_record,
    plan,
    referenced_crm_ids,
    snapshot_crm,
    snapshot_exchange,
    updated_record,
)
from sync_service.planning.values import Fields

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Crash(Exception):
    """Raised by the applier to simulate a process kill between a write and its commit."""


@dataclass
class World:
    binding: Binding
    crm: dict[str, CrmRecord] = field(default_factory=dict)
    ex: dict[str, Item] = field(default_factory=dict)
    links: dict[str, SyncedRow] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)
    crm_log: list[str] = field(default_factory=list)
    ex_log: list[str] = field(default_factory=list)
    crm_mark: int = 0
    ex_mark: int = 0
    tick: int = 0
    serial: int = 0
    # The service's own CRM writes are not logged as changes (no echo), as in the bundled CRM.
    applying: bool = False

    # -- clocks and ids ----------------------------------------------------------------------

    def now(self) -> datetime:
        self.tick += 1
        return EPOCH + timedelta(seconds=self.tick)

    def new_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:05d}"

    # -- user edits ------------------------------------------------------------------------

    def crm_put(self, crm_id: str, fields: Fields) -> None:
        old = self.crm.get(crm_id)
        record = new_record(self.binding, fields, crm_id, "owner")
        version = 1 if old is None else (old.version + 1)
        self.crm[crm_id] = replace(record, updated_at=self.now(), version=version)
        self._log_crm(crm_id)

    def crm_delete(self, crm_id: str) -> None:
        del self.crm[crm_id]
        self.tombstones.add(crm_id)
        self._log_crm(crm_id)

    def _log_crm(self, crm_id: str) -> None:
        if not self.applying:
            self.crm_log.append(crm_id)

    def ex_put(self, item_id: str, fields: Fields, crm_id: str | None) -> None:
        item = new_item(self.binding, fields, crm_id or "")
        self._ex_store(item_id, replace(item, crm_id=crm_id))

    def _ex_store(self, item_id: str, item: Item) -> ItemRef:
        ref = ItemRef(item_id, self.new_id("ck"))
        self.ex[item_id] = replace(item, ref=ref, last_modified=self.now())
        self.ex_log.append(item_id)
        return ref

    def ex_touch(self, item_id: str) -> None:
        """Noise: a read flag or an unmapped property changes the change key only."""
        self._ex_store(item_id, self.ex[item_id])

    def ex_delete(self, item_id: str) -> None:
        del self.ex[item_id]
        self.ex_log.append(item_id)

    # -- reading both sides ----------------------------------------------------------------

    def plan(self, kind: PassKind, policy: ConflictPolicy, *, force: bool = True) -> Plan:
        if kind == PassKind.EXPRESS:
            return self._plan_express(policy, self.crm_mark, self.ex_mark, force)
        by_item = {row.exchange_id: row for row in self.links.values()}
        return plan(
            self.binding,
            [snapshot_crm(self.binding, r) for r in self.crm.values()],
            [snapshot_exchange(self.binding, i, by_item.get(k)) for k, i in self.ex.items()],
            list(self.links.values()),
            kind=kind,
            policy=policy,
            deleted_crm=self.tombstones,
            force=force,
        )

    def _plan_express(
        self, policy: ConflictPolicy, crm_mark: int, ex_mark: int, force: bool
    ) -> Plan:
        crm_ids, ex_ids = set(self.crm_log[crm_mark:]), set(self.ex_log[ex_mark:])
        exchange = [snapshot_exchange(self.binding, self.ex[i]) for i in ex_ids if i in self.ex]
        crm_ids |= referenced_crm_ids(exchange, self.links.values())
        return plan(
            self.binding,
            [snapshot_crm(self.binding, self.crm[i]) for i in crm_ids if i in self.crm],
            exchange,
            list(self.links.values()),
            kind=PassKind.EXPRESS,
            policy=policy,
            deleted_crm={i for i in crm_ids if i in self.tombstones and i not in self.crm},
            deleted_exchange={i for i in ex_ids if i not in self.ex},
            force=force,
        )

    def sync(
        self,
        kind: PassKind,
        policy: ConflictPolicy,
        crash_at: int | None = None,
        *,
        replay_from: tuple[int, int] | None = None,
    ) -> Plan:
        """One pass; on a crash nothing after the crashing write is committed."""
        marks = len(self.crm_log), len(self.ex_log)
        if replay_from is not None:
            result = self._plan_express(policy, *replay_from, force=True)
        else:
            result = self.plan(kind, policy)
        try:
            self.apply(result, crash_at)
        except Crash:
            return result
        self.crm_mark, self.ex_mark = marks
        return result

    # -- applying --------------------------------------------------------------------------

    def apply(self, result: Plan, crash_at: int | None = None) -> None:
        """Apply every action; `crash_at` counts steps (writes and intent commits): the crash
        follows that step, before anything else is written or committed."""
        writes = [0]

        def wrote() -> None:
            writes[0] += 1
            if crash_at is not None and writes[0] > crash_at:
                raise Crash

        self.applying = True
        try:
            for action in result.actions:
                self._apply_one(action, wrote)
        finally:
            self.applying = False

    def _apply_one(self, action: Any, wrote: Any) -> None:
        match action:
            case CreateExchange():
                self._commit(action.intent)
                wrote()
                ref = self._create_exchange(action)
                wrote()
                self._commit(replace(action.row, exchange_id=ref.id, change_key=ref.change_key))
            case CreateCrm():
                self._commit(action.intent)
                wrote()
                self._create_crm(action)
                wrote()
                change_key = self._stamp(action.source.id, action.crm_id, action.source)
                if action.stamp:
                    wrote()
                self._commit(replace(action.row, change_key=change_key))
            case Update():
                if action.intent is not None:
                    self._commit(action.intent)
                    wrote()
                change_key = self._update(action, wrote)
                self._commit(replace(action.row, change_key=change_key))
            case DeleteCrm():
                if action.crm_id in self.crm:
                    self.crm_delete(action.crm_id)
                wrote()
                self._drop(action.crm_id, action.exchange_id)
            case DeleteExchange():
                if action.ref.id in self.ex:
                    self.ex_delete(action.ref.id)
                wrote()
                self._drop(action.crm_id, action.ref.id)
            case Link():
                self._commit(action.row)
            case Unlink():
                self._drop(action.crm_id, action.exchange_id)

    def _create_exchange(self, action: CreateExchange) -> ItemRef:
        found = next((i for i in self.ex.values() if i.crm_id == action.crm_id), None)
        item = new_item(self.binding, action.fields, action.crm_id)
        item_id = found.ref.id if found is not None and found.ref else self.new_id("ex")
        return self._ex_store(item_id, item)

    def _create_crm(self, action: CreateCrm) -> None:
        self.crm_put(action.crm_id, action.fields)

    def _stamp(self, item_id: str, crm_id: str, fallback: ItemRef) -> str:
        item = self.ex.get(item_id)
        if item is None:
            return fallback.change_key
        return self._ex_store(item_id, replace(item, crm_id=crm_id)).change_key

    def _update(self, action: Update, wrote: Any) -> str:
        if action.crm_changes:
            old = self.crm[action.crm_id]
            assert action.crm_version in (None, old.version), "stale optimistic version"
            new = updated_record(self.binding, old, action.target, action.crm_changes)
            self.crm[action.crm_id] = replace(new, updated_at=self.now(), version=old.version + 1)
            self._log_crm(action.crm_id)
            wrote()
        if not (action.model_fields or action.stamp):
            return action.ref.change_key
        old_item = self.ex[action.ref.id]
        fresh = new_item(self.binding, action.target, action.crm_id)
        changes = {name: getattr(fresh, name) for name in action.model_fields}
        ref = self._ex_store(action.ref.id, replace(old_item, crm_id=action.crm_id, **changes))
        wrote()
        return ref.change_key

    def _commit(self, row: SyncedRow) -> None:
        self._drop(row.crm_id, row.exchange_id)
        self.links[row.crm_id] = row

    def _drop(self, crm_id: str, exchange_id: str) -> None:
        self.links.pop(crm_id, None)
        for key, row in list(self.links.items()):
            if row.exchange_id == exchange_id:
                del self.links[key]
