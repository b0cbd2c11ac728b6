"""Calendar series in the simulator: stored recurrence XML, time zones, occurrences.

Exchange stores a series as a master (`CalendarItemType` RecurringMaster) with a pattern in
local time of its `StartTimeZone` (a Windows zone id); occurrences are addressed by
`t:OccurrenceItemId RecurringMasterId InstanceIndex` (1-based) or by their own item ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from lxml import etree

from . import recurrence as rec
from .errors import SimulatorError
from .recurrence import Pattern
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
# Other IANA names of those zones (CLDR windowsZones, further territories), which Graph
# accepts in a dateTimeTimeZone beside the Windows ids.
IANA_ALIASES = {
    "Etc/UTC": "UTC",
    "Etc/GMT": "UTC",
    "Europe/Dublin": "GMT Standard Time",
    "Europe/Lisbon": "GMT Standard Time",
    "Atlantic/Canary": "GMT Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Luxembourg": "W. Europe Standard Time",
    "Europe/Oslo": "W. Europe Standard Time",
    "Europe/Rome": "W. Europe Standard Time",
    "Europe/Stockholm": "W. Europe Standard Time",
    "Europe/Vienna": "W. Europe Standard Time",
    "Europe/Zurich": "W. Europe Standard Time",
    "Europe/Belgrade": "Central Europe Standard Time",
    "Europe/Bratislava": "Central Europe Standard Time",
    "Europe/Ljubljana": "Central Europe Standard Time",
    "Europe/Prague": "Central Europe Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/Copenhagen": "Romance Standard Time",
    "Europe/Madrid": "Romance Standard Time",
    "Europe/Sarajevo": "Central European Standard Time",
    "Europe/Zagreb": "Central European Standard Time",
    "Europe/Kyiv": "FLE Standard Time",
    "Europe/Helsinki": "FLE Standard Time",
    "Europe/Riga": "FLE Standard Time",
    "Europe/Sofia": "FLE Standard Time",
    "Europe/Tallinn": "FLE Standard Time",
    "Europe/Vilnius": "FLE Standard Time",
    "Europe/Athens": "GTB Standard Time",
    "Asia/Nicosia": "GTB Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Asia/Hong_Kong": "China Standard Time",
    "Asia/Macau": "China Standard Time",
    "Australia/Melbourne": "AUS Eastern Standard Time",
    "America/Detroit": "Eastern Standard Time",
    "America/Toronto": "Eastern Standard Time",
    "America/Winnipeg": "Central Standard Time",
    "America/Edmonton": "Mountain Standard Time",
    "America/Vancouver": "Pacific Standard Time",
    "America/Argentina/Buenos_Aires": "Argentina Standard Time",
}
IANA_ZONES = {iana: windows for windows, iana in WINDOWS_ZONES.items()} | IANA_ALIASES
# EWS DayOfWeekType: the seven days (Monday first, as Python numbers them) and three sets.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_SETS = {
    "Day": frozenset(range(7)),
    "Weekday": frozenset(range(5)),
    "WeekendDay": frozenset({5, 6}),
}
WEEK_INDEXES = {"First": 0, "Second": 1, "Third": 2, "Fourth": 3, "Last": -1}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
OCCURRENCE_PREFIX = "AAMkOcc"
EXPANSION_LIMIT = 2000


class CalendarError(SimulatorError):
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


def windows_id(name: str) -> str | None:
    """The Windows id of a zone named by its Windows id or by an IANA name we know."""
    return name if name in WINDOWS_ZONES else IANA_ZONES.get(name)


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


def parse_recurrence(element: etree._Element) -> Pattern:
    """The pattern and range of a stored `t:Recurrence` (pattern element, then range)."""
    pattern, rng = element[0], element[1]
    kind = local(pattern.tag)
    if kind not in rec.KINDS:
        raise CalendarError("ErrorUnsupportedRecurrence", kind)
    try:
        return Pattern(
            kind=kind,
            start=_date(rng.findtext(t("StartDate")) or ""),
            interval=int(pattern.findtext(t("Interval")) or 1),
            days=_days((pattern.findtext(t("DaysOfWeek")) or "").split()),
            day_of_month=_int(pattern.findtext(t("DayOfMonth"))),
            month=MONTHS.index(month) + 1 if (month := pattern.findtext(t("Month"))) else None,
            week=WEEK_INDEXES.get(pattern.findtext(t("DayOfWeekIndex")) or ""),
            end=_date(end) if (end := rng.findtext(t("EndDate"))) else None,
            count=_int(rng.findtext(t("NumberOfOccurrences"))),
        )
    except ValueError as exc:
        raise CalendarError("ErrorInvalidRecurrence", f"bad recurrence: {exc}") from exc


def _date(text: str) -> date:
    # xs:date may carry a zone suffix ("2026-01-05Z", "2026-01-05-08:00").
    return date.fromisoformat(text[:10])


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _days(names: list[str]) -> frozenset[int]:
    days: set[int] = set()
    for name in names:
        days |= DAY_SETS[name] if name in DAY_SETS else {WEEKDAYS.index(name)}
    return frozenset(days)


def series(item: StoredItem) -> tuple[datetime, timedelta, str, Pattern] | None:
    """(first start, duration, IANA zone, pattern) of a recurring master, else None."""
    found = item.props.find(t("Recurrence"))
    start_text, end_text = item.props.findtext(t("Start")), item.props.findtext(t("End"))
    if found is None or start_text is None or end_text is None:
        return None
    start = parse_datetime(start_text)
    return start, parse_datetime(end_text) - start, iana_zone(item.props), parse_recurrence(found)


def occurrence_starts(item: StoredItem, limit: int = EXPANSION_LIMIT) -> list[datetime]:
    info = series(item)
    if info is None:
        return []
    start, _, zone, pattern = info
    return rec.expand(start, zone, pattern, limit)


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
