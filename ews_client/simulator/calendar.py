"""Calendar series in the simulator: recurrence XML <-> model, time zones, occurrences.

Exchange stores a series as a master (`CalendarItemType` RecurringMaster) with a pattern in
local time of its `StartTimeZone` (a Windows zone id); occurrences are addressed by
`t:OccurrenceItemId RecurringMasterId InstanceIndex` (1-based) or by their own item ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from lxml import etree

from ews_client.models import Recurrence, RecurrenceKind, WeekIndex
from ews_client.recurrence import expand

from .store import StoredItem, decode_id, encode_id
from .xmlutil import local, t

# Windows zone id -> IANA (CLDR windowsZones, territory "001"), the zones clients commonly send.
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
}
_PATTERNS: dict[str, RecurrenceKind] = {
    "DailyRecurrence": "daily",
    "WeeklyRecurrence": "weekly",
    "AbsoluteMonthlyRecurrence": "absolute_monthly",
    "RelativeMonthlyRecurrence": "relative_monthly",
    "AbsoluteYearlyRecurrence": "absolute_yearly",
    "RelativeYearlyRecurrence": "relative_yearly",
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
OCCURRENCE_PREFIX = "AAMkOcc"
EXPANSION_LIMIT = 2000


class CalendarError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise CalendarError("ErrorInvalidValueForProperty", f"date-time without zone: {text}")
    return value


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iana_zone(props: etree._Element) -> str:
    """The IANA zone of a calendar item from StartTimeZone/@Id or StartTimeZoneId."""
    zone = props.find(t("StartTimeZone"))
    zone_id = zone.get("Id") if zone is not None else None
    if zone_id is None:
        zone_id = props.findtext(t("StartTimeZoneId"))
    if zone_id is None:
        return "UTC"
    if zone_id not in WINDOWS_ZONES:
        raise CalendarError("ErrorTimeZone", f"unknown time zone id {zone_id!r}")
    return WINDOWS_ZONES[zone_id]


def parse_recurrence(element: etree._Element) -> Recurrence:
    pattern, rng = element[0], element[1]
    kind = _PATTERNS.get(local(pattern.tag))
    if kind is None:
        raise CalendarError("ErrorUnsupportedRecurrence", local(pattern.tag))
    days = tuple(d.lower() for d in (pattern.findtext(t("DaysOfWeek")) or "").split())
    month = pattern.findtext(t("Month"))
    index = pattern.findtext(t("DayOfWeekIndex"))
    number = rng.findtext(t("NumberOfOccurrences"))
    end = rng.findtext(t("EndDate"))
    return Recurrence(
        kind=kind,
        interval=int(pattern.findtext(t("Interval")) or 1),
        days_of_week=days,
        day_of_month=_int_or_none(pattern.findtext(t("DayOfMonth"))),
        month=_MONTHS.index(month) + 1 if month else None,
        week_index=_week_index(index),
        start_date=date.fromisoformat(_date_part(rng.findtext(t("StartDate")) or "")),
        end_date=date.fromisoformat(_date_part(end)) if end else None,
        occurrences=int(number) if number else None,
    )


def _date_part(text: str) -> str:
    # xs:date may carry a zone suffix ("2026-01-05Z", "2026-01-05-08:00").
    return text[:10]


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text else None


def _week_index(text: str | None) -> WeekIndex | None:
    mapping: dict[str, WeekIndex] = {
        "First": "first",
        "Second": "second",
        "Third": "third",
        "Fourth": "fourth",
        "Last": "last",
    }
    return mapping.get(text or "")


def series(item: StoredItem) -> tuple[datetime, timedelta, str, Recurrence] | None:
    """(first start, duration, IANA zone, pattern) of a recurring master, else None."""
    rec = item.props.find(t("Recurrence"))
    start_text, end_text = item.props.findtext(t("Start")), item.props.findtext(t("End"))
    if rec is None or start_text is None or end_text is None:
        return None
    start = parse_datetime(start_text)
    return start, parse_datetime(end_text) - start, iana_zone(item.props), parse_recurrence(rec)


def occurrence_starts(item: StoredItem, limit: int = EXPANSION_LIMIT) -> list[datetime]:
    info = series(item)
    if info is None:
        return []
    start, _, zone, rec = info
    return expand(start, zone, rec, limit=limit)


def validate_series(item: StoredItem) -> None:
    """Exchange refuses a pattern without any occurrence (`ErrorRecurrenceHasNoOccurrence`)."""
    if item.props.find(t("Recurrence")) is not None and not occurrence_starts(item, limit=1):
        raise CalendarError("ErrorRecurrenceHasNoOccurrence", "the pattern has no occurrence")


def occurrence_id(master_id: str, index: int) -> str:
    return encode_id(OCCURRENCE_PREFIX, master_id, index)


def parse_occurrence_id(value: str) -> tuple[str, int] | None:
    parts = decode_id(OCCURRENCE_PREFIX, value)
    if parts is None or len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def occurrence_window(item: StoredItem, index: int) -> tuple[datetime, datetime, datetime]:
    """(original start, start, end) of occurrence `index`, exceptions applied."""
    info = series(item)
    starts = occurrence_starts(item, limit=index)
    if info is None or index < 1 or index > len(starts):
        raise CalendarError(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "no such occurrence"
        )
    if index in item.deleted_occurrences:
        raise CalendarError("ErrorCalendarOccurrenceIsDeletedFromRecurrence", "deleted")
    original = starts[index - 1]
    start, end = original, original + info[1]
    override = item.exceptions.get(index)
    if override is not None:
        start = parse_datetime(override.findtext(t("Start")) or format_datetime(start))
        end = parse_datetime(override.findtext(t("End")) or format_datetime(end))
    return original, start, end
