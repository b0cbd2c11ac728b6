"""Sync filters: which items of a mailbox are in the sync, and what entering or leaving means.

A filter keeps out of the sync every item that lacks all of its categories, every private
appointment (Exchange's Sensitivity Private, the CRM's `appointments.sensitivity = 'private'`;
the bundled CRM and the item model keep no sensitivity for contacts and tasks), every
appointment outside a time window around now, and every contact that has an address of a
blocked address or domain. A side is judged on its own (`admits`); an item pair is in the sync
only while both of its sides are admitted.

Nothing is ever deleted because of a filter. The planner reads the absence of an item from a
full listing as its deletion, so an item out of the filter must never reach it: `apply` takes
every such item out of BOTH sides' reads, and the link row of a pair that leaves the filter is
set aside ("parked": the pair is left as it is on both sides, its row kept apart) instead of
being planned. A parked pair comes back (its row restored, the planner then reconciles it as
any linked pair, so no duplicate is made) once both sides are read and admitted again; while
either of its items exists it is never planned. An item that was never linked and enters the
filter is an unlinked item like any other: matched by initial passes, else created.

Also kept out: an unlinked item whose CRM-id property names a record that is out of the filter
or parked, and an unlinked record named by such an item that is out (either would otherwise be
created a second time on the other side). Pure: `now` is the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from ews_client.models import Appointment, Contact, Item, Recurrence, Sensitivity
from sync_service.errors import FieldError

from .links import derive_crm_id
from .records import CrmAppointment, CrmContact, CrmRecord
from .state import SyncedRow

# The operator's keys of a filter setting (the JSON object stored per server and mailbox).
KEYS = ("categories", "exclude_private", "calendar_range", "block")
_RANGE = re.compile(r"^\s*-(\d+)d\s*:\s*\+?(\d+)d\s*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
MAX_DAYS = 36600  # a hundred years either way
MAX_ENTRIES = 1000  # categories or blocked entries of one setting


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
        if self._folded and not any(c.casefold() in self._folded for c in side.categories):
            return False
        if isinstance(side, CrmAppointment | Appointment):
            if self.exclude_private and side.sensitivity == Sensitivity.PRIVATE:
                return False
            if self.calendar_range is not None and not _in_window(side, self, now):
                return False
        if self.block and isinstance(side, CrmContact | Contact):
            return not any(_blocked(address, self.block) for address in _addresses(side))
        return True


# -- settings: the operator's JSON, checked --------------------------------------------------


def check_setting(raw: Mapping[str, object]) -> dict[str, object]:
    """A filter setting (some of KEYS) checked and normalized; raises FilterError by key.

    A key given as null (or an empty list) overrides an inherited value with "no filter".
    """
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise FilterError(unknown[0], f"unknown filter key; the keys are {', '.join(KEYS)}")
    out: dict[str, object] = {}
    if "categories" in raw:
        out["categories"] = _names("categories", raw["categories"], _category)
    if "exclude_private" in raw:
        value = raw["exclude_private"]
        if not isinstance(value, bool | None):
            raise FilterError("exclude_private", "must be true or false")
        out["exclude_private"] = bool(value)
    if "calendar_range" in raw:
        value = raw["calendar_range"]
        if value is not None and not isinstance(value, str):
            raise FilterError("calendar_range", "must be a range such as -30d:+365d, or null")
        out["calendar_range"] = None if not value else parse_range(value).text()
    if "block" in raw:
        out["block"] = _names("block", raw["block"], _block_entry)
    return out


def parse_range(text: str) -> CalendarRange:
    """'-30d:+365d': from 30 days back to 365 days ahead of each pass."""
    found = _RANGE.match(text)
    if found is None:
        raise FilterError("calendar_range", f"{text!r} is not a range such as -30d:+365d")
    back, ahead = int(found[1]), int(found[2])
    if max(back, ahead) > MAX_DAYS:
        raise FilterError("calendar_range", f"at most {MAX_DAYS} days either way")
    return CalendarRange(timedelta(days=back), timedelta(days=ahead))


def effective(server: Mapping[str, object], mailbox: Mapping[str, object]) -> Filter:
    """The filter of a mailbox: its server's setting, each key the mailbox gives overriding."""
    merged = {**check_setting(server), **check_setting(mailbox)}
    span = merged.get("calendar_range")
    return Filter(
        categories=tuple(_strings(merged.get("categories"))),
        exclude_private=bool(merged.get("exclude_private", False)),
        calendar_range=parse_range(span) if isinstance(span, str) else None,
        block=tuple(_strings(merged.get("block"))),
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _names(key: str, value: object, check: Callable[[str], str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(key, "must be a list of strings (or one comma-separated string)")
    seen: dict[str, str] = {}
    for entry in value:
        name = check(entry)
        seen.setdefault(name.casefold(), name)
    if len(seen) > MAX_ENTRIES:
        raise FilterError(key, f"at most {MAX_ENTRIES} entries")
    return list(seen.values())


def _category(entry: str) -> str:
    name = entry.strip()
    if not 1 <= len(name) <= 255:
        raise FilterError("categories", f"{entry!r}: a category has 1 to 255 characters")
    return name


def _block_entry(entry: str) -> str:
    name = entry.strip().lower()
    local, at, domain = name.rpartition("@")
    if (at and not local) or not _DOMAIN.match(domain):
        raise FilterError("block", f"{entry!r} is neither an e-mail address nor a domain")
    return name


# -- what one side holds -------------------------------------------------------------------


def _addresses(side: CrmContact | Contact) -> Iterable[str]:
    if isinstance(side, Contact):
        return side.emails
    return (a for a in (side.email, side.email2, side.email3) if a)


def _blocked(address: str, block: Collection[str]) -> bool:
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    parts = domain.split(".")
    domains = {".".join(parts[i:]) for i in range(len(parts))}
    return any(entry == address or entry in domains for entry in block)


def _in_window(side: CrmAppointment | Appointment, spec: Filter, now: datetime) -> bool:
    assert spec.calendar_range is not None
    if isinstance(side, Appointment):
        start, end = side.start, side.end
    else:
        start, end = side.starts_at, side.ends_at
    if start is None:
        return True  # nothing to place in time: a filter on time cannot judge it
    first, last = spec.calendar_range.window(now)
    if side.recurrence is not None:
        until = _series_end(side.recurrence)
        return start <= last and (until is None or until >= first)
    return start <= last and (end or start) >= first


def _series_end(recurrence: Recurrence) -> datetime | None:
    """The end of a series' last day; None when it never ends or ends after a count.

    A count is not expanded here: such a series counts as running on (it is kept, never
    wrongly set aside)."""
    if recurrence.end_date is None:
        return None
    return datetime.combine(recurrence.end_date + timedelta(days=1), time(), UTC)


# -- one entity's reads, screened ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Screened:
    """What the planner is given, and what happens to link rows because of the filter."""

    crm: dict[str, CrmRecord]
    exchange: list[Item]
    links: list[SyncedRow]  # every row the planner plans over (restored ones included)
    leaving: list[SyncedRow]  # active rows to set aside: their pair left the filter
    entering: list[SyncedRow]  # parked rows to restore: both sides are back in the filter
    forgotten: list[SyncedRow]  # parked rows both of whose items are gone


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
) -> Screened:
    """Screen one entity's reads: `full` when both sides were listed in full (absence from a
    side is then its deletion), else an express change set with its explicit deletions."""
    work = _Work(spec, crm, exchange, now)
    kept_links, leaving = [], []
    for row in links:
        c, e = crm.get(row.crm_id), work.item_of(row)
        if work.out(c) or work.out(e):
            leaving.append(row)
            work.drop(row, e)
        else:
            kept_links.append(row)
            work.keep(row, e)
    entering, forgotten = [], []
    for row in parked:
        c, e = crm.get(row.crm_id), work.item_of(row)
        gone_c = row.crm_id in deleted_crm or (full and c is None)
        gone_e = row.exchange_id in deleted_exchange or (full and e is None)
        if gone_c and gone_e:
            forgotten.append(row)
            work.drop(row, e)
        elif c is not None and e is not None and not (work.out(c) or work.out(e)):
            entering.append(row)
            work.keep(row, e)
        else:
            work.drop(row, e)
    return Screened(
        crm=work.kept_crm(),
        exchange=work.kept_exchange(),
        links=kept_links + entering,
        leaving=leaving,
        entering=entering,
        forgotten=forgotten,
    )


class _Work:
    """Indexes of one `apply` call (local to it)."""

    def __init__(
        self,
        spec: Filter,
        crm: Mapping[str, CrmRecord],
        exchange: Sequence[Item],
        now: datetime,
    ) -> None:
        self.spec, self.crm, self.now = spec, crm, now
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

    def out(self, side: CrmRecord | Item | None) -> bool:
        return side is not None and not self.spec.admits(side, self.now)

    def item_of(self, row: SyncedRow) -> Item | None:
        """The row's item: by id, or (an intended create with no id yet) by the CRM id."""
        item = self.by_id.get(row.exchange_id) if row.exchange_id else None
        if item is None and not row.exchange_id:
            item = next(iter(self.by_crm_id.get(row.crm_id, ())), None)
        return item

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
                kept.append(item)
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


def _id(item: Item) -> str:
    if item.ref is None:
        raise ValueError("an Exchange item read from the server must carry its ref")
    return item.ref.id
