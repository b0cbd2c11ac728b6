"""The task mapping: CRM `CrmTask` <-> Exchange `Task`."""

from __future__ import annotations

from typing import cast

from ews_client.models import EntityKind, Importance, Task, TaskStatus

from . import values as v
from .mapping import EntityMap, FieldSpec, ValueMap
from .records import CrmTask
from .values import Fields

# Other spellings a CRM may hold, read as Exchange's values (and written back as Exchange's).
STATUS_SPELLINGS = {
    "open": "not_started",
    "done": "completed",
    "complete": "completed",
    "waiting": "waiting_on_others",
}
IMPORTANCE_SPELLINGS = {"urgent": "high", "medium": "normal"}
STATUS = v.enum_codec("status", TaskStatus, TaskStatus.NOT_STARTED, STATUS_SPELLINGS)
IMPORTANCE = v.enum_codec("importance", Importance, Importance.NORMAL, IMPORTANCE_SPELLINGS)
STATUS_VALUES = ValueMap.of(TaskStatus, TaskStatus.NOT_STARTED, STATUS_SPELLINGS)
IMPORTANCE_VALUES = ValueMap.of(Importance, Importance.NORMAL, IMPORTANCE_SPELLINGS)


def _simple(
    name: str,
    codec: v.Codec,
    crm: str | None = None,
    model: str | None = None,
    values: ValueMap | None = None,
) -> FieldSpec:
    crm_attr, model_attr = crm or name, model or name
    return FieldSpec(
        name=name,
        codec=codec,
        crm_read=lambda record: getattr(record, crm_attr),
        exchange_read=lambda item: getattr(item, model_attr),
        crm_attrs=(crm_attr,),
        model_fields=(model_attr,),
        values=values,
    )


SPECS: tuple[FieldSpec, ...] = (
    _simple("subject", v.LINE),
    _simple("notes", v.TEXT),
    _simple("start", v.DATETIME, crm="starts_at"),
    _simple("due", v.DATETIME, crm="due_at"),
    _simple("completed", v.DATETIME, crm="completed_at"),
    _simple("status", STATUS, values=STATUS_VALUES),
    _simple("percent_complete", v.INT),
    _simple("importance", IMPORTANCE, values=IMPORTANCE_VALUES),
    _simple("reminder_at", v.DATETIME),
    _simple("categories", v.CATEGORIES),
)


def _text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)


def build_record(fields: Fields, crm_id: str, owner_id: str) -> CrmTask:
    return CrmTask(
        id=crm_id,
        owner_id=owner_id,
        subject=_text(fields, "subject"),
        notes=_text(fields, "notes"),
        starts_at=v.parse_datetime(fields.get("start")),
        due_at=v.parse_datetime(fields.get("due")),
        completed_at=v.parse_datetime(fields.get("completed")),
        status=v.decode_enum(TaskStatus, fields.get("status"), TaskStatus.NOT_STARTED),
        percent_complete=int(cast(int, fields.get("percent_complete") or 0)),
        importance=v.decode_enum(Importance, fields.get("importance"), Importance.NORMAL),
        reminder_at=v.parse_datetime(fields.get("reminder_at")),
        categories=tuple(str(c) for c in cast(list[str], fields.get("categories") or [])),
    )


def build_item(fields: Fields, crm_id: str) -> Task:
    record = build_record(fields, crm_id, "")
    return Task(
        subject=record.subject,
        notes=record.notes,
        start=record.starts_at,
        due=record.due_at,
        completed=record.completed_at,
        status=record.status,
        percent_complete=record.percent_complete,
        importance=record.importance,
        reminder_at=record.reminder_at,
        categories=record.categories,
        crm_id=crm_id,
    )


def title(fields: Fields) -> str:
    return f"{_text(fields, 'subject') or '(no subject)'} (due {_text(fields, 'due') or '-'})"


TASKS = EntityMap(
    entity=EntityKind.TASK,
    specs=SPECS,
    build_record=build_record,
    build_item=build_item,
    title=title,
)
