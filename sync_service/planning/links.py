"""Link rows and identities: the CRM ids the planner chooses, the rows it asks to commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from ews_client.models import ItemRef

from .mapping import Binding, content_hash
from .state import ExchangeSnapshot, SyncedRow
from .values import Fields

# Fixed namespace of the CRM ids the planner derives for records created from Exchange items.
CRM_ID_NAMESPACE = uuid.UUID("5d0b8f0e-4c61-4d2a-9f3e-7a1c2b3d4e5f")


def derive_crm_id(ref: ItemRef) -> str:
    """The CRM id for a record created from this version of an Exchange item.

    Deterministic, so a replay after a crash between the CRM create and the link commit
    names the same record and pairs with it instead of creating a second one.
    """
    return str(uuid.uuid5(CRM_ID_NAMESPACE, f"{ref.id}\n{ref.change_key}"))


def referenced_crm_ids(
    exchange: Iterable[ExchangeSnapshot], synced: Iterable[SyncedRow]
) -> set[str]:
    """CRM ids an EXPRESS pass must load besides its changes: those named by unlinked items."""
    linked = {row.exchange_id for row in synced}
    out: set[str] = set()
    for snap in exchange:
        if snap.id not in linked:
            out.add(derive_crm_id(snap.ref))
            if snap.crm_id:
                out.add(snap.crm_id)
    return out


def row_for(binding: Binding, crm_id: str, ref: ItemRef, fields: Fields) -> SyncedRow:
    """The link row to commit once both sides hold `fields`."""
    digest = content_hash(binding, fields)
    return SyncedRow(crm_id, ref.id, ref.change_key, digest, digest, dict(fields))
