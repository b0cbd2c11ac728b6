"""The 3-way planner: (CRM state, Exchange state, last-synced state) -> Plan. Pure.

Pass kinds decide how absence is read:

- COMPLETE / INITIAL / RECOVER: both sides are listed in full, so an item absent from a side
  is deleted there. INITIAL and RECOVER also match unlinked items (`matching.py`); RECOVER
  never deletes: a deletion seen on one side becomes a re-create on that side (after a
  restore a deletion cannot be told from a rollback, and re-creating loses nothing).
- EXPRESS: only the change sets are given. An item absent from a side's changes is unchanged
  there (its last-synced content stands in for it); deletions are explicit (`deleted_crm`,
  `deleted_exchange`). The caller must also pass every CRM record named by an unlinked
  Exchange item of the change set (`referenced_crm_ids`), so that a create that crashed
  before its link was committed is paired rather than duplicated.

`synced` must hold every link row of the mailbox and entity in every kind of pass.

The decision table for a linked pair (row present), two-way entity:

    CRM        Exchange   ->  action
    unchanged  unchanged      nothing (Link when only the change key or id moved)
    changed    unchanged      Update Exchange
    unchanged  changed        Update CRM
    changed    changed        equal content: Link; else the conflict policy (Update)
    deleted    unchanged      DeleteExchange (RECOVER: CreateCrm)
    unchanged  deleted        DeleteCrm (RECOVER: CreateExchange)
    deleted    changed        CreateCrm (the modification wins)
    changed    deleted        CreateExchange (the modification wins)
    deleted    deleted        Unlink

"Changed" compares a side's content hash with the row's; for the deletion rows, a side that
holds the content of an interrupted service write (`SyncedRow.intent_hash`) counts as
unchanged, so the service's own half-finished write never beats a user's deletion.
Pending rows (`SyncedRow.pending`, an intended create) read a missing created side as "not
created yet" unless there is proof of the create (see `_pending_crm`, `_pending_exchange`).

Unlinked items: an Exchange item whose CRM-id property (or the id the planner would derive
for it) names a free CRM record is paired with that record, with no base: identical content
only links, differing content goes to the conflict policy. The rest are matched (INITIAL,
RECOVER) and then created on the other side. An Outlook copy carrying the CRM id of a record
that is already linked is a new item: it gets its own CRM record.

A one-way entity mirrors its source side: target-side edits are overwritten, target-side
deletions re-created, source deletions propagated, and unlinked target-side items ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from ews_client.models import ItemRef

from . import guards, matching
from .actions import (
    Action,
    Ambiguity,
    Conflict,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Link,
    PassKind,
    Plan,
    Side,
    Unlink,
    Update,
    apply_phase,
)
from .links import derive_crm_id, row_for
from .map_change import rebase
from .mapping import Binding, Direction, differing, model_fields
from .occurrences import follow_series
from .policy import ConflictPolicy, Side3, resolve
from .shared import resolve_shared
from .state import CrmSnapshot, ExchangeSnapshot, SyncedRow
from .values import Fields

DEFAULT_POLICY = ConflictPolicy()
DEFAULT_LIMITS = guards.GuardLimits()


def plan(
    binding: Binding,
    crm: Iterable[CrmSnapshot],
    exchange: Iterable[ExchangeSnapshot],
    synced: Iterable[SyncedRow],
    *,
    kind: PassKind = PassKind.COMPLETE,
    policy: ConflictPolicy = DEFAULT_POLICY,
    deleted_crm: Collection[str] = frozenset(),
    deleted_exchange: Collection[str] = frozenset(),
    limits: guards.GuardLimits = DEFAULT_LIMITS,
    force: bool = False,
    shared: Collection[str] = frozenset(),
) -> Plan:
    """Plan one entity of one mailbox. Raises `guards.GuardError` unless `force`.

    `deleted_crm` / `deleted_exchange` list ids known to be deleted (change log, sync state).
    EXPRESS needs them; full listings show deletions by absence and use `deleted_crm` only to
    tell a pending CRM create that happened and was then deleted from one that never ran.
    `shared` lists the CRM ids held by more than one user: merged field by field (shared.py).
    """
    rows = rebase(binding, synced)  # link rows written under another field map, read over this one
    state = _Pass(binding, crm, exchange, rows, kind, policy, deleted_crm, deleted_exchange)
    state.shared = shared
    if binding.direction != Direction.OFF:
        state.run()
    actions = tuple(sorted(state.actions, key=apply_phase))
    result = Plan(binding.entity, kind, actions, tuple(state.ambiguities), len(rows))
    if not force:
        guards.check(result, limits, exchange_empty=not state.ex)
    return result


class _Pass:
    """Working indexes of one planning call (local to `plan`, never shared)."""

    def __init__(
        self,
        binding: Binding,
        crm: Iterable[CrmSnapshot],
        exchange: Iterable[ExchangeSnapshot],
        rows: list[SyncedRow],
        kind: PassKind,
        policy: ConflictPolicy,
        deleted_crm: Collection[str],
        deleted_exchange: Collection[str],
    ) -> None:
        self.binding, self.kind, self.policy = binding, kind, policy
        self.crm = {snap.id: snap for snap in crm}
        self.ex = {snap.id: snap for snap in exchange}
        self.rows = sorted(rows, key=lambda row: (row.crm_id, row.exchange_id))
        self.deleted_crm, self.deleted_ex = deleted_crm, deleted_exchange
        self.linked_crm = {row.crm_id for row in rows}
        self.linked_ex = {row.exchange_id for row in rows}
        self.used_crm: set[str] = set()
        self.used_ex: set[str] = set()
        self.actions: list[Action] = []
        self.ambiguities: list[Ambiguity] = []
        self.shared: Collection[str] = frozenset()
        self.direction = binding.direction
        self.by_crm_prop: dict[str, list[str]] = {}
        for snap in sorted(self.ex.values(), key=lambda snap: snap.id):
            if snap.crm_id and snap.id not in self.linked_ex:
                self.by_crm_prop.setdefault(snap.crm_id, []).append(snap.id)

    # -- driving ---------------------------------------------------------------------------

    def run(self) -> None:
        for row in self.rows:
            self._row(row)
        crm_left = [c for c in self.crm.values() if self._free_crm(c.id)]
        ex_left = [e for e in sorted(self.ex.values(), key=lambda e: e.id) if self._free_ex(e.id)]
        ex_left = [e for e in ex_left if not self._recover_pair(e)]
        crm_left = [c for c in crm_left if self._free_crm(c.id)]
        if self.kind in (PassKind.INITIAL, PassKind.RECOVER):
            crm_left, ex_left = self._match(crm_left, ex_left)
        for c in sorted(crm_left, key=lambda c: c.id):
            if self.direction.from_crm:
                self._create_exchange(c.id, c.fields)
        for e in ex_left:
            if self.direction.from_exchange:
                self._create_crm(e.ref, e.fields)

    def _free_crm(self, crm_id: str) -> bool:
        return crm_id not in self.linked_crm and crm_id not in self.used_crm

    def _free_ex(self, ex_id: str) -> bool:
        return ex_id not in self.linked_ex and ex_id not in self.used_ex

    @property
    def full_listing(self) -> bool:
        return self.kind != PassKind.EXPRESS

    # -- linked pairs ----------------------------------------------------------------------

    def _row(self, row: SyncedRow) -> None:
        if row.pending == Side.EXCHANGE:
            self._pending_exchange(row)
            return
        if row.pending == Side.CRM:
            self._pending_crm(row)
            return
        e, c = self._exchange_of(row), self._crm_of(row)
        if c is None and e is None:
            self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(row.fields)))
        elif c is None:
            assert e is not None
            self._crm_gone(row, e)
        elif e is None:
            self._exchange_gone(row, c)
        else:
            self._both(row, c, e)

    def _pending_exchange(self, row: SyncedRow) -> None:
        """An Exchange create was intended: find the item by the CRM id it carries.

        No such item: the create is planned again. (Had it been created, then deleted by the
        user before its link was committed, the item comes back once: the alternative,
        deleting the CRM record, would lose data whenever the create never happened, and a
        full listing cannot tell the two apart.)
        """
        e, c = self._claim_ex(row.crm_id), self._crm_of(row)
        if e is not None:
            self.used_ex.add(e.id)
        if e is None and c is None:
            self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(row.fields)))
        elif e is None:
            assert c is not None
            self._create_exchange(c.id, c.fields)
        elif c is None:
            self._crm_gone(row, e)
        else:
            self._both(row, c, e)

    def _pending_crm(self, row: SyncedRow) -> None:
        """A CRM create with the planner's id was intended for the row's item.

        The stamp follows the create, so an item read now carrying the id proves the record
        was created: missing from a full listing it was then deleted; missing from an express
        change set it is unchanged since. Without that proof the create is planned again
        (it is idempotent), unless the change log lists the id as deleted.
        """
        e, c = self._exchange_of(row), self.crm.get(row.crm_id)
        stamped = e is not None and e.id in self.ex and e.crm_id == row.crm_id
        deleted = row.crm_id in self.deleted_crm or (stamped and self.full_listing)
        if c is None and stamped and not deleted:
            c = CrmSnapshot(row.crm_id, row.fields, row.crm_hash)
        if c is not None:
            self.used_crm.add(c.id)
        if e is None and c is None:
            self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(row.fields)))
        elif c is None and deleted:
            assert e is not None
            self._crm_gone(row, e)
        elif c is None:
            assert e is not None
            self._create_crm(e.ref, e.fields, row.crm_id)
        elif e is None:
            self._exchange_gone(row, c)
        else:
            self._both(row, c, e)

    def _exchange_of(self, row: SyncedRow) -> ExchangeSnapshot | None:
        snap = self.ex.get(row.exchange_id)
        if snap is None and not self.full_listing and row.exchange_id not in self.deleted_ex:
            ref = ItemRef(row.exchange_id, row.change_key)
            return ExchangeSnapshot(ref, row.crm_id, row.fields, row.exchange_hash)
        if snap is not None:
            self.used_ex.add(snap.id)
        return snap

    def _crm_of(self, row: SyncedRow) -> CrmSnapshot | None:
        snap = self.crm.get(row.crm_id)
        if snap is None and not self.full_listing and row.crm_id not in self.deleted_crm:
            return CrmSnapshot(row.crm_id, row.fields, row.crm_hash)
        if snap is not None:
            self.used_crm.add(snap.id)
        return snap

    def _claim_ex(self, crm_id: str) -> ExchangeSnapshot | None:
        for ex_id in self.by_crm_prop.get(crm_id, ()):
            if self._free_ex(ex_id):
                return self.ex[ex_id]
        return None

    def _claim_crm(self, e: ExchangeSnapshot) -> CrmSnapshot | None:
        for crm_id in (e.crm_id, derive_crm_id(e.ref)):
            if crm_id and crm_id in self.crm and self._free_crm(crm_id):
                return self.crm[crm_id]
        return None

    def _both(self, row: SyncedRow, c: CrmSnapshot, e: ExchangeSnapshot) -> None:
        base = row.fields
        c_changed = c.hash != row.crm_hash
        e_changed = e.hash != row.exchange_hash
        if not (c_changed or e_changed):
            if e.crm_id != c.id:
                self._sync(c, e, row.fields, None, "stamp", row)
            elif (e.id, e.ref.change_key) != (row.exchange_id, row.change_key):
                self.actions.append(
                    Link(
                        row_for(self.binding, c.id, e.ref, row.fields),
                        "item id or change key moved",
                        title=self._title(row.fields),
                    )
                )
            return
        self._pair(c, e, base, c_changed, e_changed, row)

    def _pair(
        self,
        c: CrmSnapshot,
        e: ExchangeSnapshot,
        base: Fields | None,
        c_changed: bool = True,
        e_changed: bool = True,
        old: SyncedRow | None = None,
    ) -> None:
        self.used_crm.add(c.id)
        self.used_ex.add(e.id)
        resolution = (resolve_shared if c.id in self.shared else resolve)(
            self.binding,
            base,
            Side3(c.fields, c_changed, c.modified),
            Side3(e.fields, e_changed, e.modified),
            self.policy,
        )
        reason = "identical content" if base is None or (c_changed and e_changed) else "synced"
        self._sync(c, e, resolution.target, resolution.conflict, reason, old)

    def _sync(
        self,
        c: CrmSnapshot,
        e: ExchangeSnapshot,
        target: Fields,
        conflict: Conflict | None,
        reason: str,
        old: SyncedRow | None = None,
    ) -> None:
        # A series renamed by this write renames its occurrences in Outlook (occurrences.py).
        target = follow_series(target, e.fields)
        crm_changes = differing(self.binding, target, c.fields)
        ex_changes = differing(self.binding, target, e.fields)
        row = row_for(self.binding, c.id, e.ref, target)
        stamp = e.crm_id != c.id
        title = self._title(target)
        if not (crm_changes or ex_changes or stamp):
            self.actions.append(Link(row, reason, conflict, title))
            return
        self.actions.append(
            Update(
                crm_id=c.id,
                ref=e.ref,
                target=target,
                crm_changes=crm_changes,
                exchange_changes=ex_changes,
                model_fields=model_fields(self.binding, ex_changes),
                crm_version=c.version,
                stamp=stamp,
                row=row,
                intent=None if old is None else replace(old, intent_hash=row.crm_hash),
                conflict=conflict,
                title=title,
                crm_before={name: c.fields.get(name) for name in crm_changes},
                exchange_before={name: e.fields.get(name) for name in ex_changes},
            )
        )

    def _crm_gone(self, row: SyncedRow, e: ExchangeSnapshot) -> None:
        e_changed = e.hash not in (row.exchange_hash, row.intent_hash)
        source_wins = not self.direction.from_exchange or not e_changed
        if self.direction.from_crm and source_wins and self.kind != PassKind.RECOVER:
            self.actions.append(DeleteExchange(row.crm_id, e.ref, self._title(e.fields)))
        elif self.direction.from_exchange:
            self._create_crm(e.ref, e.fields)
            if row.exchange_id != e.id:
                # A pending row found its item by CRM id: the new record's row has other keys.
                self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(e.fields)))
        else:
            self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(e.fields)))

    def _exchange_gone(self, row: SyncedRow, c: CrmSnapshot) -> None:
        c_changed = c.hash not in (row.crm_hash, row.intent_hash)
        source_wins = not self.direction.from_crm or not c_changed
        if self.direction.from_exchange and source_wins and self.kind != PassKind.RECOVER:
            self.actions.append(DeleteCrm(c.id, row.exchange_id, self._title(c.fields)))
        elif self.direction.from_crm:
            self._create_exchange(c.id, c.fields)
        else:
            self.actions.append(Unlink(row.crm_id, row.exchange_id, self._title(c.fields)))

    # -- unlinked items --------------------------------------------------------------------

    def _recover_pair(self, e: ExchangeSnapshot) -> bool:
        """Pair an unlinked item with the CRM record it names (a lost link commit)."""
        c = self._claim_crm(e)
        if c is None:
            return False
        self._pair(c, e, None)
        return True

    def _match(
        self, crm_left: list[CrmSnapshot], ex_left: list[ExchangeSnapshot]
    ) -> tuple[list[CrmSnapshot], list[ExchangeSnapshot]]:
        found = matching.match(
            self.binding.entity,
            {c.id: c.fields for c in crm_left},
            {e.id: e.fields for e in ex_left},
        )
        self.ambiguities.extend(found.ambiguities)
        for crm_id, ex_id in found.pairs:
            self._pair(self.crm[crm_id], self.ex[ex_id], None)
        return (
            [c for c in crm_left if c.id not in self.used_crm],
            [e for e in ex_left if e.id not in self.used_ex],
        )

    def _create_exchange(self, crm_id: str, fields: Fields) -> None:
        row = row_for(self.binding, crm_id, ItemRef(""), fields)
        intent = replace(row, pending=Side.EXCHANGE.value)
        self.actions.append(CreateExchange(crm_id, fields, intent, row, self._title(fields)))

    def _create_crm(self, ref: ItemRef, fields: Fields, crm_id: str = "") -> None:
        crm_id = crm_id or derive_crm_id(ref)
        row = row_for(self.binding, crm_id, ref, fields)
        intent = replace(row, pending=Side.CRM.value)
        self.actions.append(CreateCrm(crm_id, fields, ref, True, intent, row, self._title(fields)))

    def _title(self, fields: Fields) -> str:
        return self.binding.map.title(fields)
