"""Canonical values: normalization to JSON-serialisable values and comparison keys.

A canonical value is what the service stores as "last synced" content (PostgreSQL jsonb) and
writes to the other side: strings are trimmed, datetimes are ISO-8601 UTC strings with second
precision (Exchange keeps seconds only, so finer precision would never round-trip), lists are
lists (jsonb gives lists back, never tuples, and values must compare exactly after a round-trip).

A comparison key is what decides whether two values are "the same": an e-mail address is
compared without case, a phone number on its digits only, so that reformatting on one side
("+1 (555) 010-0000" vs "+15550100000") is not a change that needs a write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TypeAlias, TypeVar

JsonValue: TypeAlias = "str | int | bool | list[JsonValue] | dict[str, JsonValue] | None"
Fields: TypeAlias = Mapping[str, JsonValue]
E = TypeVar("E", bound=StrEnum)

_NON_DIGITS = re.compile(r"\D+")
_TRAILING = re.compile(r"[ \t]+\n")


@dataclass(frozen=True, slots=True)
class Codec:
    """How one kind of value is normalized and compared."""

    name: str
    normalize: Callable[[object], JsonValue]
    key: Callable[[JsonValue], JsonValue]


def _same(value: JsonValue) -> JsonValue:
    return value


def norm_line(raw: object) -> JsonValue:
    """One-line text: whitespace runs collapse to one space; empty means absent."""
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    return text or None


def norm_text(raw: object) -> JsonValue:
    """Multi-line text (notes): keep line breaks, drop CR and trailing blanks of each line."""
    if raw is None:
        return None
    text = str(raw).replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING.sub("\n", text).strip()
    return text or None


def key_casefold(value: JsonValue) -> JsonValue:
    return value.casefold() if isinstance(value, str) else value


def key_phone(value: JsonValue) -> JsonValue:
    """Digits only, with a leading + kept: formatting is not content."""
    if not isinstance(value, str):
        return value
    digits = _NON_DIGITS.sub("", value)
    if not digits:
        return value.casefold()
    return ("+" if value.startswith("+") else "") + digits


def to_utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (both sides store aware datetimes; this is a fallback)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def norm_datetime(raw: object) -> JsonValue:
    if raw is None:
        return None
    if not isinstance(raw, datetime):
        raise TypeError(f"expected a datetime, got {type(raw).__name__}")
    return iso_utc(raw)


def parse_datetime(value: JsonValue) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def norm_date(raw: object) -> JsonValue:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        raw = raw.date()
    if not isinstance(raw, date):
        raise TypeError(f"expected a date, got {type(raw).__name__}")
    return raw.isoformat()


def parse_date(value: JsonValue) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def norm_bool(raw: object) -> JsonValue:
    return bool(raw)


def norm_int(raw: object) -> JsonValue:
    return None if raw is None else int(str(raw))


def norm_categories(raw: object) -> JsonValue:
    """Categories are a set: sorted, de-duplicated without case, blanks dropped."""
    seen: dict[str, str] = {}
    for item in _iterable(raw):
        text = norm_line(item)
        if isinstance(text, str):
            seen.setdefault(text.casefold(), text)
    return [seen[k] for k in sorted(seen)]


def key_casefold_list(value: JsonValue) -> JsonValue:
    if not isinstance(value, list):
        return value
    return [key_casefold(item) for item in value]


def norm_emails(raw: object) -> JsonValue:
    """An ordered list of addresses (order matters: EmailAddress1 is the primary one)."""
    out: list[JsonValue] = []
    seen: set[str] = set()
    for item in _iterable(raw):
        text = norm_line(item)
        if isinstance(text, str) and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return out


def _iterable(raw: object) -> Iterable[object]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        return (raw,)
    return raw


def enum_codec(
    name: str, enum: type[StrEnum], default: StrEnum, aliases: Mapping[str, str] | None = None
) -> Codec:
    """A pick list (value map): canonical values are the enum's values.

    `aliases` maps other spellings a CRM may hold (case-insensitive) to canonical values; an
    unknown value maps to `default` rather than failing the item.
    """
    table = {member.value: member.value for member in enum}
    table.update({key.lower(): value for key, value in (aliases or {}).items()})

    def normalize(raw: object) -> JsonValue:
        text = raw.value if isinstance(raw, StrEnum) else " ".join(str(raw or "").lower().split())
        return table.get(text, table.get(text.replace(" ", "_"), default.value))

    return Codec(name, normalize, _same)


def decode_enum(enum: type[E], value: JsonValue, default: E) -> E:
    try:
        return enum(str(value))
    except ValueError:
        return default


LINE = Codec("line", norm_line, _same)
NAME = Codec("name", norm_line, _same)
TEXT = Codec("text", norm_text, _same)
EMAIL = Codec("email", norm_line, key_casefold)
EMAILS = Codec("emails", norm_emails, key_casefold_list)
PHONE = Codec("phone", norm_line, key_phone)
DATETIME = Codec("datetime", norm_datetime, _same)
DATE = Codec("date", norm_date, _same)
BOOL = Codec("bool", norm_bool, _same)
INT = Codec("int", norm_int, _same)
CATEGORIES = Codec("categories", norm_categories, key_casefold_list)
TIME_ZONE = Codec("time_zone", lambda raw: norm_line(raw) or "UTC", _same)
