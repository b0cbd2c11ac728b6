"""The sync core: field mapping, hashing, matching and the 3-way planner. Pure, no I/O.

Typical use in a pass, per mailbox and entity::

    binding = bind(MAPS[entity], mailbox_direction, field_overrides)
    crm = [snapshot_crm(binding, record) for record in records]
    exchange = [snapshot_exchange(binding, item) for item in items]
    result = plan(binding, crm, exchange, link_rows, kind=PassKind.COMPLETE, policy=...)
    print(render(result))            # dry run
    # apply: for each action, write (new_item / new_record / updated_record / model_fields),
    # then commit action.row (upsert, replacing rows with the same crm_id or exchange_id).
"""

from ews_client.models import EntityKind

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
)
from .appointments import APPOINTMENTS
from .contacts import CONTACTS
from .guards import GuardError, GuardLimits
from .links import derive_crm_id, referenced_crm_ids, row_for
from .mapping import (
    Binding,
    Direction,
    EntityMap,
    FieldSpec,
    bind,
    content_hash,
    model_fields,
    new_item,
    new_record,
    updated_record,
)
from .planner import plan
from .policy import ConflictPolicy, Policy
from .records import CrmAppointment, CrmAttendee, CrmContact, CrmRecord, CrmTask
from .render import render
from .state import CrmSnapshot, ExchangeSnapshot, SyncedRow, snapshot_crm, snapshot_exchange
from .tasks import TASKS
from .values import Fields, JsonValue

MAPS: dict[EntityKind, EntityMap] = {
    EntityKind.CONTACT: CONTACTS,
    EntityKind.APPOINTMENT: APPOINTMENTS,
    EntityKind.TASK: TASKS,
}

__all__ = [
    "APPOINTMENTS",
    "CONTACTS",
    "MAPS",
    "TASKS",
    "Action",
    "Ambiguity",
    "Binding",
    "Conflict",
    "ConflictPolicy",
    "CreateCrm",
    "CreateExchange",
    "CrmAppointment",
    "CrmAttendee",
    "CrmContact",
    "CrmRecord",
    "CrmSnapshot",
    "CrmTask",
    "DeleteCrm",
    "DeleteExchange",
    "Direction",
    "EntityMap",
    "ExchangeSnapshot",
    "FieldSpec",
    "Fields",
    "GuardError",
    "GuardLimits",
    "JsonValue",
    "Link",
    "PassKind",
    "Plan",
    "Policy",
    "Side",
    "SyncedRow",
    "Unlink",
    "Update",
    "bind",
    "content_hash",
    "derive_crm_id",
    "model_fields",
    "new_item",
    "new_record",
    "plan",
    "referenced_crm_ids",
    "render",
    "row_for",
    "snapshot_crm",
    "snapshot_exchange",
    "updated_record",
]
