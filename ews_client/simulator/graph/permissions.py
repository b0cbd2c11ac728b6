"""Which application permission (app role) a Graph request needs, and whether a token has it.

Reads need the `.Read` permission of the resource (its `.ReadWrite` sibling also grants it),
writes need `.ReadWrite`. A subscription needs the read permission of the resource it watches
(ews_client/PROTOCOL_NOTES.md, "Graph permissions").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

_USER = r"^users/[^/]+"
# translateExchangeIds takes delegated permissions only: no app role grants it.
DELEGATED_ONLY = "User.ReadBasic.All (delegated only)"
# (path pattern, read permission, write permission), first match wins.
_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), read, write)
    for pattern, read, write in (
        (_USER + r"/(contacts|contactFolders)\b", "Contacts.Read", "Contacts.ReadWrite"),
        (
            _USER + r"/(events|calendar|calendars|calendarView|calendarGroups)\b",
            "Calendars.Read",
            "Calendars.ReadWrite",
        ),
        (_USER + r"/todo\b", "Tasks.Read.All", "Tasks.ReadWrite.All"),
        (_USER + r"/mailboxSettings\b", "MailboxSettings.Read", "MailboxSettings.ReadWrite"),
        (_USER + r"/extensions\b", "User.Read.All", "User.ReadWrite.All"),
        (_USER + r"/translateExchangeIds$", DELEGATED_ONLY, DELEGATED_ONLY),
        (_USER + r"$", "User.Read.All", "User.ReadWrite.All"),
    )
)
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_SUBSCRIPTION = re.compile(r"^subscriptions/([^/]+)(/.*)?$")


def of_resource(path: str, *, write: bool) -> str | None:
    """The permission a call on `path` (after /v1.0/, no query) needs; None: none known."""
    path = path.strip("/")
    for pattern, read, readwrite in _RULES:
        if pattern.search(path):
            return readwrite if write else read
    return None


def required(
    method: str,
    path: str,
    body: Any,
    subscription_resource: Callable[[str], str | None],
) -> str | None:
    """The permission request `method path` needs; subscriptions are judged by the resource
    they watch (from the body when created, from the stored subscription afterwards)."""
    if path == "subscriptions":
        resource = body.get("resource") if method == "POST" and isinstance(body, dict) else None
        return of_resource(str(resource), write=False) if resource else None
    found = _SUBSCRIPTION.match(path)
    if found is not None:
        resource = subscription_resource(found.group(1))
        return of_resource(resource, write=False) if resource else None
    return of_resource(path, write=method.upper() in _WRITES)


def granted(roles: Collection[str], needed: str) -> bool:
    """Whether the token's `roles` grant `needed`: itself, or the ReadWrite form of a Read."""
    if needed in roles:
        return True
    return ".Read" in needed and needed.replace(".Read", ".ReadWrite", 1) in roles
