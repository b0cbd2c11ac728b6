"""`$batch` rules and the checks the simulator makes of every Graph request a client sends.

- A batch holds 1 to 20 requests; request ids are compared without regard to case and must
  be unique, otherwise the whole batch is refused with 400.
- Each inner answer carries its own headers, `Content-Type` among them when it has a body,
  and an inner 429 its own `Retry-After`.
- `Prefer: IdType="ImmutableId"`: a request without it is recorded (our client must send it
  on every request, top level and inner, so that ids survive moves between folders).
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request

BATCH_MAX = 20
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"


def check_requests(inner: Any) -> list[dict[str, Any]]:
    if not isinstance(inner, list) or not inner:
        raise bad_request("Invalid batch payload format: no requests.")
    if len(inner) > BATCH_MAX:
        raise bad_request(f"Number of batch request steps exceeds the maximum of {BATCH_MAX}.")
    seen: set[str] = set()
    for one in inner:
        if not isinstance(one, dict) or not one.get("id") or not one.get("url"):
            raise bad_request("Invalid batch payload format: every request needs an id and a url.")
        rid = str(one["id"]).lower()
        if rid in seen:
            raise bad_request(f"Batch request contains duplicate request id '{one['id']}'.")
        seen.add(rid)
    return inner


def inner_path(path: str) -> str:
    """An inner url is relative to the version root (`/users/...`); Graph also takes it
    absolute, under the root (Microsoft's SDK sends `https://.../v1.0/users/...`)."""
    path = path.lstrip("/")
    return path.removeprefix("v1.0/")


def request_headers(raw: Any) -> dict[str, str]:
    """Inner request headers, lower-case names; a list of values is one comma-joined value."""
    out: dict[str, str] = {}
    for name, value in (raw or {}).items() if isinstance(raw, dict) else ():
        many = isinstance(value, (list, tuple, set))
        out[str(name).lower()] = ", ".join(sorted(map(str, value))) if many else str(value)
    return out


def inner_headers(headers: dict[str, str], has_body: bool) -> dict[str, str]:
    out = dict(headers)
    if has_body and not any(k.lower() == "content-type" for k in out):
        out["Content-Type"] = JSON_TYPE
    return out


def immutable(headers: dict[str, str]) -> bool:
    """The request asked for immutable ids (lower-case header names, as GReq keeps them)."""
    return 'idtype="immutableid"' in headers.get("prefer", "").lower().replace(" ", "")
