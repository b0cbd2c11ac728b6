"""Task <-> `t:Task` (TaskType, children in schema order)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ews_client.errors import ProtocolError
from ews_client.ews.ids import FieldURI, PropertyPath, read_item_ref
from ews_client.ews.itemxml import (
    COMMON_READ,
    FieldUpdate,
    add_body,
    add_categories,
    add_crm_id,
    add_text,
    children,
    common_updates,
    read_body,
    read_categories,
    read_crm_id,
    read_dt,
    read_text,
    set_update,
)
from ews_client.ews.xml import Element, fmt_bool, fmt_dt, new, parse_bool, sub, t
from ews_client.models import Importance, Task, TaskStatus

STATUS_TO_EWS = {
    TaskStatus.NOT_STARTED: "NotStarted",
    TaskStatus.IN_PROGRESS: "InProgress",
    TaskStatus.COMPLETED: "Completed",
    TaskStatus.WAITING_ON_OTHERS: "WaitingOnOthers",
    TaskStatus.DEFERRED: "Deferred",
}
STATUS_FROM_EWS = {v: k for k, v in STATUS_TO_EWS.items()}
IMPORTANCE_TO_EWS = {Importance.LOW: "Low", Importance.NORMAL: "Normal", Importance.HIGH: "High"}
IMPORTANCE_FROM_EWS = {v: k for k, v in IMPORTANCE_TO_EWS.items()}

TASK_READ: tuple[PropertyPath, ...] = (
    *COMMON_READ,
    FieldURI("item:Importance"),
    FieldURI("item:ReminderDueBy"),
    FieldURI("item:ReminderIsSet"),
    FieldURI("task:CompleteDate"),
    FieldURI("task:DueDate"),
    FieldURI("task:PercentComplete"),
    FieldURI("task:StartDate"),
    FieldURI("task:Status"),
)


def _add_dt(parent: Element, tag: str, value: datetime | None) -> None:
    if value is not None:
        sub(parent, t(tag), fmt_dt(value))


def _add_reminder(parent: Element, task: Task, *, due: bool = True, is_set: bool = True) -> None:
    if due and task.reminder_at is not None:
        sub(parent, t("ReminderDueBy"), fmt_dt(task.reminder_at))
    if is_set:
        sub(parent, t("ReminderIsSet"), fmt_bool(task.reminder_at is not None))


def task_to_xml(task: Task) -> Element:
    el = new(t("Task"))
    add_text(el, "Subject", task.subject)
    add_body(el, task.notes)
    add_categories(el, task.categories)
    sub(el, t("Importance"), IMPORTANCE_TO_EWS[task.importance])
    _add_reminder(el, task)
    add_crm_id(el, task.crm_id)
    _add_dt(el, "CompleteDate", task.completed)
    _add_dt(el, "DueDate", task.due)
    sub(el, t("PercentComplete"), str(task.percent_complete))
    _add_dt(el, "StartDate", task.start)
    sub(el, t("Status"), STATUS_TO_EWS[task.status])
    return el


def _percent(text: str | None) -> int:
    if not text:
        return 0
    try:
        return round(float(text))
    except ValueError as exc:
        raise ProtocolError(f"bad PercentComplete {text!r}") from exc


def task_from_xml(el: Element) -> Task:
    kids = children(el)
    status = read_text(kids, "Status")
    importance = read_text(kids, "Importance")
    reminder_set = parse_bool(read_text(kids, "ReminderIsSet"))
    if status is not None and status not in STATUS_FROM_EWS:
        raise ProtocolError(f"unexpected task status {status!r}")
    if importance is not None and importance not in IMPORTANCE_FROM_EWS:
        raise ProtocolError(f"unexpected importance {importance!r}")
    return Task(
        subject=read_text(kids, "Subject"),
        notes=read_body(kids),
        start=read_dt(kids, "StartDate"),
        due=read_dt(kids, "DueDate"),
        completed=read_dt(kids, "CompleteDate"),
        status=STATUS_FROM_EWS[status] if status else TaskStatus.NOT_STARTED,
        percent_complete=_percent(read_text(kids, "PercentComplete")),
        importance=IMPORTANCE_FROM_EWS[importance] if importance else Importance.NORMAL,
        reminder_at=read_dt(kids, "ReminderDueBy") if reminder_set else None,
        categories=read_categories(kids),
        ref=read_item_ref(kids.get(t("ItemId"))),
        crm_id=read_crm_id(el),
        last_modified=read_dt(kids, "LastModifiedTime"),
    )


_DATES = {"start": ("StartDate", "task:StartDate"), "due": ("DueDate", "task:DueDate"),
          "completed": ("CompleteDate", "task:CompleteDate")}  # fmt: skip


def _one(uri: str, write: Callable[[Element], None]) -> list[FieldUpdate]:
    return [set_update(FieldURI(uri), "Task", write)]


def task_updates(task: Task, field: str) -> list[FieldUpdate]:
    """SetItemField / DeleteItemField for one model field of a task."""
    if field == "subject":
        if task.subject is None:
            return [FieldUpdate(FieldURI("item:Subject"), None)]
        return _one("item:Subject", lambda e: add_text(e, "Subject", task.subject))
    if field in _DATES:
        tag, uri = _DATES[field]
        value: datetime | None = getattr(task, field)
        if value is None:
            return [FieldUpdate(FieldURI(uri), None)]
        return _one(uri, lambda e: _add_dt(e, tag, value))
    if field == "status":
        return _one("task:Status", lambda e: add_text(e, "Status", STATUS_TO_EWS[task.status]))
    if field == "percent_complete":
        return _one("task:PercentComplete", lambda e: add_text(
            e, "PercentComplete", str(task.percent_complete)))  # fmt: skip
    if field == "importance":
        value_text = IMPORTANCE_TO_EWS[task.importance]
        return _one("item:Importance", lambda e: add_text(e, "Importance", value_text))
    if field == "reminder_at":
        return _reminder_updates(task)
    return common_updates(task, "Task", field)


def _reminder_updates(task: Task) -> list[FieldUpdate]:
    is_set = _one("item:ReminderIsSet", lambda e: _add_reminder(e, task, due=False))
    if task.reminder_at is None:
        return is_set
    due = _one("item:ReminderDueBy", lambda e: _add_reminder(e, task, is_set=False))
    return due + is_set
