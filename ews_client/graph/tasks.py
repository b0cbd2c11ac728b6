"""Task <-> Graph To Do `todoTask` JSON.

To Do tasks have no extended properties: the CRM id is a `linkedResource` whose
`applicationName` is ours and whose `externalId` is the CRM id. They have no percent complete
either: it reads as 100 for a completed task and 0 otherwise, and is never written.
"""

from __future__ import annotations

from typing import Any

from ews_client.graph.wire import (
    LINK_APPLICATION,
    Json,
    dtz,
    etag_of,
    opt_str,
    parse_dt,
    parse_dtz,
    read_body,
    text_body,
)
from ews_client.models import Importance, ItemRef, Task, TaskStatus

STATUS_TO_GRAPH = {
    TaskStatus.NOT_STARTED: "notStarted",
    TaskStatus.IN_PROGRESS: "inProgress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.WAITING_ON_OTHERS: "waitingOnOthers",
    TaskStatus.DEFERRED: "deferred",
}
STATUS_FROM_GRAPH = {v: k for k, v in STATUS_TO_GRAPH.items()}
DATES = {"start": "startDateTime", "due": "dueDateTime", "completed": "completedDateTime"}


def linked_resource(crm_id: str) -> Json:
    return {"applicationName": LINK_APPLICATION, "externalId": crm_id, "displayName": "CRM"}


def task_fields(task: Task, field: str) -> Json:
    """The Graph properties that carry one model field (for POST and PATCH).

    `crm_id` is not a property: linked resources are written through their own collection
    (`linked_resource`), on create inline."""
    if field == "subject":
        return {"title": task.subject or ""}
    if field == "notes":
        return {"body": text_body(task.notes)}
    if field in DATES:
        value = getattr(task, field)
        return {DATES[field]: dtz(value) if value else None}
    if field == "status":
        return {"status": STATUS_TO_GRAPH[task.status]}
    if field == "importance":
        return {"importance": task.importance.value}
    if field == "reminder_at":
        on = task.reminder_at is not None
        when = dtz(task.reminder_at) if task.reminder_at else None
        return {"isReminderOn": on, "reminderDateTime": when}
    if field == "categories":
        return {"categories": list(task.categories)}
    return {}


def read_link(obj: Json) -> tuple[str | None, str | None]:
    """(linked resource id, CRM id) of our application's linked resource, if any."""
    for link in obj.get("linkedResources") or ():
        if link.get("applicationName") == LINK_APPLICATION and link.get("externalId"):
            return opt_str(link.get("id")), str(link["externalId"])
    return None, None


def _importance(value: Any) -> Importance:
    try:
        return Importance(str(value or "normal").lower())
    except ValueError:
        return Importance.NORMAL


def task_from_json(obj: Json) -> Task:
    status = STATUS_FROM_GRAPH.get(str(obj.get("status")), TaskStatus.NOT_STARTED)
    modified = obj.get("lastModifiedDateTime")
    return Task(
        subject=opt_str(obj.get("title")),
        notes=read_body(obj),
        start=parse_dtz(obj.get("startDateTime")),
        due=parse_dtz(obj.get("dueDateTime")),
        completed=parse_dtz(obj.get("completedDateTime")),
        status=status,
        percent_complete=100 if status is TaskStatus.COMPLETED else 0,
        importance=_importance(obj.get("importance")),
        reminder_at=parse_dtz(obj.get("reminderDateTime")) if obj.get("isReminderOn") else None,
        categories=tuple(obj.get("categories") or ()),
        ref=ItemRef(str(obj["id"]), etag_of(obj)) if obj.get("id") else None,
        crm_id=read_link(obj)[1],
        last_modified=parse_dt(str(modified)) if modified else None,
    )
