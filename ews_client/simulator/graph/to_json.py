"""Stored item properties (the EWS XML an item keeps) as Graph v1.0 JSON: `contact`, `event`,
`todoTask`, written from the resource definitions (what each Graph property holds), with no
server-managed properties; `view.py` adds those."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from lxml import etree

from .. import calendar as cal
from ..paths import ext_key
from ..recurrence import KINDS
from ..xmlutil import local, t
from .wire import BadValue, Json, item_body, utc_dtz, zone_id

# EWS values -> Graph enum members (sensitivity, importance, taskStatus, patterns, weekIndex).
SENSITIVITY = {"Normal": "normal", "Personal": "personal", "Private": "private",
               "Confidential": "confidential"}  # fmt: skip
IMPORTANCE = {"Low": "low", "Normal": "normal", "High": "high"}
TASK_STATUS = {"NotStarted": "notStarted", "InProgress": "inProgress", "Completed": "completed",
               "WaitingOnOthers": "waitingOnOthers", "Deferred": "deferred"}  # fmt: skip
PATTERN_TYPES = dict(zip(KINDS, ("daily", "weekly", "absoluteMonthly", "relativeMonthly",
                                 "absoluteYearly", "relativeYearly"), strict=True))  # fmt: skip
WEEK_INDEX = {"First": "first", "Second": "second", "Third": "third", "Fourth": "fourth",
              "Last": "last"}  # fmt: skip
# contact string property -> the element that holds it
CONTACT_TEXT = {"givenName": "GivenName", "surname": "Surname", "displayName": "DisplayName",
                "companyName": "CompanyName", "jobTitle": "JobTitle",
                "personalNotes": "Body"}  # fmt: skip
EMAIL_KEYS = ("EmailAddress1", "EmailAddress2", "EmailAddress3")
# physicalAddress property -> PhysicalAddressDictionaryEntryType element
ADDRESS = {"street": "Street", "city": "City", "state": "State", "postalCode": "PostalCode",
           "countryOrRegion": "CountryOrRegion"}  # fmt: skip


class Unreadable(ValueError):
    """A stored value Graph has no representation for (an owner's edit, say)."""


def ews_datetime(text: str | None) -> datetime | None:
    """An xs:dateTime as stored (no offset: UTC); None when absent or empty."""
    if not text:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def ews_bool(text: str | None) -> bool:
    return text is not None and text.strip() in ("true", "1")


def _dt(props: etree._Element, tag: str) -> datetime | None:
    return ews_datetime(props.findtext(t(tag)))


def _categories(props: etree._Element) -> list[str]:
    node = props.find(t("Categories"))
    return [] if node is None else [s.text or "" for s in node.iterchildren(t("String"))]


def _entries(props: etree._Element, tag: str) -> dict[str, etree._Element]:
    node = props.find(t(tag))
    return {} if node is None else {e.get("Key", ""): e for e in node.iterchildren(t("Entry"))}


def _has(entries: dict[str, etree._Element], key: str) -> bool:
    return key in entries and bool(entries[key].text)


def _present(values: Json) -> Json:
    return {k: v for k, v in values.items() if v is not None}


# -- contact --------------------------------------------------------------------------------
def contact(props: etree._Element) -> Json:
    emails = _entries(props, "EmailAddresses")
    phones = {k: e.text for k, e in _entries(props, "PhoneNumbers").items()}
    out: Json = {key: props.findtext(t(tag)) for key, tag in CONTACT_TEXT.items()}
    out |= {
        "mobilePhone": phones.get("MobilePhone"),
        "emailAddresses": [_email(emails[k]) for k in EMAIL_KEYS if _has(emails, k)],
        "businessPhones": [p for k in ("BusinessPhone", "BusinessPhone2") if (p := phones.get(k))],
        "homePhones": [p] if (p := phones.get("HomePhone")) else [],
        "businessAddress": _address(props),
        "birthday": _birthday(props),
        "categories": _categories(props),
    }
    return _present(out)


def _email(entry: etree._Element) -> Json:
    name = entry.get("Name")
    return {"name": name, "address": entry.text} if name else {"address": entry.text}


def _address(props: etree._Element) -> Json:
    entry = _entries(props, "PhysicalAddresses").get("Business")
    parts = {} if entry is None else {k: entry.findtext(t(tag)) for k, tag in ADDRESS.items()}
    if all(v is None for v in parts.values()):
        return {}  # Graph's empty physicalAddress
    return {k: v or "" for k, v in parts.items()}


def _birthday(props: etree._Element) -> str | None:
    # Graph's birthday is a DateTimeOffset at midnight UTC of the day.
    when = _dt(props, "Birthday")
    return f"{when.date().isoformat()}T00:00:00Z" if when else None


# -- event ----------------------------------------------------------------------------------
def event(props: etree._Element) -> Json:
    minutes = _reminder_minutes(props)
    recurrence = _recurrence(props)
    out = _present(
        {
            "subject": props.findtext(t("Subject")),
            "isAllDay": ews_bool(props.findtext(t("IsAllDayEvent"))),
            "sensitivity": SENSITIVITY.get(props.findtext(t("Sensitivity")) or "", "normal"),
            "categories": _categories(props),
            "body": item_body(props.findtext(t("Body"))),
            "location": {"displayName": props.findtext(t("Location")) or ""},
            "organizer": _organizer(props),
            "attendees": _attendees(props, "required") + _attendees(props, "optional"),
            "isReminderOn": minutes is not None,
            "reminderMinutesBeforeStart": minutes or 0,
            "recurrence": recurrence,
        }
    )
    # Prefer: outlook.timezone="UTC": times in UTC; the zone it was entered in stays visible.
    out["start"] = utc_dtz(_dt(props, "Start"))
    out["end"] = utc_dtz(_dt(props, "End"))
    out["originalStartTimeZone"] = stored_zone(props)
    out["type"] = "seriesMaster" if recurrence else "singleInstance"
    return out


def stored_zone(props: etree._Element) -> str:
    """The Windows id of the zone the event was entered in ("UTC" when none is stored)."""
    node = props.find(t("StartTimeZone"))
    zone = node.get("Id") if node is not None else props.findtext(t("StartTimeZoneId"))
    return zone or "UTC"


def _reminder_minutes(props: etree._Element) -> int | None:
    if not ews_bool(props.findtext(t("ReminderIsSet"))):
        return None
    text = (props.findtext(t("ReminderMinutesBeforeStart")) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _organizer(props: etree._Element) -> Json | None:
    node = props.find(t("Organizer"))
    for mailbox in () if node is None else node.iterchildren(t("Mailbox")):
        address = mailbox.findtext(t("EmailAddress"))
        if address is not None:
            return {"emailAddress": {"address": address}} if address else None
    return None


ATTENDEE_LISTS = {"required": "RequiredAttendees", "optional": "OptionalAttendees"}


def _attendees(props: etree._Element, kind: str) -> list[Json]:
    node = props.find(t(ATTENDEE_LISTS[kind]))
    out = []
    for attendee in () if node is None else node.iterchildren(t("Attendee")):
        mailbox = attendee.find(t("Mailbox"))
        address = None if mailbox is None else mailbox.findtext(t("EmailAddress"))
        if mailbox is None or not address:
            continue
        email: Json = {"address": address}
        if name := mailbox.findtext(t("Name")):
            email["name"] = name
        out.append({"type": kind, "emailAddress": email})
    return out


def _recurrence(props: etree._Element) -> Json | None:
    node = props.find(t("Recurrence"))
    if node is None or len(node) < 2:
        return None
    pattern, rng = node[0], node[1]
    return {"pattern": _pattern(pattern), "range": _range(rng, stored_zone(props))}


# The recurrenceTimeZone a client wrote, as it wrote it (an IANA name stays one): Exchange's
# PidLidTimeZoneDescription, a named property of the Appointment set (id 0x8234) that Graph
# cannot name, so it is never listed among an event's extended properties.
RECURRENCE_ZONE = {"DistinguishedPropertySetId": "Appointment", "PropertyId": str(0x8234),
                   "PropertyType": "String"}  # fmt: skip
RECURRENCE_ZONE_KEY = ext_key(RECURRENCE_ZONE)
Ext = dict[str, tuple[dict[str, str], str | tuple[str, ...]]]


def with_written_zone(resource: Json, props: etree._Element, ext: Ext) -> Json:
    """`resource` with its recurrence's recurrenceTimeZone as the client wrote it, while that
    still names the zone the series runs in (an EWS edit may have moved it since)."""
    rng = (resource.get("recurrence") or {}).get("range")
    written = ext.get(RECURRENCE_ZONE_KEY)
    if not isinstance(rng, dict) or written is None or not isinstance(written[1], str):
        return resource
    try:
        windows = zone_id(written[1])
    except BadValue:
        return resource
    if windows == stored_zone(props):
        rng["recurrenceTimeZone"] = written[1]
    return resource


def _pattern(node: etree._Element) -> Json:
    kind = local(node.tag)
    if kind not in PATTERN_TYPES:
        raise Unreadable(f"unsupported recurrence pattern {kind}")
    out: Json = {"type": PATTERN_TYPES[kind], "interval": _int(node, "Interval") or 1}
    if days := _days((node.findtext(t("DaysOfWeek")) or "").split()):
        out["daysOfWeek"] = days
    out |= _present(
        {
            "dayOfMonth": _int(node, "DayOfMonth"),
            "month": _month(node.findtext(t("Month"))),
            "index": WEEK_INDEX.get(node.findtext(t("DayOfWeekIndex")) or ""),
        }
    )
    return out


def _days(names: list[str]) -> list[str]:
    # Graph's dayOfWeek has no "Weekday"-like sets: a set is listed day by day.
    out: list[str] = []
    for name in names:
        members = cal.DAY_SETS.get(name)
        listed = [cal.WEEKDAYS[d] for d in sorted(members)] if members else [name]
        out.extend(day.lower() for day in listed)
    return out


def _month(name: str | None) -> int | None:
    return cal.MONTHS.index(name) + 1 if name in cal.MONTHS else None


def _range(node: etree._Element, zone: str) -> Json:
    start, end = node.findtext(t("StartDate")), node.findtext(t("EndDate"))
    out: Json = {"type": "noEnd", "startDate": _day(start), "recurrenceTimeZone": zone}
    count = _int(node, "NumberOfOccurrences")
    if end:
        out.update(type="endDate", endDate=_day(end))
    elif count is not None:
        out.update(type="numbered", numberOfOccurrences=count)
    return out


def _day(text: str | None) -> str | None:
    return date.fromisoformat(text.strip()[:10]).isoformat() if text else None


def _int(node: etree._Element, tag: str) -> int | None:
    text = node.findtext(t(tag))
    return None if text is None else int(text)


# -- todoTask -------------------------------------------------------------------------------
TASK_DATES = {"startDateTime": "StartDate", "dueDateTime": "DueDate",
              "completedDateTime": "CompleteDate"}  # fmt: skip


def task(props: etree._Element) -> Json:
    reminder = _dt(props, "ReminderDueBy") if ews_bool(props.findtext(t("ReminderIsSet"))) else None
    out: Json = {
        "title": props.findtext(t("Subject")) or "",
        "body": item_body(props.findtext(t("Body"))),
        "status": _enum(TASK_STATUS, props.findtext(t("Status")), "notStarted"),
        "importance": _enum(IMPORTANCE, props.findtext(t("Importance")), "normal"),
        "isReminderOn": reminder is not None,
        "reminderDateTime": utc_dtz(reminder),
        "categories": _categories(props),
    }
    out |= {key: utc_dtz(_dt(props, tag)) for key, tag in TASK_DATES.items()}
    return _present(out)


def _enum(members: dict[str, str], value: str | None, default: str) -> str:
    if value is None:
        return default
    if value not in members:
        raise Unreadable(f"unexpected value {value!r}")
    return members[value]


RESOURCES: dict[str, Callable[[etree._Element], Json]] = {
    "Contact": contact,
    "CalendarItem": event,
    "Task": task,
}


def resource(kind: str, props: etree._Element) -> Json:
    """The Graph resource of a stored item of `kind` (Contact | CalendarItem | Task)."""
    return RESOURCES[kind](props)
