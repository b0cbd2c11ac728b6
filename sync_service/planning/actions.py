"""The planner's output: actions for the applier, each with the row to commit after it.

The applier performs the writes of one action, then commits its `row` (or drops the link)
in the status database. Committing a row replaces any row with the same CRM id or the same
Exchange item id. Creates commit a pending `intent` row first. A crash at any point is safe:
the next pass finds the pending row (or the CRM id carried by the item) and pairs the items
again; identical content then only links.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from ews_client.models import EntityKind, ItemRef

from .state import SyncedRow
from .values import Fields


class Side(StrEnum):
    CRM = "crm"
    EXCHANGE = "exchange"


class PassKind(StrEnum):
    """The kind of a pass, as its job asks for it; for the planner, how absence is read
    (see `planner.plan`)."""

    EXPRESS = "express"
    COMPLETE = "complete"
    INITIAL = "initial"
    RECOVER = "recover"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed the item: how it was resolved.

    `winner` is the side whose content won, or None when fields were merged; `fields` are the
    fields that both sides changed to different values.
    """

    policy: str
    winner: Side | None
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class CreateCrm:
    """Create a CRM record with id `crm_id` from an Exchange item.

    Order: commit `intent` (a pending row), create the record (idempotently: insert, or update
    when a record with that id exists, as after a crash), then, when `stamp` is set, write
    `crm_id` into the Exchange item's CRM-id property, then commit `row` with the item's new
    change key.
    """

    crm_id: str
    fields: Fields
    source: ItemRef
    stamp: bool
    intent: SyncedRow
    row: SyncedRow
    title: str = ""


@dataclass(frozen=True, slots=True)
class CreateExchange:
    """Create an Exchange item carrying `crm_id`.

    Order: commit `intent` (a pending row), look the CRM id up with find_by_crm_id (a create
    that crashed before its commit), create the item if none, then commit `row` with
    `exchange_id` and `change_key` filled from the item's ref.
    """

    crm_id: str
    fields: Fields
    intent: SyncedRow
    row: SyncedRow
    title: str = ""


@dataclass(frozen=True, slots=True)
class Update:
    """Write the changed fields of a linked pair on one or both sides, then commit `row`.

    `crm_changes` are canonical names to write on the CRM record (optimistic check against
    `crm_version`); `model_fields` are the model field names for `update_item` (empty: no
    Exchange write). `stamp`: the Exchange item does not carry `crm_id` yet; write it too.
    Order: commit `intent` (when set: the old row plus the target's hash), write the CRM, write
    Exchange, commit `row` with the item's new change key. `crm_before` / `exchange_before`:
    the values the changed fields hold on each side now, for a dry run's before -> after.
    """

    crm_id: str
    ref: ItemRef
    target: Fields
    crm_changes: frozenset[str]
    exchange_changes: frozenset[str]
    model_fields: frozenset[str]
    crm_version: int | None
    stamp: bool
    row: SyncedRow
    intent: SyncedRow | None = None
    conflict: Conflict | None = None
    title: str = ""
    crm_before: Fields = field(default_factory=dict)
    exchange_before: Fields = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteCrm:
    """Delete the CRM record, then drop the link row of (crm_id, exchange_id)."""

    crm_id: str
    exchange_id: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class DeleteExchange:
    """Delete the Exchange item (already gone is fine), then drop the link row."""

    crm_id: str
    ref: ItemRef
    title: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """No write: commit `row` (identical content found, or a change key to refresh)."""

    row: SyncedRow
    reason: str
    conflict: Conflict | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class Unlink:
    """Both sides are gone: drop the link row."""

    crm_id: str
    exchange_id: str
    title: str = ""


Action = CreateCrm | CreateExchange | Update | DeleteCrm | DeleteExchange | Link | Unlink


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """Initial matching found several candidates: reported, never guessed."""

    key: str
    crm_ids: tuple[str, ...]
    exchange_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    entity: EntityKind
    kind: PassKind
    actions: tuple[Action, ...]
    ambiguities: tuple[Ambiguity, ...] = ()
    # Items of the mailbox for this entity (link rows before the pass): the guard's base.
    total: int = 0

    @property
    def deletions(self) -> int:
        return sum(isinstance(a, DeleteCrm | DeleteExchange) for a in self.actions)

    def counts(self) -> dict[str, int]:
        """Action counts by name, e.g. {"create_exchange": 3, "update": 1}."""
        return dict(Counter(action_name(a) for a in self.actions))

    def summary(self) -> str:
        counts = ", ".join(f"{name}={n}" for name, n in sorted(self.counts().items()))
        return f"{self.entity} {self.kind}: {counts or 'nothing to do'} (items={self.total})"


def apply_phase(action: Action) -> int:
    """Stamps first, Exchange creates last (a stable sort keeps the order within a phase).

    An Outlook copy of an item carries the original's CRM-id property until the copy's own
    record is created and stamped; a later create looks CRM ids up (find_by_crm_id) and must
    not find such a copy.
    """
    if isinstance(action, CreateCrm) or (isinstance(action, Update) and action.stamp):
        return 0
    return 2 if isinstance(action, CreateExchange) else 1


_NAMES: dict[type, str] = {
    CreateCrm: "create_crm",
    CreateExchange: "create_exchange",
    Update: "update",
    DeleteCrm: "delete_crm",
    DeleteExchange: "delete_exchange",
    Link: "link",
    Unlink: "unlink",
}


def action_name(action: Action) -> str:
    return _NAMES[type(action)]
