"""Passes over one mailbox: read both sides, plan (pure), apply, commit states after the writes.

Kinds: `express` (changes since the stored sync state and CRM watermark), `complete` (both
sides listed in full: repairs any drift), `initial` (complete + matching of items that already
exist on both sides), `recover` (complete + matching, never deletes). Every kind can run as a
dry run: the plan is computed and reported, nothing is written and no state advances.

Crash safety: each action commits its link row right after its write succeeded; the folders'
sync states and the CRM watermarks are committed last, with the pass's record, and not for an
entity an item of which was left behind by a conflict, so that a replay sees those changes again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ews_client import (
    EntityKind,
    ExchangeBackend,
    FolderNotFoundError,
    InvalidSyncStateError,
    Item,
    Removal,
    SyncMarker,
    Upsert,
)
from sync_service.crm.meeting_pass import MeetingCopies
from sync_service.crm.port import ChangeBatch, ChangeOp, CrmPort
from sync_service.db.filters import FilterStore, MailboxFilter, Reads
from sync_service.db.item_errors import Finding, ItemErrors
from sync_service.db.links import LinkRow, LinkStore
from sync_service.db.store import EntityMode, Mailbox, Store
from sync_service.errors import IntegrityStop
from sync_service.planning import MAPS, links, planner
from sync_service.planning.actions import PassKind, Plan
from sync_service.planning.field_map import BUILT_IN, FieldMap
from sync_service.planning.filter_pairs import adopt
from sync_service.planning.filters import Screened
from sync_service.planning.guards import GuardLimits
from sync_service.planning.mapping import Binding, Direction
from sync_service.planning.policy import ConflictPolicy
from sync_service.planning.records import CrmRecord
from sync_service.planning.render import ambiguity_decision, ambiguity_reason
from sync_service.planning.shared import OwnerDelete
from sync_service.planning.state import (
    CrmSnapshot,
    ExchangeSnapshot,
    SyncedRow,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.runtime.applier import Applier, EntityOutcome
from sync_service.runtime.folder_links import PassFolders

log = logging.getLogger("sync_service.runtime.passes")
FINDING_IDS_MAX = 100  # ids of each side kept in one ambiguous-match finding

MODE_DIRECTIONS = {
    EntityMode.TWO_WAY: Direction.TWO_WAY,
    EntityMode.CRM_TO_EXCHANGE: Direction.CRM_TO_EXCHANGE,
    EntityMode.EXCHANGE_TO_CRM: Direction.EXCHANGE_TO_CRM,
    EntityMode.OFF: Direction.OFF,
}


class MarkerMismatch(IntegrityStop):
    """The mailbox's hidden marker disagrees with the database: a restore happened."""


@dataclass(frozen=True, slots=True)
class PassOptions:
    kind: PassKind
    dry_run: bool = False
    forced: bool = False
    limits: GuardLimits = field(default_factory=GuardLimits)
    policies: dict[EntityKind, ConflictPolicy] = field(default_factory=dict)
    run_id: int | None = None  # the runs row the writes are counted in, as they commit
    field_map: FieldMap = BUILT_IN  # the operator's per-field directions and value maps
    entities: frozenset[EntityKind] | None = None  # the job's entities (None: every one)
    owner_delete: OwnerDelete = OwnerDelete.KEEP  # the owner's delete of a shared record


@dataclass(slots=True)
class PassReport:
    kind: PassKind
    entities: dict[str, EntityOutcome] = field(default_factory=dict)
    plans: list[Plan] = field(default_factory=list)

    @property
    def needs_rerun(self) -> bool:
        return any(outcome.conflicts for outcome in self.entities.values())

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        return {name: outcome.counts for name, outcome in self.entities.items()}


@dataclass(frozen=True, slots=True)
class _Sides:
    """What one entity's pass read: snapshots' sources and how to advance the states."""

    crm: dict[str, CrmRecord]
    exchange: list[Item]
    deleted_crm: frozenset[str]
    deleted_exchange: frozenset[str]
    sync_state: str
    watermark: int
    kind: PassKind

    @property
    def idle(self) -> bool:
        """An express read that found no change on either side."""
        return self.kind == PassKind.EXPRESS and not (
            self.crm or self.exchange or self.deleted_crm or self.deleted_exchange
        )


@dataclass(frozen=True, slots=True)
class _Stored:
    """Where an entity's last pass left it."""

    sync_state: str | None
    watermark: int
    unfinished: bool  # link rows of an interrupted write wait for the planner
    crm_changes: ChangeBatch | None = None  # the first page, read for the whole pass


class _LinkRows:
    """An entity's link rows, read from the database on first use only."""

    def __init__(self, links: LinkStore, mailbox_id: int, entity: EntityKind) -> None:
        self.links, self.mailbox_id, self.entity = links, mailbox_id, entity
        self._rows: list[SyncedRow] | None = None

    async def rows(self) -> list[SyncedRow]:
        if self._rows is None:
            found = await self.links.links(self.mailbox_id, self.entity.value)
            self._rows = [_synced(row) for row in found]
        return self._rows

    async def known_keys(self) -> Mapping[str, str]:
        """Change keys of the items last synced; rows of an unfinished write are not vouched for."""
        return {
            r.exchange_id: r.change_key
            for r in await self.rows()
            if not r.pending and not r.intent_hash
        }


class MailboxPass:
    """One pass over one mailbox: the I/O shell around the pure planner."""

    def __init__(
        self,
        mailbox: Mailbox,
        backend: ExchangeBackend,
        crm: CrmPort,
        store: Store,
        links: LinkStore,
        options: PassOptions,
    ) -> None:
        self.mailbox = mailbox
        self.backend = backend
        self.crm = crm
        self.store = store
        self.links = links
        self.options = options
        self.item_errors = ItemErrors(store.pool)
        self.folders = PassFolders.of(store.pool, mailbox, options.dry_run)
        self.filters = FilterStore(store.pool)
        self._filter: MailboxFilter | None = None  # read at the first entity that plans
        self._marker_checked = False
        self._meetings = MeetingCopies(crm, mailbox.email, mailbox.crm_user_id)

    async def run(self) -> PassReport:
        kind = self.options.kind
        if kind == PassKind.EXPRESS and not self.mailbox.initial_done:
            # A mailbox's first pass always matches before creating (run_begin records the
            # run's kind by the same rule, so the runner already asks for initial).
            kind = PassKind.INITIAL
        report = PassReport(kind)
        # A first pass covers every entity, whatever the job names (the mailbox is then
        # initialized as a whole); run_begin records the run's entities by the same rule.
        scope = self.options.entities if self.mailbox.initial_done else None
        bindings = [
            self.options.field_map.bind(entity_map, direction)
            for entity, entity_map in MAPS.items()
            if (direction := MODE_DIRECTIONS[self.mailbox.mode(entity.value)]) != Direction.OFF
            and (scope is None or entity in scope)
        ]
        # Each entity's folder (a link's, resolved once); an entity whose linked folder
        # cannot be served is left out of the pass (runtime/folder_links.py).
        self.backend = await self.folders.prepare(self.backend, [b.entity for b in bindings])
        bindings = [b for b in bindings if b.entity not in self.folders.skipped]
        stored = await self._stored([binding.entity for binding in bindings])
        crm_changes = await self._crm_changes_all(kind, stored)
        done: list[tuple[EntityKind, _Sides]] = []
        outcomes: dict[EntityKind, EntityOutcome] = {}

        async def read_then_write(binding: Binding, mine: _Stored, links_of: _LinkRows) -> None:
            sides = await self._read(binding, kind, mine, links_of)
            if sides is not None:  # None: its linked folder is gone, nothing planned
                outcomes[binding.entity] = await self._entity(
                    binding, kind, report, mine, done, links_of, sides
                )

        try:
            async with asyncio.TaskGroup() as tg:
                # Every folder is read at once (the throttle keeps the mailbox within its
                # limits); each entity is planned and written as soon as its own read is in,
                # beside the others (a big contacts folder's read does not hold back the
                # calendar's writes).
                for binding in bindings:
                    entity = binding.entity
                    mine = replace(stored[entity], crm_changes=crm_changes.get(entity))
                    links_of = _LinkRows(self.links, self.mailbox.id, entity)
                    if self.folders.rematching(entity):
                        links_of._rows = []  # a newly linked folder is matched afresh
                    tg.create_task(read_then_write(binding, mine, links_of))
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        # Reported in the entities' order, whichever finished first.
        order = {binding.entity: i for i, binding in enumerate(bindings)}
        report.plans.sort(key=lambda plan: order.get(plan.entity, len(order)))
        for binding in bindings:
            if binding.entity in outcomes:
                report.entities[binding.entity.value] = outcomes[binding.entity]
        if not self.options.dry_run:
            wrote = any(outcome.counts for outcome in report.entities.values())
            await self._commit(kind, wrote, _moved(done, stored))
            await self.folders.settle([entity for entity, _ in done])
        return report

    async def _entity(
        self,
        binding: Binding,
        kind: PassKind,
        report: PassReport,
        stored: _Stored,
        done: list[tuple[EntityKind, _Sides]],
        links_of: _LinkRows,
        sides: _Sides,
    ) -> EntityOutcome:
        """Plan and apply one entity's read; `done` collects the reads whose states may move."""
        entity = binding.entity
        if sides.idle and not stored.unfinished and not self.options.dry_run:
            # Nothing changed on either side and no write was interrupted: the planner would
            # find nothing to do, so the folder's links are not even read.
            done.append((entity, sides))
            return EntityOutcome()
        sides, screened = await self._screen(binding, sides, await links_of.rows())
        rows = screened.links
        # An item still at the change key of its last sync holds the row's content.
        linked = {row.exchange_id: row for row in rows}
        crm_side = [snapshot_crm(binding, record) for record in sides.crm.values()]
        exchange_side = [
            snapshot_exchange(binding, item, linked.get(_item_id(item))) for item in sides.exchange
        ]
        if entity == EntityKind.APPOINTMENT:  # meeting copies (crm/meeting_pass.py)
            read, crm_side, exchange_side = await self._meetings.prepare(
                binding, crm_side, sides.exchange, exchange_side, rows, sides.crm
            )
            sides = replace(sides, crm=read)
        plan = planner.plan(
            binding,
            crm_side,
            exchange_side,
            rows,
            kind=sides.kind,
            policy=self.options.policies.get(entity, ConflictPolicy()),
            deleted_crm=sides.deleted_crm,
            deleted_exchange=sides.deleted_exchange,
            limits=self.options.limits,
            force=self.options.forced,
            shared=await self._shared(entity, crm_side, exchange_side),
        )
        if entity == EntityKind.APPOINTMENT:
            plan = self._meetings.trim(plan)
        plan = adopt(binding, plan, screened)  # the pairs the filter matched, written out
        report.plans.append(plan)
        if self.options.dry_run:
            return EntityOutcome.from_plan(plan)
        if plan.ambiguities:
            # Recorded before the writes: the decision is the plan's, and a pass cut short
            # in its writes has still made it.
            await self.item_errors.add_findings(self.mailbox.id, entity.value, _findings(plan))
        if plan.actions and not self._marker_checked:
            # Checked before the first write only: a pass with nothing to do costs no request
            # for it, and a restored mailbox always brings something to do.
            await self._check_marker(kind)
            self._marker_checked = True
        pending = {row.crm_id: row.pending for row in rows if row.pending}
        applier = Applier(
            self.mailbox,
            self.backend,
            self.crm,
            self.links,
            binding,
            sides.crm,
            pending,
            run_id=self.options.run_id,
            owner_delete=self.options.owner_delete,
        )
        outcome = await applier.apply(plan)
        if entity == EntityKind.APPOINTMENT:
            reread = functools.partial(self.links.links, self.mailbox.id, entity.value)
            await self._meetings.settle(sides.exchange, reread)
        if not outcome.conflicts:
            # Committed with the pass's end, after every write: a pass cut short replays
            # these changes, which finds them linked and plans nothing.
            done.append((entity, sides))
        return outcome

    async def _shared(
        self, entity: EntityKind, crm: list[CrmSnapshot], exchange: list[ExchangeSnapshot]
    ) -> set[str]:
        """The records read on both sides that several users hold (merged field by field,
        planning/shared.py): only a pair changed on both sides can need it."""
        if not (crm and exchange):
            return set()
        return await self.crm.shared_ids(entity, [snap.id for snap in crm])

    async def _screen(
        self, binding: Binding, sides: _Sides, rows: list[SyncedRow]
    ) -> tuple[_Sides, Screened]:
        """The reads without the items the mailbox's sync filter keeps out (planning/filters.py):
        those of pairs that left it are set aside, never planned as deletions."""
        if self._filter is None:
            self._filter = await self.filters.for_mailbox(self.mailbox.id)
        now, entity = datetime.now(UTC), binding.entity
        screened = await self.filters.screen(
            self.mailbox.id, binding, self._filter, _reads(sides, rows), now=now
        )
        if sides.kind == PassKind.EXPRESS and screened.would_create(binding.direction):
            # What it would create may be entering the filter, its counterpart outside it until
            # now: the folder is read in full once, and matched as an initial pass would.
            sides = await self._read_all(entity, PassKind.COMPLETE)
            screened = await self.filters.screen(
                self.mailbox.id, binding, self._filter, _reads(sides, rows), now=now
            )
        if not self.options.dry_run:
            await self.filters.settle(self.mailbox.id, entity, screened)
        return replace(sides, crm=screened.crm, exchange=screened.exchange), screened

    async def _stored(self, entities: list[EntityKind]) -> dict[EntityKind, _Stored]:
        """Sync states, watermarks and unfinished writes of every entity: one round trip."""
        found = {
            EntityKind(s.entity): _Stored(s.sync_state, s.watermark, s.unfinished)
            for s in await self.links.entity_states(self.mailbox.id)
        }
        return {entity: found[entity] for entity in entities}

    async def _read(
        self, binding: Binding, kind: PassKind, stored: _Stored, links_of: _LinkRows
    ) -> _Sides | None:
        try:
            return await self._read_folder(binding, kind, stored, links_of)
        except FolderNotFoundError as exc:
            await self.folders.gone(binding.entity, exc)
            return None

    async def _read_folder(
        self, binding: Binding, kind: PassKind, stored: _Stored, links_of: _LinkRows
    ) -> _Sides:
        entity = binding.entity
        if self.folders.rematching(entity):
            await self.folders.restart(entity)
            return await self._read_all(entity, PassKind.INITIAL)
        if kind == PassKind.EXPRESS:
            if stored.sync_state is not None:
                try:
                    return await self._read_changes(binding, stored, links_of)
                except InvalidSyncStateError:
                    log.info(
                        "sync state rejected; reconciling with a complete read",
                        extra={"mailbox": self.mailbox.email, "entity": entity.value},
                    )
            kind = PassKind.COMPLETE
        return await self._read_all(entity, kind)

    async def _read_all(self, entity: EntityKind, kind: PassKind) -> _Sides:
        # The watermark is taken before the listing: a change made while we list is read
        # again by the next express pass, which is harmless (replays plan nothing).
        watermark = await self.crm.current_seq()
        records = await self.crm.list_records(self.mailbox.crm_user_id, entity)
        result = await self.backend.sync_changes(self.mailbox.email, entity, None)
        items = [change.item for change in result.changes if isinstance(change, Upsert)]
        return _Sides(
            crm={record.id: record for record in records},
            exchange=items,
            deleted_crm=frozenset(),
            deleted_exchange=frozenset(),
            sync_state=result.sync_state,
            watermark=watermark,
            kind=kind,
        )

    async def _read_changes(self, binding: Binding, stored: _Stored, links_of: _LinkRows) -> _Sides:
        entity = binding.entity
        assert stored.sync_state is not None
        # Items still at their last-synced change key (e.g. the service's own writes) need no
        # reading; the links are read only when the server reports changed items.
        result = await self.backend.sync_changes(
            self.mailbox.email, entity, stored.sync_state, links_of.known_keys
        )
        if result.restarted:
            raise InvalidSyncStateError("the server restarted the synchronization")
        items = [c.item for c in result.changes if isinstance(c, Upsert)]
        removed = frozenset(c.item_id for c in result.changes if isinstance(c, Removal))
        upserted, crm_removed, watermark = await self._crm_changes(entity, stored)
        wanted = set(upserted)
        if items:
            wanted |= links.referenced_crm_ids(
                [snapshot_exchange(binding, item) for item in items], await links_of.rows()
            )
        records = await self.crm.get_records(entity, sorted(wanted)) if wanted else {}
        mine = {rid: rec for rid, rec in records.items() if rid not in crm_removed}
        return _Sides(
            crm=mine,
            exchange=items,
            deleted_crm=crm_removed | (upserted - set(records)),
            deleted_exchange=removed,
            sync_state=result.sync_state,
            watermark=watermark,
            kind=PassKind.EXPRESS,
        )

    async def _crm_changes_all(
        self, kind: PassKind, stored: dict[EntityKind, _Stored]
    ) -> dict[EntityKind, ChangeBatch]:
        """The first page of CRM changes of every entity an express pass reads incrementally.

        Read before any entity is applied: a change made meanwhile lies above the watermark
        and is read by the next pass, and the pass's own writes are never sent back.
        """
        after = {e: s.watermark for e, s in stored.items() if s.sync_state is not None}
        if kind != PassKind.EXPRESS or not after:
            return {}
        return await self.crm.changes_since_many(self.mailbox.crm_user_id, after)

    async def _crm_changes(
        self, entity: EntityKind, stored: _Stored
    ) -> tuple[frozenset[str], frozenset[str], int]:
        """(upserted ids, removed ids, new watermark) of the user's CRM changes."""
        last_op: dict[str, ChangeOp] = {}
        batch, seq = stored.crm_changes, stored.watermark
        while True:
            if batch is None:
                batch = await self.crm.changes_since(self.mailbox.crm_user_id, entity, seq)
            last_op.update((c.record_id, c.op) for c in batch.changes)
            seq = batch.last_seq
            if batch.complete:
                break
            batch = None
        upserted = frozenset(rid for rid, op in last_op.items() if op == ChangeOp.UPSERT)
        return upserted, frozenset(last_op) - upserted, seq

    # -- the last-synchronization marker ----------------------------------------------------

    async def _check_marker(self, kind: PassKind) -> None:
        """Compare the mailbox's hidden marker with the database before touching anything.

        The marker is written to the mailbox before the database commits it, so a crash in
        between leaves the mailbox exactly one generation ahead: that is tolerated. Any other
        difference means one side was restored from a backup.
        """
        if kind == PassKind.RECOVER or self.mailbox.marker_generation == 0:
            return
        marker = await self.backend.read_marker(self.mailbox.email)
        expected = self.mailbox.marker_generation
        if marker is None or marker.generation not in (expected, expected + 1):
            found = "no marker" if marker is None else f"generation {marker.generation}"
            raise MarkerMismatch(
                f"mailbox marker disagrees with the database: {found} in the mailbox, "
                f"generation {expected} in the database"
            )

    async def _commit(
        self, kind: PassKind, wrote: bool, states: list[tuple[str, str, int]]
    ) -> None:
        """Record the pass with its sync states and watermarks (one statement); the marker
        moves (in the mailbox first) only when something was written or both sides were
        compared in full, so an idle pass costs no request."""
        generation = self.mailbox.marker_generation
        marker = SyncMarker(generation, self.mailbox.marker_at or datetime.now(UTC))
        if wrote or kind != PassKind.EXPRESS:
            if not self._marker_checked:  # never overwrite a marker that was not compared
                await self._check_marker(kind)
            marker = SyncMarker(generation + 1, datetime.now(UTC))
            await self.backend.write_marker(self.mailbox.email, marker)
        await self.store.pass_succeeded(
            self.mailbox.id, kind.value, (marker.generation, marker.synced_at), states
        )


def _moved(
    done: list[tuple[EntityKind, _Sides]], stored: dict[EntityKind, _Stored]
) -> list[tuple[str, str, int]]:
    """(entity, sync state, watermark) of the reads that moved a state: the rest is unwritten."""
    return [
        (entity.value, sides.sync_state, sides.watermark)
        for entity, sides in done
        if (sides.sync_state, sides.watermark)
        != (stored[entity].sync_state, stored[entity].watermark)
    ]


def _reads(sides: _Sides, rows: list[SyncedRow]) -> Reads:
    full = sides.kind != PassKind.EXPRESS
    return Reads(sides.crm, sides.exchange, rows, full, sides.deleted_crm, sides.deleted_exchange)


def _findings(plan: Plan) -> list[Finding]:
    """The ambiguous matches of a real pass as item-level findings: what matched what, why
    no pair was made, and what the pass does instead."""
    found = []
    for group in plan.ambiguities:
        direction, decision = ambiguity_decision(plan, group)
        detail = {
            "key": group.key,
            # A group of thousands (every contact named "Unknown") is kept to its first ids.
            "crm_ids": list(group.crm_ids[:FINDING_IDS_MAX]),
            "exchange_ids": list(group.exchange_ids[:FINDING_IDS_MAX]),
            "crm_count": len(group.crm_ids),
            "exchange_count": len(group.exchange_ids),
            "decision": decision,
        }
        reason = f"ambiguous match by {group.key}: {ambiguity_reason(group)}; {decision}"
        found.append(Finding(direction, reason[:1000], detail))
    return found


def _item_id(item: Item) -> str:
    return item.ref.id if item.ref else ""


def _synced(row: LinkRow) -> SyncedRow:
    return SyncedRow(
        crm_id=row.crm_id,
        exchange_id=row.exchange_id,
        change_key=row.change_key,
        crm_hash=row.crm_hash,
        exchange_hash=row.exchange_hash,
        fields=row.synced_fields,
        pending=row.pending,
        intent_hash=row.intent_hash,
    )


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first failure of a TaskGroup as itself: the runner sorts a pass's failures by
    type (transient, permanent, an integrity stop), never by an ExceptionGroup."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found
