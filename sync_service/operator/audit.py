"""The audit trail for operators, shared by `sync-service audit` and `GET /api/v1/audit`: the
filters as given (a mailbox's address, a record's CRM or Exchange id, a time range, a page size
and a cursor) checked once, and a page of rows with the cursor of the next one.

Times are ISO 8601 (`2026-12-01`, `2026-12-01T10:00:00Z`; without an offset: UTC) or a duration
back from now (`90m`, `2h`, `7d`). The cursor is opaque to the caller: the (at, id) of the last
row of a page, where the next page starts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_service.config import parse_duration
from sync_service.db.audit import AuditFilter, AuditRow, AuditTrail, Position
from sync_service.operator.csv_import import shown, text_problem
from sync_service.operator.operations import MAX_PAGE, InvalidInput, Operations

# A CRM id or an Exchange item id (EWS ids are ~150 characters of base64; Graph's alike).
RECORD_MAX = 1024
# A duration back from now: a number and its unit (a bare number could be a year).
_AGO = re.compile(r"^\s*\d+(?:\.\d+)?\s*(ms|s|m|h|d)\s*$")


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """The filters as an operator gives them (text), before they are checked."""

    mailbox: str | None = None
    record: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    cursor: str | None = None


async def audit_page(ops: Operations, asked: AuditRequest) -> AuditPage:
    """A page of the trail, newest first; InvalidInput / NotFound name the culprit field."""
    if not 1 <= asked.limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
    now = datetime.now(UTC)
    wanted = AuditFilter(
        mailbox_id=(await ops.mailbox(asked.mailbox)).id if asked.mailbox else None,
        record=_record(asked.record),
        since=parse_time("since", asked.since, now),
        until=parse_time("until", asked.until, now),
        after=decode_position(asked.cursor),
        limit=asked.limit + 1,  # one more tells whether a next page exists
    )
    rows = await AuditTrail(ops.pool).rows(wanted)
    more = len(rows) > asked.limit
    rows = rows[: asked.limit]
    cursor = encode_position(rows[-1].position) if more else None
    return AuditPage([entry_json(row) for row in rows], cursor)


def entry_json(row: AuditRow) -> dict[str, Any]:
    """One row as the CLI's --json and the API give it."""
    return {
        "id": row.id,
        "at": row.at,
        "mailbox": row.mailbox,
        "run_id": row.run_id,
        "entity": row.entity,
        "crm_id": row.crm_id,
        "exchange_id": row.exchange_id or None,
        "title": row.title or None,
        "side": row.side,
        "operation": row.operation,
        "changed_on": row.changed_on,
        "reason": row.reason,
        "changes": {name: _change(row.changes[name]) for name in sorted(row.changes)},
        "conflict": None
        if row.policy is None
        else {"policy": row.policy, "winner": row.winner, "losing": _sorted(row.losing)},
    }


def _change(change: dict[str, Any]) -> dict[str, Any]:
    # jsonb keeps an object's keys in its own order: "before" is put back before "after".
    before = {"before": change["before"]} if "before" in change else {}
    return before | {"after": change.get("after")}


def _sorted(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {name: values[name] for name in sorted(values)}


def _record(value: str | None) -> str | None:
    if value is None:
        return None
    problem = text_problem(value, RECORD_MAX)
    if problem is not None or not value:
        raise InvalidInput("record", problem or "must not be empty")
    return value


def parse_time(field: str, value: str | None, now: datetime) -> datetime | None:
    """An ISO 8601 instant (UTC when it names no offset) or a duration back from `now`."""
    if value is None or not value.strip():
        return None
    if _AGO.match(value):
        try:
            return now - timedelta(seconds=parse_duration(value))
        except OverflowError:
            raise InvalidInput(field, f"{shown(value)} is too long ago") from None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        message = f"{shown(value)} is neither a time (2026-12-01T10:00:00Z) nor a duration (2h)"
        raise InvalidInput(field, message) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def encode_position(position: Position) -> str:
    at, row_id = position
    raw = json.dumps({"at": at.isoformat(), "id": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str | None) -> Position | None:
    """The (at, id) a cursor of `encode_position` holds; InvalidInput for anything else."""
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, row_id = datetime.fromisoformat(raw["at"]), raw["id"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput("cursor", "not a cursor returned by this API") from None
    # A row id is a PostgreSQL bigint, and the service writes aware times only.
    if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 <= row_id < 2**63:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    if at.tzinfo is None:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return at, row_id
