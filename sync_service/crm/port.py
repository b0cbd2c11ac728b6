"""The CRM side of the sync, as a port: what passes and the dispatcher need from any CRM.

Positions: the change log is read by position, an opaque, ever-growing integer. A reader keeps
the `last_seq` of the last batch as its watermark and passes it back as `after_seq`; a position
is only handed out once every change below it is final (committed or rolled back), so a
watermark never skips a change that was still in flight when it was read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from ews_client import EntityKind
from sync_service.errors import SyncServiceError
from sync_service.planning.records import CrmRecord
from sync_service.planning.shared import OwnerDelete


class ChangeOp(StrEnum):
    UPSERT = "upsert"  # created or changed, or newly shared with the user: read it
    REMOVED = "removed"  # deleted, or no longer shared with the user: drop the mailbox copy


@dataclass(frozen=True, slots=True)
class RecordChange:
    record_id: str
    op: ChangeOp


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """The records of one entity that changed for one user, each with its last operation.

    `last_seq` is the new watermark; `complete` is False when `limit` cut the batch short
    (call again from `last_seq`).
    """

    changes: tuple[RecordChange, ...]
    last_seq: int
    complete: bool = True


class PendingChanges(NamedTuple):
    """A user's changes after a position: the newest one, and when the oldest was made."""

    max_seq: int
    oldest_changed_at: datetime


@dataclass(frozen=True, slots=True)
class CrmUser:
    id: str
    email: str
    display_name: str | None = None


class CrmError(SyncServiceError):
    """Root of the CRM port's errors."""


class RecordGone(CrmError):
    """The record no longer exists (deleted in the CRM, or an id that never existed)."""

    def __init__(self, entity: EntityKind, record_id: str) -> None:
        super().__init__(f"{entity} {record_id} does not exist")
        self.entity = entity
        self.record_id = record_id


class VersionConflict(CrmError):
    """The record changed since the version the caller read: re-read and plan again."""

    def __init__(self, entity: EntityKind, record_id: str, expected: int, actual: int) -> None:
        super().__init__(f"{entity} {record_id}: expected version {expected}, found {actual}")
        self.entity = entity
        self.record_id = record_id
        self.expected = expected
        self.actual = actual


class CrmRejected(CrmError):
    """A value the CRM cannot take; `field` names it (e.g. `notes`, `attendees[2].email`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MeetingPort(Protocol):
    """Meetings with several CRM participants: one appointment per meeting, named by the
    meeting's global object id (EWS `UID`, Graph `iCalUId`), and each participant's response."""

    async def known(self, uids: Collection[str]) -> dict[str, str]:
        """Meeting uid -> appointment id, for the uids the CRM knows."""
        ...

    async def uids(self, appointment_ids: Collection[str]) -> dict[str, str]:
        """Appointment id -> meeting uid, for the appointments that are known meetings."""
        ...

    async def register(self, appointment_id: str, uid: str) -> str | None:
        """Name the meeting's appointment unless one already is; the one that is."""
        ...

    async def respond(self, appointment_id: str, user_id: str, response: str) -> None:
        """A participant's own answer: none, accepted, tentative or declined."""
        ...

    async def responses(self, appointment_id: str) -> dict[str, str]:
        """Participant's e-mail -> response."""
        ...

    async def users_by_email(self, emails: Collection[str]) -> Mapping[str, str]:
        """Lower-case e-mail -> CRM user id, for the addresses that are CRM users."""
        ...

    async def claim(self, appointment_id: str, user_id: str) -> None:
        """Make the organizer's CRM user the owner; the former owner stays a participant."""
        ...

    async def link_participants(self, appointment_id: str, user_ids: Collection[str]) -> None:
        """Link CRM users to the appointment (its owner excepted), each once."""
        ...


class CrmPort(Protocol):
    """What the sync engine needs from a CRM. Every write of one call is one transaction.

    `origin_user_id` is the mailbox user a write is made for: the resulting change is delivered
    to every other user holding the record, never back to that user (no echo).
    """

    @property
    def meetings(self) -> MeetingPort:
        """The meeting tables (identity across mailboxes, participants' responses)."""
        ...

    async def current_seq(self) -> int:
        """The position below which every change is final (a watermark to start from)."""
        ...

    async def changes_since(
        self, user_id: str, entity: EntityKind, after_seq: int, limit: int = 10_000
    ) -> ChangeBatch:
        """Records of `entity` in `user_id`'s sync set changed after `after_seq`."""
        ...

    async def purge_changes(self, below: int, before: datetime, limit: int) -> int:
        """Forget up to `limit` changes below position `below` made before `before` (one
        short transaction); how many went. The caller knows no reader needs them."""
        ...

    async def changes_since_many(
        self, user_id: str, after: Mapping[EntityKind, int], limit: int = 10_000
    ) -> dict[EntityKind, ChangeBatch]:
        """`changes_since` for several entities of one user at once (one pass's reads)."""
        ...

    async def pending_users(
        self, after_seq: int, up_to: int | None = None
    ) -> dict[str, PendingChanges]:
        """Users with changes after `after_seq` (and below `up_to`, default `current_seq`)."""
        ...

    async def get_records(self, entity: EntityKind, ids: Sequence[str]) -> dict[str, CrmRecord]:
        """The records that exist among `ids` (unknown or malformed ids are left out)."""
        ...

    async def list_records(self, user_id: str, entity: EntityKind) -> list[CrmRecord]:
        """The user's sync set: records they own plus records linked to them."""
        ...

    async def create_record(self, record: CrmRecord, origin_user_id: str) -> CrmRecord:
        """Create `record` (id "" = generate one) owned by the mailbox user; return it as stored."""
        ...

    async def create_records(self, records: Sequence[CrmRecord], origin_user_id: str) -> None:
        """Create several records in one transaction: all, or none (raising CrmRejected)."""
        ...

    async def update_record(
        self, record: CrmRecord, expected_version: int, origin_user_id: str
    ) -> CrmRecord:
        """Overwrite the record's fields (not its owner); raise VersionConflict / RecordGone."""
        ...

    async def delete_for_user(
        self,
        entity: EntityKind,
        record_id: str,
        user_id: str,
        expected_version: int,
        origin_user_id: str | None,
        owner_delete: OwnerDelete = OwnerDelete.DELETE_ALL,
    ) -> None:
        """A linked user's delete only drops the link; the owner's delete of a record others
        hold follows `owner_delete` (planning/shared.py), held by nobody else it deletes it."""
        ...

    async def shared_ids(self, entity: EntityKind, ids: Collection[str]) -> set[str]:
        """The records among `ids` that more than one user holds (owner and linked users)."""
        ...

    async def list_users(self) -> list[CrmUser]: ...

    async def link_user(self, entity: EntityKind, record_id: str, user_id: str) -> None:
        """Share a record with a further user (admin and test helper)."""
        ...

    async def unlink_user(self, entity: EntityKind, record_id: str, user_id: str) -> None:
        """Stop sharing a record with a user (admin and test helper)."""
        ...
