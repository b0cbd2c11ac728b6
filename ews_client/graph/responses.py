"""Graph response parsers: JSON bodies to values, error answers to `ews_client.errors`.

One table from HTTP status (refined by the Graph error code) to a small set of classes,
each keeping the raw code (asyncpg's habit, as for EWS ResponseCodes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ews_client.errors import (
    AuthError,
    ConflictError,
    ExchangeError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ItemRejectedError,
    MailboxError,
    ProtocolError,
    QuotaExceededError,
    ThrottledError,
    TransientError,
)
from ews_client.graph.wire import Json

# "410 Gone, or error code syncStateNotFound / resyncRequired: the token is dead."
DEAD_STATE_CODES = frozenset({"syncStateNotFound", "resyncRequired", "SyncStateInvalid",
                              "syncStateInvalid"})  # fmt: skip
MAILBOX_CODES = frozenset({"MailboxNotEnabledForRESTAPI", "ErrorInvalidUser",
                           "ErrorNonExistentMailbox", "ResourceNotFound"})  # fmt: skip
_BY_STATUS: dict[int, type[ExchangeError]] = {
    400: ItemRejectedError,
    401: AuthError,
    403: MailboxError,
    404: ItemNotFoundError,
    409: ConflictError,
    410: InvalidSyncStateError,
    412: ConflictError,
    413: ItemRejectedError,
    422: ItemRejectedError,
    507: QuotaExceededError,
}


def parse_json(data: bytes) -> Json:
    try:
        value = json.loads(data) if data else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("the answer is not JSON", code="Json") from exc
    if not isinstance(value, dict):
        raise ProtocolError("the answer is not a JSON object", code="Json")
    return value


def error_body(data: bytes) -> Json:
    """The JSON object of an error answer, {} when it has none (a proxy's HTML page)."""
    try:
        value = json.loads(data) if data else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def retry_after(value: Any) -> float:
    """Retry-After in seconds (Graph may send fractions); 0 when absent or an HTTP-date."""
    try:
        return max(0.0, float(value)) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def error_code(body: Json) -> tuple[str, str]:
    err = body.get("error")
    if not isinstance(err, dict):
        return "", ""
    inner = err.get("innerError") or err.get("innererror") or {}
    code = str(err.get("code") or "")
    if isinstance(inner, dict) and inner.get("code") in DEAD_STATE_CODES:
        code = str(inner["code"])
    return code, str(err.get("message") or "")


def error_for(status: int, body: Json, retry: Any = None) -> ExchangeError:
    """The exception for a non-2xx answer (also used for each inner `$batch` answer)."""
    code, message = error_code(body)
    text = f"HTTP {status} {code}: {message}".strip()
    raw = code or f"HTTP{status}"
    if status == 429 or (status == 503 and retry not in (None, "")):
        # 429 is per mailbox; a 503 with Retry-After comes from the front end (server-wide).
        scope = "HTTP503" if status == 503 else raw
        return ThrottledError(text, code=scope, backoff_s=retry_after(retry))
    if code in DEAD_STATE_CODES:
        return InvalidSyncStateError(text, code=code)
    if status == 404 and code in MAILBOX_CODES:
        return MailboxError(text, code=code)
    if code == "ErrorQuotaExceeded":
        return QuotaExceededError(text, code=code)
    if status >= 500 and status not in _BY_STATUS:
        return TransientError(text, code=raw)
    return _BY_STATUS.get(status, ProtocolError)(text, code=raw)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a collection or delta answer."""

    values: tuple[Json, ...]
    removed: tuple[str, ...]
    next_link: str | None
    delta_link: str | None


def parse_page(body: Json) -> Page:
    values = body.get("value")
    if not isinstance(values, list):
        raise ProtocolError("a collection answer without 'value'", code="Json")
    items, removed = [], []
    for obj in values:
        if not isinstance(obj, dict) or not obj.get("id"):
            raise ProtocolError("a collection member without an id", code="Json")
        if "@removed" in obj:
            removed.append(str(obj["id"]))  # {"id": ..., "@removed": {"reason": "deleted"}}
        else:
            items.append(obj)
    next_link = body.get("@odata.nextLink")
    delta_link = body.get("@odata.deltaLink")
    return Page(tuple(items), tuple(removed), _link(next_link), _link(delta_link))


def coalesce(pages: list[Page]) -> tuple[list[str], list[str]]:
    """Changed and removed ids in delta order; the last word on an id wins (replays happen)."""
    last: dict[str, bool] = {}
    for page in pages:
        for obj in page.values:
            last.pop(str(obj["id"]), None)
            last[str(obj["id"])] = True
        for rid in page.removed:
            last.pop(rid, None)
            last[rid] = False
    return [k for k, v in last.items() if v], [k for k, v in last.items() if not v]


def listed_keys(pages: list[Page]) -> dict[str, str]:
    """Item id -> the etag (else change key) its last delta entry carried, "" when none."""
    out: dict[str, str] = {}
    for page in pages:
        for obj in page.values:
            out[str(obj["id"])] = str(obj.get("@odata.etag") or obj.get("changeKey") or "")
    return out


def unseen(ids: Sequence[str], listed: Mapping[str, str], keys: Mapping[str, str]) -> list[str]:
    """`ids` less the items still at the change key the caller last synced (its own writes,
    typically): nothing to fetch, and the caller treats an item it is not given as unchanged.
    An entry listed without a key is always kept."""
    return [i for i in ids if not listed.get(i) or keys.get(i) != listed[i]]


def _link(value: Any) -> str | None:
    return str(value) if value else None


@dataclass(frozen=True, slots=True)
class InnerResponse:
    """One answer inside a `$batch` response."""

    id: str
    status: int
    headers: dict[str, str]
    body: Json

    def error(self) -> ExchangeError | None:
        if 200 <= self.status < 300:
            return None
        retry = {k.lower(): v for k, v in self.headers.items()}.get("retry-after")
        return error_for(self.status, self.body, retry)


def parse_batch(body: Json) -> dict[str, InnerResponse]:
    responses = body.get("responses")
    if not isinstance(responses, list):
        raise ProtocolError("a $batch answer without 'responses'", code="Json")
    out = {}
    for res in responses:
        if not isinstance(res, dict) or "id" not in res or "status" not in res:
            raise ProtocolError("a malformed $batch response", code="Json")
        inner = res.get("body")
        out[str(res["id"])] = InnerResponse(
            str(res["id"]),
            int(res["status"]),
            {str(k): str(v) for k, v in (res.get("headers") or {}).items()},
            inner if isinstance(inner, dict) else {},
        )
    return out
