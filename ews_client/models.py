"""One item model for both Exchange backends (EWS and Graph).

Wire models are frozen, slotted dataclasses: values, not objects with behaviour. Datetimes are
timezone-aware (UTC); an appointment keeps the IANA name of the zone it was entered in so that
recurrence and all-day items stay right across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from ews_client.errors import ExchangeError

# One fixed property-set GUID and a fixed, tiny set of names: mailbox stores have a quota on
# named-property definitions (3,277 per custom GUID), so names are never derived from data.
CRM_PROPERTY_SET_ID = "6c3f4b2e-8a1d-4e57-9b0c-2d5e7f9a1c34"
CRM_ID_PROPERTY = "CrmId"
# Name of the hidden user configuration that holds the last-synchronization marker.
MARKER_CONFIG_NAME = "CrmSync.Marker"
# Item id -> the change key the caller last synced, read only when a backend needs it.
KnownKeys = Callable[[], Awaitable[Mapping[str, str]]]


class EntityKind(StrEnum):
    CONTACT = "contact"
    APPOINTMENT = "appointment"
    TASK = "task"


class Sensitivity(StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


class Importance(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class TaskStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WAITING_ON_OTHERS = "waiting_on_others"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An Exchange item id with the change key (EWS) or etag (Graph) of the version seen."""

    id: str
    change_key: str = ""


@dataclass(frozen=True, slots=True)
class PostalAddress:
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    given_name: str | None = None
    surname: str | None = None
    display_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    emails: tuple[str, ...] = ()  # at most three (EmailAddress1..3)
    business_phone: str | None = None
    mobile_phone: str | None = None
    home_phone: str | None = None
    business_address: PostalAddress | None = None
    birthday: date | None = None
    categories: tuple[str, ...] = ()
    notes: str | None = None  # plain text
    # Envelope: where the item lives and which CRM record it carries.
    ref: ItemRef | None = None
    crm_id: str | None = None
    last_modified: datetime | None = None

    kind: Literal[EntityKind.CONTACT] = EntityKind.CONTACT


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    name: str | None = None


RecurrenceKind = Literal[
    "daily", "weekly", "absolute_monthly", "relative_monthly", "absolute_yearly", "relative_yearly"
]
# Week of month for relative patterns, as in EWS DayOfWeekIndex / Graph WeekIndex.
WeekIndex = Literal["first", "second", "third", "fourth", "last"]


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A recurrence pattern plus its range.

    The range ends at `end_date`, after `occurrences`, or never (both None).
    Days of week are English names ("monday" ... "sunday"); months are 1..12.
    """

    kind: RecurrenceKind
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    day_of_month: int | None = None
    month: int | None = None
    week_index: WeekIndex | None = None
    start_date: date | None = None
    end_date: date | None = None
    occurrences: int | None = None


@dataclass(frozen=True, slots=True)
class ModifiedOccurrence:
    """One occurrence of a series that differs from the pattern (an exception)."""

    original_start: datetime
    start: datetime
    end: datetime
    subject: str | None = None
    location: str | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    subject: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    time_zone: str = "UTC"  # IANA name
    all_day: bool = False
    location: str | None = None
    notes: str | None = None
    organizer: str | None = None  # SMTP address
    required_attendees: tuple[Attendee, ...] = ()
    optional_attendees: tuple[Attendee, ...] = ()
    is_meeting: bool = False
    sensitivity: Sensitivity = Sensitivity.NORMAL
    reminder_minutes: int | None = None  # None: no reminder
    categories: tuple[str, ...] = ()
    recurrence: Recurrence | None = None
    modified_occurrences: tuple[ModifiedOccurrence, ...] = ()
    deleted_occurrences: tuple[datetime, ...] = ()  # original start of each deleted occurrence
    ref: ItemRef | None = None
    crm_id: str | None = None
    last_modified: datetime | None = None

    kind: Literal[EntityKind.APPOINTMENT] = EntityKind.APPOINTMENT


@dataclass(frozen=True, slots=True)
class MeetingAppointment(Appointment):
    """An appointment that is a meeting Exchange holds: its global object id (EWS `UID`,
    Graph `iCalUId`, shared by the organizer's item and every attendee's copy) and the mailbox
    owner's own response ("organizer" on the organizer's item; else accepted, tentative,
    declined or none); `sent`: the organizer's item was sent to its attendees (a write with
    SendToNone is not)."""

    uid: str | None = None
    my_response: str | None = None
    sent: bool = False


@dataclass(frozen=True, slots=True)
class Task:
    subject: str | None = None
    notes: str | None = None
    start: datetime | None = None
    due: datetime | None = None
    completed: datetime | None = None
    status: TaskStatus = TaskStatus.NOT_STARTED
    percent_complete: int = 0
    importance: Importance = Importance.NORMAL
    reminder_at: datetime | None = None  # None: no reminder
    categories: tuple[str, ...] = ()
    ref: ItemRef | None = None
    crm_id: str | None = None
    last_modified: datetime | None = None

    kind: Literal[EntityKind.TASK] = EntityKind.TASK


Item = Contact | Appointment | Task


@dataclass(frozen=True, slots=True)
class Upsert:
    """An item created or changed on the Exchange side (fetched in full)."""

    item: Item


@dataclass(frozen=True, slots=True)
class Removal:
    """An item deleted on the Exchange side."""

    item_id: str


Change = Upsert | Removal


@dataclass(frozen=True, slots=True)
class SyncResult:
    """All changes of one folder since a sync state, and the state to store afterwards."""

    changes: tuple[Change, ...]
    sync_state: str
    # True when the state given was rejected and the changes are a full listing from scratch:
    # the caller must then reconcile (a complete pass) rather than trust missing items.
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class SyncMarker:
    """The last-synchronization marker kept hidden in the mailbox and in the database."""

    generation: int
    synced_at: datetime


FolderBy = Literal["id", "well_known", "path"]


@dataclass(frozen=True, slots=True)
class FolderChoice:
    """The folder an operator links an entity to: by folder id, by well-known name (EWS's
    distinguished folder ids: "contacts", "calendar", "tasks"), or by display path.

    A path starts at the entity's default folder, as Outlook shows it ("Contacts/CRM": the
    "CRM" folder inside Contacts); its first part is compared with that folder's display name
    (so "Kontakte/CRM" on a German mailbox), the others name a subfolder each.
    """

    by: FolderBy
    value: str


@dataclass(frozen=True, slots=True)
class LinkedFolder:
    """A folder a choice resolved to: its id (what the link keeps) and display path."""

    id: str
    path: str
    created: bool = False  # made by the resolution (`create=True`)


class ExchangeBackend(Protocol):
    """What the sync engine needs from a mailbox server; EwsClient and GraphClient provide it.

    Every method raises a subclass of `ews_client.errors.ExchangeError` on failure. `folder`
    is a folder id from `resolve_folder` (a linked folder); None is the entity's default
    folder. A linked folder that is gone raises `FolderNotFoundError`.
    """

    async def resolve_folder(
        self, mailbox: str, entity: EntityKind, choice: FolderChoice, *, create: bool = False
    ) -> LinkedFolder:
        """The folder `choice` names, of the entity's kind; with `create`, a path's missing
        folders are made. FolderNotFoundError when there is none (or it holds other items)."""
        ...

    async def sync_changes(
        self,
        mailbox: str,
        entity: EntityKind,
        sync_state: str | None,
        known: KnownKeys | None = None,
        *,
        folder: str | None = None,
    ) -> SyncResult:
        """Changes since `sync_state` (None: everything), items fetched in full.

        `known` gives, when awaited, the item ids and the change key the caller last synced
        of each: a backend may leave out items still at that change key (the caller treats
        them as unchanged). It is awaited only when the server reported changed items, so an
        idle folder costs the caller nothing.
        """
        ...

    async def list_items(
        self, mailbox: str, entity: EntityKind, *, folder: str | None = None
    ) -> list[Item]:
        """Every item of the entity's folder, in full (complete pass)."""
        ...

    async def create_item(self, mailbox: str, item: Item, *, folder: str | None = None) -> ItemRef:
        """Create `item` (its crm_id set) in the entity's folder; return its reference."""
        ...

    async def update_item(
        self,
        mailbox: str,
        ref: ItemRef,
        item: Item,
        fields: frozenset[str],
        *,
        folder: str | None = None,
    ) -> ItemRef:
        """Write the named model fields of `item`; None values delete the field."""
        ...

    async def create_many(
        self, mailbox: str, items: Sequence[Item], *, folder: str | None = None
    ) -> list[ItemRef | ExchangeError]:
        """Create items of one kind at once (no recurrence exceptions): a result per item.

        A lost answer is raised, not retried: the caller looks the CRM ids up first.
        """
        ...

    async def update_many(
        self,
        mailbox: str,
        changes: Sequence[tuple[ItemRef, Item, frozenset[str]]],
        *,
        folder: str | None = None,
    ) -> list[ItemRef | ExchangeError]:
        """Write the named plain fields of several items at once: a result per item."""
        ...

    async def delete_item(
        self, mailbox: str, ref: ItemRef, entity: EntityKind, *, folder: str | None = None
    ) -> None:
        """Delete the item; an item that is already gone is not an error."""
        ...

    async def find_by_crm_id(
        self, mailbox: str, entity: EntityKind, crm_id: str, *, folder: str | None = None
    ) -> ItemRef | None:
        """The item carrying `crm_id`, if any (idempotent create after a crash)."""
        ...

    async def read_marker(self, mailbox: str) -> SyncMarker | None: ...

    async def write_marker(self, mailbox: str, marker: SyncMarker) -> None: ...
