"""Sync filters: which items of a mailbox are in the sync, and what entering or leaving means.

A filter keeps out of the sync every item that lacks all of its categories, every private
appointment (Exchange's Sensitivity Private, the CRM's `appointments.sensitivity = 'private'`;
the bundled CRM and the item model keep no sensitivity for contacts and tasks), every
appointment outside a time window around now, and every contact that has an address of a
blocked address or domain. A side is judged on its own (`admits`); a linked pair is in the
sync while both sides are, its categories judged where the sync writes them from (`pair_out`).

Nothing is ever deleted because of a filter. The planner reads the absence of an item from a
full listing as its deletion, so an item out of the filter must never reach it: `apply` takes
every such item out of BOTH sides' reads, and the link row of a pair that leaves the filter is
set aside ("parked": the pair is left as it is on both sides, its row kept apart) instead of
being planned. A parked pair comes back (its row restored, the planner then reconciles it as
any linked pair, so no duplicate is made) once both sides are read and admitted again; while
either of its items exists it is never planned.

An item that was never linked and enters the filter may have its counterpart outside it: full
listings match unlinked items as an initial pass does, those outside the filter included, and
hand the planner each pair with a side in the filter (`filter_pairs.py` writes them). Private
and blocked items are never paired. An express pass that would create something reads the
folder in full first (`Screened.would_create`). Also kept out: an unlinked item whose CRM-id
property names a record out of the filter or parked, and an unlinked record named by such an
item that is out (either would otherwise be created a second time). Pure: `now` is the
caller's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ews_client.models import Appointment, Contact, Item, ItemRef, Sensitivity
from sync_service.errors import FieldError

from .filter_sides import addresses, blocked, in_window
from .links import derive_crm_id
from .mapping import Binding, Direction, crm_fields, exchange_fields
from .matching import match
from .records import CrmAppointment, CrmContact, CrmRecord
from .state import SyncedRow


class FilterError(FieldError):
    """A filter setting an operator gave or stored is not valid; `field` names its key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class CalendarRange:
    """Appointments from `back` before now to `ahead` after it ("-30d:+365d")."""

    back: timedelta
    ahead: timedelta

    def text(self) -> str:
        return f"-{self.back.days}d:+{self.ahead.days}d"

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        return now - self.back, now + self.ahead


@dataclass(frozen=True, slots=True)
class Filter:
    """The filter in effect for one mailbox; the default admits everything."""

    categories: tuple[str, ...] = ()  # any of them admits; none given: no category filter
    exclude_private: bool = False
    calendar_range: CalendarRange | None = None
    block: tuple[str, ...] = ()  # addresses (with @) and domains (subdomains included)
    _folded: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", frozenset(c.casefold() for c in self.categories))

    @property
    def active(self) -> bool:
        return bool(self.categories or self.exclude_private or self.calendar_range or self.block)

    def setting(self) -> dict[str, object]:
        """The filter as its JSON setting (every key)."""
        span = self.calendar_range
        return {
            "categories": list(self.categories),
            "exclude_private": self.exclude_private,
            "calendar_range": None if span is None else span.text(),
            "block": list(self.block),
        }

    def admits(self, side: CrmRecord | Item, now: datetime) -> bool:
        """Whether one side's item (a CRM record or an Exchange item) is in the filter."""
        return self.categorized(side) and self.admits_apart(side, now)

    def categorized(self, side: CrmRecord | Item) -> bool:
        """Whether the item has one of the filter's categories (or the filter names none)."""
        return not self._folded or any(c.casefold() in self._folded for c in side.categories)

    def admits_apart(self, side: CrmRecord | Item, now: datetime) -> bool:
        """Whether the item is in the filter, its categories aside."""
        if self.barred(side):
            return False
        if isinstance(side, CrmAppointment | Appointment) and self.calendar_range is not None:
            return in_window(side, *self.calendar_range.window(now))
        return True

    def barred(self, side: CrmRecord | Item) -> bool:
        """Out for what it holds (private, a blocked address): never paired, never written."""
        if isinstance(side, CrmAppointment | Appointment):
            return self.exclude_private and side.sensitivity == Sensitivity.PRIVATE
        if self.block and isinstance(side, CrmContact | Contact):
            return any(blocked(address, self.block) for address in addresses(side))
        return False


# -- one entity's reads, screened ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Screened:
    """What the planner is given, and what happens to link rows because of the filter."""

    crm: dict[str, CrmRecord]
    exchange: list[Item]
    links: list[SyncedRow]  # every row the planner plans over (restored ones included)
    # Kept items the planner would create on the other side (no row, no CRM-id partner): an
    # express pass reads the folder in full when there are some, to match them (`apply`).
    unmatched_crm: frozenset[str]
    unmatched_exchange: frozenset[str]
    leaving: list[SyncedRow]  # active rows to set aside: their pair left the filter
    entering: list[SyncedRow]  # parked rows to restore: both sides are back in the filter
    forgotten: list[SyncedRow]  # parked rows both of whose items are gone
    # The pairs `apply` matched (record, item as read) and the filter: see `filter_pairs`.
    paired: tuple[tuple[CrmRecord, Item], ...] = ()
    spec: Filter = field(default_factory=Filter)

    def would_create(self, direction: Direction) -> bool:
        """Whether the planner, in `direction`, would create an item it was not shown paired."""
        crm, exchange = direction.from_crm, direction.from_exchange
        return bool((crm and self.unmatched_crm) or (exchange and self.unmatched_exchange))


def apply(
    spec: Filter,
    crm: Mapping[str, CrmRecord],
    exchange: Sequence[Item],
    links: Sequence[SyncedRow],
    parked: Sequence[SyncedRow] = (),
    *,
    full: bool,
    now: datetime,
    deleted_crm: Collection[str] = frozenset(),
    deleted_exchange: Collection[str] = frozenset(),
    binding: Binding | None = None,
) -> Screened:
    """Screen one entity's reads: `full` when both sides were listed in full (absence from a
    side is then its deletion), else an express change set with its explicit deletions.

    With `binding`, a full listing's unlinked items are matched as an initial pass matches
    (`matching.py`), those outside the filter included, so that an item entering the filter
    pairs with its counterpart instead of being created again: a pair with a side in the
    filter is handed to the planner as a pair (the item carrying the record's id, which the
    planner pairs with no base: equal content links, else the conflict policy decides). Barred
    items (private, blocked) never pair.
    """
    work = _Work(spec, crm, exchange, now, _categories_direction(binding))
    kept_links, leaving = [], []
    for row in links:
        c, e = crm.get(row.crm_id), work.item_of(row)
        if work.pair_out(c, e):
            leaving.append(row)
            work.drop(row, e)
        else:
            kept_links.append(row)
            work.keep(row, e)
    entering, forgotten = [], []
    for row in parked:
        # A parked item read under another id (the mailbox moved, its ids with it) is found by
        # the CRM id it carries; the row comes back pointing at it.
        c, e = crm.get(row.crm_id), work.item_of(row) or work.copy_of(row)
        gone_c = row.crm_id in deleted_crm or (full and c is None)
        gone_e = row.exchange_id in deleted_exchange or (full and e is None)
        if gone_c and gone_e:
            forgotten.append(row)
            work.drop(row, e)
        elif c is not None and e is not None and not work.pair_out(c, e):
            moved = _id(e) != row.exchange_id
            entering.append(replace(row, exchange_id=_id(e), change_key="") if moved else row)
            work.keep(row, e)
        else:
            work.drop(row, e)
    if full and binding is not None:
        work.pair_entering(binding)
    kept_crm, kept_exchange = work.kept_crm(), work.kept_exchange()
    return Screened(
        crm=kept_crm,
        exchange=kept_exchange,
        links=kept_links + entering,
        unmatched_crm=work.unmatched_crm(kept_crm, kept_exchange),
        unmatched_exchange=work.unmatched_exchange(kept_crm, kept_exchange),
        leaving=leaving,
        entering=entering,
        forgotten=forgotten,
        paired=tuple((crm[c], work.by_id[i]) for i, c in sorted(work.hints.items())),
        spec=spec,
    )


class _Work:
    """Indexes of one `apply` call (local to it)."""

    def __init__(
        self,
        spec: Filter,
        crm: Mapping[str, CrmRecord],
        exchange: Sequence[Item],
        now: datetime,
        categories: Direction = Direction.TWO_WAY,
    ) -> None:
        self.spec, self.crm, self.now, self.categories = spec, crm, now, categories
        self.exchange = list(exchange)
        self.by_id = {_id(item): item for item in self.exchange}
        self.by_crm_id: dict[str, list[Item]] = {}
        for item in self.exchange:
            if item.crm_id:
                self.by_crm_id.setdefault(item.crm_id, []).append(item)
        # Ids a row the planner is given accounts for (always kept), and ids of the rows the
        # filter takes away (kept out unless a kept row claims them too).
        self.kept_crm_ids: set[str] = set()
        self.kept_ex_ids: set[str] = set()
        self.dropped_crm: set[str] = set()
        self.dropped_ex: set[str] = set()
        self.hints: dict[str, str] = {}  # item id -> the record it was matched with

    def out(self, side: CrmRecord | Item | None) -> bool:
        return side is not None and not self.spec.admits(side, self.now)

    def pair_out(self, c: CrmRecord | None, e: Item | None) -> bool:
        """Whether a linked pair is out of the filter. Its categories are judged where the
        sync writes them from: both sides (two-way), the source of a one-way field, either
        side when the field is not synced (an item created from the other side has none)."""
        present: list[CrmRecord | Item] = [side for side in (c, e) if side is not None]
        if any(not self.spec.admits_apart(side, self.now) for side in present):
            return True
        if self.categories == Direction.OFF:
            return bool(present) and not any(self.spec.categorized(s) for s in present)
        judged = present
        if self.categories != Direction.TWO_WAY:
            source = c if self.categories == Direction.CRM_TO_EXCHANGE else e
            judged = [] if source is None else [source]
        return any(not self.spec.categorized(side) for side in judged)

    def item_of(self, row: SyncedRow) -> Item | None:
        """The row's item: by id, or (an intended create with no id yet) by the CRM id."""
        item = self.by_id.get(row.exchange_id) if row.exchange_id else None
        if item is None and not row.exchange_id:
            item = next(iter(self.by_crm_id.get(row.crm_id, ())), None)
        return item

    def copy_of(self, row: SyncedRow) -> Item | None:
        """An item not linked by id that carries the row's CRM id."""
        return next(iter(self.by_crm_id.get(row.crm_id, ())), None)

    def keep(self, row: SyncedRow, item: Item | None) -> None:
        self.kept_crm_ids.add(row.crm_id)
        self.kept_ex_ids.add(row.exchange_id)
        if item is not None:
            self.kept_ex_ids.add(_id(item))

    def drop(self, row: SyncedRow, item: Item | None) -> None:
        """Keep both items of a row out of the planner's reads, and copies naming its record."""
        self.dropped_crm.add(row.crm_id)
        self.dropped_ex.add(row.exchange_id)
        if item is not None:
            self.dropped_ex.add(_id(item))
        self.dropped_ex.update(_id(i) for i in self.by_crm_id.get(row.crm_id, ()))

    def pair_entering(self, binding: Binding) -> None:
        """Match the unlinked items nothing else pairs, keep the pairs with a side in."""
        crm = {
            crm_id: crm_fields(binding, record)
            for crm_id, record in self.crm.items()
            if self._free_record(record)
        }
        items = {_id(i): i for i in self.exchange if self._free_item(i)}
        found = match(
            binding.entity, crm, {k: exchange_fields(binding, i) for k, i in items.items()}
        )
        for crm_id, item_id in found.pairs:
            record, item = self.crm[crm_id], items[item_id]
            if self.out(record) and self.out(item):
                continue
            self.kept_crm_ids.add(crm_id)
            self.kept_ex_ids.add(item_id)
            self.hints[item_id] = crm_id

    def _free_record(self, record: CrmRecord) -> bool:
        return (
            record.id not in self.kept_crm_ids
            and record.id not in self.dropped_crm
            and record.id not in self.by_crm_id
            and not self.spec.barred(record)
        )

    def _free_item(self, item: Item) -> bool:
        item_id = _id(item)
        named = [c for c in (item.crm_id, derive_crm_id(_ref(item))) if c and c in self.crm]
        return (
            item_id not in self.kept_ex_ids
            and item_id not in self.dropped_ex
            and not named
            and not (item.crm_id and item.crm_id in self.dropped_crm)
            and not self.spec.barred(item)
        )

    def unmatched_crm(
        self, crm: Mapping[str, CrmRecord], exchange: Sequence[Item]
    ) -> frozenset[str]:
        named = {c for i in exchange for c in (i.crm_id, derive_crm_id(_ref(i))) if c}
        return frozenset(c for c in crm if c not in self.kept_crm_ids and c not in named)

    def unmatched_exchange(
        self, crm: Mapping[str, CrmRecord], exchange: Sequence[Item]
    ) -> frozenset[str]:
        return frozenset(
            _id(i)
            for i in exchange
            if _id(i) not in self.kept_ex_ids
            and not any(c and c in crm for c in (i.crm_id, derive_crm_id(_ref(i))))
        )

    def kept_crm(self) -> dict[str, CrmRecord]:
        kept = {}
        for crm_id, record in self.crm.items():
            if crm_id in self.kept_crm_ids or not (
                crm_id in self.dropped_crm or self._unlinked_record_out(record)
            ):
                kept[crm_id] = record
        return kept

    def kept_exchange(self) -> list[Item]:
        kept = []
        for item in self.exchange:
            item_id = _id(item)
            if item_id in self.kept_ex_ids or not (
                item_id in self.dropped_ex or self._unlinked_item_out(item)
            ):
                hint = self.hints.get(item_id)
                kept.append(item if hint is None else replace(item, crm_id=hint))
        return kept

    def _unlinked_record_out(self, record: CrmRecord) -> bool:
        if self.out(record):
            return True
        # An unlinked item carrying this record's id is its copy: out, it keeps the record out.
        copies = self.by_crm_id.get(record.id, ())
        return any(_id(i) not in self.kept_ex_ids and self.out(i) for i in copies)

    def _unlinked_item_out(self, item: Item) -> bool:
        if self.out(item):
            return True
        assert item.ref is not None
        for crm_id in (item.crm_id, derive_crm_id(item.ref)):
            if not crm_id:
                continue
            if crm_id in self.dropped_crm:
                return True
            record = self.crm.get(crm_id)
            if record is not None and crm_id not in self.kept_crm_ids and self.out(record):
                return True
        return False


def _categories_direction(binding: Binding | None) -> Direction:
    """How the categories of a linked pair are synced (the built-in map: both ways)."""
    if binding is None:
        return Direction.TWO_WAY
    found = [spec.direction for spec in binding.specs if spec.name == "categories"]
    return found[0] if found else Direction.OFF


def _id(item: Item) -> str:
    return _ref(item).id


def _ref(item: Item) -> ItemRef:
    if item.ref is None:
        raise ValueError("an Exchange item read from the server must carry its ref")
    return item.ref
