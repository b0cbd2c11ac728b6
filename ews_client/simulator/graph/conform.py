"""The Graph side's validation hook: every entity the simulator sends and every body a client
POSTs or PATCHes to an entity route, checked against Microsoft's metadata (`schema.py`).

Problems are recorded, not refused: a response problem is the simulator's bug
(`sim.invalid_responses`), a request problem the client's (`sim.invalid_requests`), and the
simulator still answers as Graph would. Only on when `validate_responses` is (tests).
"""

from __future__ import annotations

import re
from typing import Any

from ..state import SimState
from . import schema

_P = r"(?:users/[^/]+|me)"
_ID = r"[^/]+"
_DELTA = r"(?:/delta(?:\(\))?)?"
_TASKS = rf"{_P}/todo/lists/{_ID}/tasks"
_COLLS = "|".join(
    (
        rf"(?:contactFolders/{_ID}/)?contacts",
        rf"(?:calendar/|calendars/{_ID}/)?events",
        "todo/lists/[^/]+/tasks",
    )
)
_ITEM = rf"{_P}/(?:{_COLLS})/{_ID}"
# (path pattern, the metadata's type of what it returns or takes); the first match wins.
_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$"), type_)
    for pattern, type_ in (
        (rf"{_ITEM}/extensions(?:/{_ID})?", "extension"),
        (rf"{_P}/extensions(?:/{_ID})?", "extension"),
        (rf"{_TASKS}/{_ID}/linkedResources(?:/{_ID})?", "linkedResource"),
        (rf"{_P}/events/{_ID}/instances{_DELTA}", "event"),
        (rf"{_P}/events/{_ID}/(?:cancel|accept|decline|tentativelyAccept)", ""),
        (rf"{_P}/(?:contactFolders/{_ID}/)?contacts{_DELTA}", "contact"),
        (rf"{_P}/(?:contactFolders/{_ID}/)?contacts/{_ID}", "contact"),
        (rf"{_P}/contactFolders{_DELTA}", "contactFolder"),
        (rf"{_P}/contactFolders/{_ID}", "contactFolder"),
        (rf"{_P}/(?:calendar/|calendars/{_ID}/)?events{_DELTA}", "event"),
        (rf"{_P}/(?:calendar/)?calendarView{_DELTA}", "event"),
        (rf"{_P}/(?:calendar/|calendars/{_ID}/)?events/{_ID}", "event"),
        (rf"{_P}/calendars(?:/{_ID})?", "calendar"),
        (rf"{_P}/calendar", "calendar"),
        (rf"{_TASKS}{_DELTA}", "todoTask"),
        (rf"{_TASKS}/{_ID}", "todoTask"),
        (rf"{_P}/todo/lists{_DELTA}", "todoTaskList"),
        (rf"{_P}/todo/lists/{_ID}", "todoTaskList"),
        (r"subscriptions(?:/[^/]+)?", "subscription"),
        (rf"{_P}/translateExchangeIds", "convertIdResult"),
    )
)
# What a collection answer may carry besides its entities.
_PAGE_KEYS = frozenset({"value"})


def entity_type(path: str) -> str | None:
    """The metadata's type for a Graph path (after `/v1.0/`), or None if not an entity route."""
    for pattern, type_ in _ROUTES:
        if pattern.match(path):
            return type_ or None
    return None


def check_request(sim: SimState, method: str, path: str, body: object) -> None:
    if not sim.config.validate_responses or method not in ("POST", "PATCH") or body is None:
        return
    type_ = entity_type(path)
    # An action's body is its parameters, not the type it returns (translate.py checks them).
    if type_ is None or path.endswith(("/reauthorize", "/translateExchangeIds")):
        return
    for problem in schema.check(type_, body):
        sim.invalid_requests.append(f"{method} /{path}: {problem}")


def check_response(sim: SimState, method: str, path: str, status: int, body: object) -> None:
    if not sim.config.validate_responses or body is None or status >= 300:
        return
    type_ = entity_type(path)
    if type_ is None or path.endswith("/reauthorize"):
        return
    for problem in problems(type_, body):
        sim.invalid_responses.append(f"{method} /{path} -> {status}: {problem}")


def problems(type_: str, body: Any) -> list[str]:
    """A single entity, or a page of them (`value` with `@odata.nextLink` / `deltaLink`)."""
    if not isinstance(body, dict) or "value" not in body:
        return schema.check(type_, body)
    out = [f"page.{key}: not part of a collection answer" for key in body
           if key not in _PAGE_KEYS and not key.startswith("@odata.")]  # fmt: skip
    value = body["value"]
    if not isinstance(value, list):
        return [*out, "page.value: not a list"]
    for i, one in enumerate(value):
        out.extend(f"value[{i}]: {p}" for p in schema.check(type_, one))
    return out
