"""Filter settings: the operator's JSON object (some of KEYS) of a server or a mailbox,
checked key by key, and the filter in effect of a mailbox (its server's setting, each key its
own setting gives overriding). Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta

from .filters import CalendarRange, Filter, FilterError

# The operator's keys of a filter setting (the JSON object stored per server and mailbox).
KEYS = ("categories", "exclude_private", "calendar_range", "block")
_RANGE = re.compile(r"^\s*-(\d+)d\s*:\s*\+?(\d+)d\s*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
MAX_DAYS = 36600  # a hundred years either way
MAX_ENTRIES = 1000  # categories or blocked entries of one setting


def check_setting(raw: Mapping[str, object]) -> dict[str, object]:
    """A filter setting (some of KEYS) checked and normalized; raises FilterError by key.

    A key given as null (or an empty list) overrides an inherited value with "no filter".
    """
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise FilterError(unknown[0], f"unknown filter key; the keys are {', '.join(KEYS)}")
    out: dict[str, object] = {}
    if "categories" in raw:
        out["categories"] = _names("categories", raw["categories"], _category)
    if "exclude_private" in raw:
        value = raw["exclude_private"]
        if not isinstance(value, bool | None):
            raise FilterError("exclude_private", "must be true or false")
        out["exclude_private"] = bool(value)
    if "calendar_range" in raw:
        value = raw["calendar_range"]
        if value is not None and not isinstance(value, str):
            raise FilterError("calendar_range", "must be a range such as -30d:+365d, or null")
        out["calendar_range"] = None if not value else parse_range(value).text()
    if "block" in raw:
        out["block"] = _names("block", raw["block"], _block_entry)
    return out


def parse_range(text: str) -> CalendarRange:
    """'-30d:+365d': from 30 days back to 365 days ahead of each pass."""
    found = _RANGE.match(text)
    if found is None:
        raise FilterError("calendar_range", f"{text!r} is not a range such as -30d:+365d")
    back, ahead = int(found[1]), int(found[2])
    if max(back, ahead) > MAX_DAYS:
        raise FilterError("calendar_range", f"at most {MAX_DAYS} days either way")
    return CalendarRange(timedelta(days=back), timedelta(days=ahead))


def effective(server: Mapping[str, object], mailbox: Mapping[str, object]) -> Filter:
    """The filter of a mailbox: its server's setting, each key the mailbox gives overriding."""
    merged = {**check_setting(server), **check_setting(mailbox)}
    span = merged.get("calendar_range")
    return Filter(
        categories=tuple(_strings(merged.get("categories"))),
        exclude_private=bool(merged.get("exclude_private", False)),
        calendar_range=parse_range(span) if isinstance(span, str) else None,
        block=tuple(_strings(merged.get("block"))),
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _names(key: str, value: object, check: Callable[[str], str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(key, "must be a list of strings (or one comma-separated string)")
    seen: dict[str, str] = {}
    for entry in value:
        name = check(entry)
        seen.setdefault(name.casefold(), name)
    if len(seen) > MAX_ENTRIES:
        raise FilterError(key, f"at most {MAX_ENTRIES} entries")
    return list(seen.values())


def _category(entry: str) -> str:
    name = entry.strip()
    if not 1 <= len(name) <= 255:
        raise FilterError("categories", f"{entry!r}: a category has 1 to 255 characters")
    return name


def _block_entry(entry: str) -> str:
    name = entry.strip().lower()
    local, at, domain = name.rpartition("@")
    if (at and not local) or not _DOMAIN.match(domain):
        raise FilterError("block", f"{entry!r} is neither an e-mail address nor a domain")
    return name
