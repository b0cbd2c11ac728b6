"""`GET /api/v1/audit`: the audit trail over the admin API, with its query and answer models
(they validate the request and are the OpenAPI document's schemas of this route)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints, WithJsonSchema

from sync_service.operator.audit import RECORD_MAX, AuditRequest, audit_page
from sync_service.operator.http import Doc, ok, operations_of, with_query
from sync_service.operator.models import (
    PAGE,
    Address,
    Answer,
    Cursor,
    Integer,
    Plain,
    Query,
    Setting,
)

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module
Record = Annotated[str, StringConstraints(min_length=1, max_length=RECORD_MAX), Plain]
TIME = "ISO 8601 (UTC unless it names an offset) or a duration back from now, e.g. 2h"


def _one_of(*choices: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(choices)})


Side = Annotated[str, _one_of("crm", "exchange")]


class AuditFilter(Query):
    mailbox: Address | None = Field(None, description="SMTP address")
    record: Record | None = Field(None, description="a CRM id or an Exchange item id")
    since: Setting | None = Field(None, description=f"from this time on: {TIME}")
    until: Setting | None = Field(None, description=f"before this time: {TIME}")
    limit: Integer = Field(100, description=PAGE)
    cursor: Cursor | None = Field(None, description="next_cursor of the previous page")


class FieldChange(Answer):
    before: Any = Field(None, description="absent for a create")
    after: Any = None


class AuditConflict(Answer):
    """Both sides changed the same fields: how it was decided."""

    policy: str = Field(examples=["crm_wins"])
    winner: Side | None = Field(description="the side whose values were kept")
    losing: dict[str, Any] | None = Field(description="the other side's values, by field")


class AuditEntry(Answer):
    id: int
    at: datetime = Field(description="when the write was committed")
    mailbox: str
    run_id: int | None = Field(description="the pass (runs) that wrote")
    entity: Annotated[str, _one_of("contact", "appointment", "task")]
    crm_id: str
    exchange_id: str | None
    title: str | None
    side: Side = Field(description="the side written")
    operation: Annotated[str, _one_of("create", "update", "delete")]
    changed_on: Annotated[str, _one_of("crm", "exchange", "both")] = Field(
        description="the side whose change the write carries over"
    )
    reason: str
    changes: dict[str, FieldChange] = Field(description="by field; values cut at 256 characters")
    conflict: AuditConflict | None


class AuditPage(Answer):
    entries: list[AuditEntry]
    next_cursor: str | None


async def list_audit(request: web.Request, query: AuditFilter) -> web.Response:
    ops = operations_of(request)
    asked = AuditRequest(
        query.mailbox, query.record, query.since, query.until, query.limit, query.cursor
    )
    page = await audit_page(ops, asked)
    return ok({"entries": page.entries, "next_cursor": page.next_cursor})


ROUTES = (
    with_query(
        f"{PREFIX}/audit",
        AuditFilter,
        list_audit,
        Doc(
            "the writes the sync made, newest first (by mailbox, record, time; paginated)",
            "a page of the audit trail and the next cursor",
            schema=AuditPage,
        ),
    ),
)
