"""The planner's inputs: what each side holds now, and what was last synced.

A snapshot carries canonical fields and their content hash, computed once when the pass
reads the side, so the planner compares hashes and only looks at fields when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ews_client.models import Item, ItemRef

from .mapping import Binding, content_hash, crm_fields, exchange_fields
from .records import CrmRecord
from .values import Fields


@dataclass(frozen=True, slots=True)
class CrmSnapshot:
    """One CRM record as read in this pass."""

    id: str
    fields: Fields
    hash: str
    modified: datetime | None = None
    # None: not read in this pass (express, unchanged side); the applier reads before writing.
    version: int | None = None


@dataclass(frozen=True, slots=True)
class ExchangeSnapshot:
    """One Exchange item as read in this pass; `crm_id` is the item's CRM-id property."""

    ref: ItemRef
    crm_id: str | None
    fields: Fields
    hash: str
    modified: datetime | None = None

    @property
    def id(self) -> str:
        return self.ref.id


@dataclass(frozen=True, slots=True)
class SyncedRow:
    """The last-synced state of one linked pair (a row of `sync.item_links`).

    `fields` is the canonical content both sides held after the last successful sync (jsonb);
    the hashes are those of each side's content at that moment.

    `pending` names the side of a create that was intended but not confirmed ("crm" or
    "exchange"; "" for a confirmed row). The applier commits such an intent row BEFORE a
    create and the confirmed row after it, so a crash in between is recognised: the missing
    side of a pending row was never created (create again), it was not deleted.

    `intent_hash` is the hash of the content an in-flight Update is writing (committed before
    the writes, see `Update.intent`): a side found holding it after a crash was written by the
    service, not modified by a user, so it does not win against a deletion on the other side.
    """

    crm_id: str
    exchange_id: str
    change_key: str
    crm_hash: str
    exchange_hash: str
    fields: Fields
    pending: str = ""
    intent_hash: str = ""


def snapshot_crm(binding: Binding, record: CrmRecord) -> CrmSnapshot:
    fields = crm_fields(binding, record)
    return CrmSnapshot(
        id=record.id,
        fields=fields,
        hash=content_hash(binding, fields),
        modified=record.updated_at,
        version=record.version,
    )


def snapshot_exchange(
    binding: Binding, item: Item, row: SyncedRow | None = None
) -> ExchangeSnapshot:
    """The item's snapshot; with its link `row`, an unchanged change key skips normalizing.

    A change key changes with every modification of the item on the server, so an item still
    at the change key of its last sync holds the row's content. The shortcut is taken only for
    a settled row (no pending create, no in-flight update) hashed over the same fields.
    """
    if item.ref is None:
        raise ValueError("an Exchange item read from the server must carry its ref")
    if row is not None and _settled(binding, row, item.ref):
        return ExchangeSnapshot(
            item.ref, item.crm_id, row.fields, row.exchange_hash, item.last_modified
        )
    fields = exchange_fields(binding, item)
    return ExchangeSnapshot(
        ref=item.ref,
        crm_id=item.crm_id,
        fields=fields,
        hash=content_hash(binding, fields),
        modified=item.last_modified,
    )


def _settled(binding: Binding, row: SyncedRow, ref: ItemRef) -> bool:
    return (
        (row.exchange_id, row.change_key) == (ref.id, ref.change_key)
        and not row.pending
        and not row.intent_hash
        and len(row.fields) == len(binding.specs)
        and all(spec.name in row.fields for spec in binding.specs)
    )
