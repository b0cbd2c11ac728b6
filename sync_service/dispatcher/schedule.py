"""Pure schedule arithmetic: when a mailbox is due for which pass. No I/O, no clock of its own.

Every function takes the current instant as an argument, so tests drive them with any time
(including across daylight-saving changes) and the dispatcher passes its injected clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ews_client import EntityKind
from sync_service.db.enums import EntityMode
from sync_service.db.queue import Entities
from sync_service.db.schedules import ScheduleRow


@dataclass(frozen=True, slots=True)
class CompleteSchedule:
    """A server's daily complete pass: local wall time in its own zone, spread over a window."""

    time_zone: ZoneInfo
    at: time
    window: timedelta


@dataclass(frozen=True, slots=True)
class MailboxTimes:
    """What the schedules need to know about one mailbox."""

    id: int
    group: str | None
    last_pass_at: datetime | None  # any successful pass (express, push-driven, complete...)


def spread_offset(mailbox_id: int, window: timedelta) -> timedelta:
    """A stable offset in [0, window) from a hash of the mailbox id.

    Hashing (rather than id modulo) spreads consecutive ids evenly over the whole window, so
    thousands of mailboxes imported together do not all start in the same second.
    """
    if window <= timedelta(0):
        return timedelta(0)
    digest = hashlib.blake2b(str(mailbox_id).encode(), digest_size=8).digest()
    share = int.from_bytes(digest, "big") / 2**64
    return timedelta(seconds=int(share * window.total_seconds()))


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` on `day` in `zone`, as a UTC instant, well defined on both DST change days.

    A wall time skipped by the spring change (02:30 in Europe on that Sunday) does not exist;
    zoneinfo interprets it with the offset in force before the change (fold=0), which lands
    on the same distance after the gap began, i.e. 03:30 local. A wall time repeated in
    autumn is taken at its first occurrence (fold=0), so the pass still runs once that day.
    """
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).astimezone(UTC)


def complete_slot(schedule: CompleteSchedule, mailbox_id: int, day: date) -> datetime:
    """When the mailbox's complete pass of local day `day` starts."""
    start = local_instant(day, schedule.at, schedule.time_zone)
    return start + spread_offset(mailbox_id, schedule.window)


def complete_due(
    schedule: CompleteSchedule, mailbox_id: int, since: datetime, until: datetime
) -> bool:
    """Whether one of the mailbox's daily slots falls in (since, until]."""
    if until <= since:
        return False
    zone = schedule.time_zone
    # Slots are at most `window` after their day's start; look one more day back for safety.
    first = (since - schedule.window).astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    day = first
    while day <= last:
        if since < complete_slot(schedule, mailbox_id, day) <= until:
            return True
        day += timedelta(days=1)
    return False


def express_due(
    mailbox: MailboxTimes,
    now: datetime,
    interval: timedelta,
    *,
    covered: bool,
    last_swept_at: datetime | None = None,
) -> bool:
    """The express sweep's rule for one mailbox.

    Due when no pass ran for a whole interval and no healthy streaming subscription watches
    it (push already brings its Exchange changes, and CRM changes come from the change feed).
    `last_swept_at` keeps a sweep from requesting the same mailbox again before its job ran.
    """
    if covered:
        return False
    if mailbox.last_pass_at is not None and now - mailbox.last_pass_at < interval:
        return False
    return last_swept_at is None or now - last_swept_at >= interval


def covers(rule: ScheduleRow, server_id: int, group: str | None, entity: EntityKind) -> bool:
    """Whether a schedule covers one entity of a mailbox of `server_id` in `group`."""
    return (
        (rule.server_id is None or rule.server_id == server_id)
        and (rule.groups is None or (group is not None and group in rule.groups))
        and (rule.entities is None or entity in rule.entities)
    )


def _specificity(rule: ScheduleRow) -> tuple[bool, bool, bool]:
    # Groups name the fewest mailboxes; then naming the entity beats naming the server (a
    # schedule without a server always names groups, so this only orders group schedules).
    return (rule.groups is not None, rule.entities is not None, rule.server_id is not None)


def express_interval(
    rules: Iterable[ScheduleRow],
    default: timedelta,
    server_id: int,
    group: str | None,
    entity: EntityKind,
) -> timedelta | None:
    """The express cadence of one entity of a mailbox (None: no express sweep).

    The most specific schedule covering it decides; among equally specific ones the shortest
    interval (a schedule without one only wins alone). None covers it: the server's interval.
    """
    matching = [r for r in rules if covers(r, server_id, group, entity)]
    if not matching:
        return default
    best = max(_specificity(r) for r in matching)
    given = [r.interval for r in matching if _specificity(r) == best and r.interval is not None]
    return min(given) if given else None


def due_entities(
    active: Iterable[EntityKind],
    last_pass_at: Mapping[EntityKind, datetime | None],
    intervals: Mapping[EntityKind, timedelta | None],
    now: datetime,
    last_swept_at: Mapping[EntityKind, datetime],
) -> frozenset[EntityKind]:
    """The entities of one mailbox its express schedules want a pass of at `now`.

    Each entity as `express_due` judges a mailbox: no pass of it for a whole interval, and not
    already asked for by a sweep within one interval (its job may not have run yet).
    """
    due = set()
    for entity in active:
        interval = intervals.get(entity)
        if interval is None:
            continue
        last = last_pass_at.get(entity)
        swept = last_swept_at.get(entity)
        if (last is None or now - last >= interval) and (swept is None or now - swept >= interval):
            due.add(entity)
    return frozenset(due)


def active_entities(contacts: str, calendar: str, tasks: str) -> tuple[EntityKind, ...]:
    """The entities a pass of the mailbox covers: those whose mode is not off."""
    modes = (
        (EntityKind.CONTACT, contacts),
        (EntityKind.APPOINTMENT, calendar),
        (EntityKind.TASK, tasks),
    )
    return tuple(entity for entity, mode in modes if mode != EntityMode.OFF)


def entities_of(
    parent_folder_ids: Iterable[str | None], folders: Mapping[str, EntityKind]
) -> Entities:
    """The entities whose folders a notification's events name (ParentFolderId of each
    event; `folders`: the watched folders' ids -> their entity). None, every entity, when
    an event names no folder or one not watched: a change is never left without a pass."""
    found = set()
    for folder_id in parent_folder_ids:
        entity = folders.get(folder_id) if folder_id is not None else None
        if entity is None:
            return None
        found.add(entity)
    return frozenset(found) if found else None


# Modes under which Exchange-side changes flow to the CRM: only those folders need watching.
_READS_EXCHANGE = frozenset({EntityMode.TWO_WAY, EntityMode.EXCHANGE_TO_CRM})


def watched_entities(contacts: str, calendar: str, tasks: str) -> tuple[EntityKind, ...]:
    """The entities whose Exchange folder a streaming subscription must cover."""
    modes = (
        (EntityKind.CONTACT, contacts),
        (EntityKind.APPOINTMENT, calendar),
        (EntityKind.TASK, tasks),
    )
    return tuple(entity for entity, mode in modes if mode in _READS_EXCHANGE)


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Rows strictly older than this instant are purged."""
    return now - timedelta(days=days)


def retention_due(last_run: datetime | None, now: datetime) -> bool:
    """Retention runs once a day."""
    return last_run is None or now - last_run >= timedelta(days=1)
