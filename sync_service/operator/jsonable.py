"""Values for the wire: JSON-ready conversion and the API's opaque pagination cursor."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from datetime import date, datetime, time, timedelta
from typing import Any

from sync_service.operator.server_specs import InvalidInput


def to_jsonable(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO 8601, durations in seconds, times as HH:MM."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def encode_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput("cursor", "not a cursor returned by this API") from None
    # A row id is a PostgreSQL bigint: anything outside it was not made here.
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return after
