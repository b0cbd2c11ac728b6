"""Which occurrence operations make the exceptions of a series what the model says (pure).

EWS addresses an occurrence as `t:OccurrenceItemId RecurringMasterId=.. InstanceIndex=n`,
n counted from 1 in series order; `ews_client.recurrence.instance_index` computes n from the
occurrence's original start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ews_client.errors import ItemRejectedError
from ews_client.ews.calendar import occurrence_updates
from ews_client.ews.ids import OccurrenceRef
from ews_client.ews.items import ItemChange
from ews_client.models import Appointment, ModifiedOccurrence
from ews_client.recurrence import instance_index


@dataclass(frozen=True, slots=True)
class ExceptionPlan:
    updates: tuple[ItemChange, ...]
    deletes: tuple[OccurrenceRef, ...]


def _index(appt: Appointment, master_id: str, original_start: datetime) -> OccurrenceRef:
    assert appt.start is not None and appt.recurrence is not None
    index = instance_index(appt.start, appt.time_zone, appt.recurrence, original_start)
    if index is None:
        raise ItemRejectedError(
            f"no occurrence of the series starts at {original_start.isoformat()}",
            code="ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
        )
    return OccurrenceRef(master_id, index)


def plan_exceptions(
    master_id: str, wanted: Appointment, current: Appointment | None
) -> ExceptionPlan:
    """Occurrence updates and deletions still missing on the server (`current` as read)."""
    if wanted.recurrence is None or wanted.start is None:
        return ExceptionPlan((), ())
    have_mod: set[ModifiedOccurrence] = set(current.modified_occurrences) if current else set()
    have_del = set(current.deleted_occurrences) if current else set()
    deleted = set(wanted.deleted_occurrences)
    updates = tuple(
        ItemChange(_index(wanted, master_id, occ.original_start), tuple(occurrence_updates(occ)))
        for occ in wanted.modified_occurrences
        if occ not in have_mod and occ.original_start not in deleted
    )
    deletes = tuple(
        _index(wanted, master_id, start)
        for start in wanted.deleted_occurrences
        if start not in have_del
    )
    return ExceptionPlan(updates, deletes)
