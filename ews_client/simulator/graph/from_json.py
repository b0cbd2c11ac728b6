"""Graph v1.0 request bodies (`contact`, `event`, `todoTask`) as writes onto the stored EWS XML.

Each Graph property a body carries names the stored properties it sets or removes (`Put`).
A POST writes every property of the body; a PATCH only those it names, reading what a
property needs beside itself (the start of a recurrence, the other half of a reminder) from
the item as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from .. import calendar as cal
from ..paths import ext_uri_element
from ..xmlutil import sub, t
from . import to_json
from .wire import (
    CRM_ATTRS,
    BadValue,
    Json,
    body_text,
    crm_link,
    parse_day,
    parse_dtz,
    prop_attrs,
    text,
    zone_id,
)


@dataclass(frozen=True, slots=True)
class Put:
    """Set (`node`) or remove (None) one stored property, or, with `key`, one entry of the
    dictionary property `tag` (EmailAddresses, PhoneNumbers, PhysicalAddresses)."""

    tag: str
    node: etree._Element | None
    key: str | None = None


# A writer reads (body, current resource) and returns its puts; a field is the Graph
# properties that make a writer run.
Writer = Callable[[Json, Json], list[Put]]
Field = tuple[frozenset[str], Writer]


def _node(tag: str, value: str | None, **attrs: str) -> etree._Element | None:
    if value is None:
        return None
    node = etree.Element(t(tag), attrs)
    node.text = value
    return node


def _plain(tag: str, read: Callable[[Any], str | None], key: str, **attrs: str) -> Field:
    def write(body: Json, current: Json) -> list[Put]:
        return [Put(tag, _node(tag, read(body.get(key)), **attrs))]

    return frozenset({key}), write


def _categories(value: Any) -> etree._Element | None:
    names = [str(name) for name in value or ()]
    if not names:
        return None
    node = etree.Element(t("Categories"))
    for name in names:
        sub(node, t("String"), name)
    return node


def _extended(body: Json, current: Json) -> list[Put]:
    """Every single-value extended property the body lists: set, or removed by an empty value
    (Graph writes only the properties listed and leaves the others as they are)."""
    puts = []
    for prop in body.get("singleValueExtendedProperties") or ():
        node = etree.Element(t("ExtendedProperty"))
        node.append(ext_uri_element(prop_attrs(str(prop.get("id", "")))))
        if value := text(prop.get("value")):
            sub(node, t("Value"), value)
        puts.append(Put("ExtendedProperty", node))
    return puts


def crm_node(value: str | None) -> etree._Element | None:
    """The stored CRM extended property (None: none; Graph cannot store an empty one)."""
    if value is None:
        return None
    node = etree.Element(t("ExtendedProperty"))
    node.append(ext_uri_element(CRM_ATTRS))
    sub(node, t("Value"), value)
    return node


def _dt_text(value: datetime | None) -> str | None:
    return cal.format_datetime(value) if value else None


def _body(obj: Any) -> str | None:
    return body_text({"body": obj})


COMMON: tuple[Field, ...] = (
    (frozenset({"categories"}), lambda b, c: [Put("Categories", _categories(b.get("categories")))]),
)


# -- contact --------------------------------------------------------------------------------
def _entry(tag: str, key: str, value: str | None) -> Put:
    return Put(tag, _node("Entry", value, Key=key), key)


def _first(values: Any) -> str | None:
    return text(values[0]) if isinstance(values, list) and values else None


def _emails(body: Json, current: Json) -> list[Put]:
    listed = [e for e in body.get("emailAddresses") or () if e.get("address")][:3]  # EWS: 3
    out = []
    for i, key in enumerate(to_json.EMAIL_KEYS):
        one = listed[i] if i < len(listed) else None
        # The display name of an address is the Name attribute of its EWS entry.
        name = {"Name": str(one["name"])} if one and one.get("name") else {}
        address = str(one["address"]) if one else None
        out.append(Put("EmailAddresses", _node("Entry", address, Key=key, **name), key))
    return out


def _second(values: Any) -> str | None:
    return text(values[1]) if isinstance(values, list) and len(values) > 1 else None


def _address(body: Json, current: Json) -> list[Put]:
    value = body.get("businessAddress")
    parts = {k: text(value.get(k)) for k in to_json.ADDRESS} if isinstance(value, dict) else {}
    entry = etree.Element(t("Entry"), Key="Business")
    for key in ("street", "city", "state", "countryOrRegion", "postalCode"):  # schema order
        if parts.get(key) is not None:
            sub(entry, t(to_json.ADDRESS[key]), parts[key])
    return [Put("PhysicalAddresses", entry if len(entry) else None, "Business")]


def _birthday(value: Any) -> str | None:
    if not value:
        return None
    # Noon UTC keeps the calendar day in every zone a reader may apply.
    day = parse_day(value)
    return cal.format_datetime(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _phone(key: str, entry: str, read: Callable[[Any], str | None]) -> Field:
    return frozenset({key}), lambda b, c: [_entry("PhoneNumbers", entry, read(b.get(key)))]


CONTACT: tuple[Field, ...] = (
    *(_plain(tag, text, key) for key, tag in to_json.CONTACT_TEXT.items() if tag != "Body"),
    _plain("Body", text, "personalNotes", BodyType="Text"),
    (frozenset({"emailAddresses"}), _emails),
    _phone("businessPhones", "BusinessPhone", _first),
    _phone("businessPhones", "BusinessPhone2", _second),
    _phone("mobilePhone", "MobilePhone", text),
    _phone("homePhones", "HomePhone", _first),
    (frozenset({"businessAddress"}), _address),
    _plain("Birthday", _birthday, "birthday"),
    *COMMON,
    (frozenset({"singleValueExtendedProperties"}), _extended),
)


# -- event ----------------------------------------------------------------------------------
SENSITIVITY = {v: k for k, v in to_json.SENSITIVITY.items()}
PATTERN_KINDS = {v: k for k, v in to_json.PATTERN_TYPES.items()}
WEEK_INDEX = {v: k for k, v in to_json.WEEK_INDEX.items()}


def _sensitivity(value: Any) -> str:
    return SENSITIVITY.get(str(value or "normal").lower(), "Normal")


def _location(value: Any) -> str | None:
    return text(value.get("displayName")) if isinstance(value, dict) else None


def _reminder(body: Json, current: Json) -> list[Put]:
    src = {**current, **body}
    on = bool(src.get("isReminderOn"))
    puts = [Put("ReminderIsSet", _node("ReminderIsSet", "true" if on else "false"))]
    if on:  # turning the reminder off keeps the minutes, as Outlook does
        minutes = str(int(src.get("reminderMinutesBeforeStart") or 0))
        puts.append(Put("ReminderMinutesBeforeStart", _node("ReminderMinutesBeforeStart", minutes)))
    return puts


def event_zone(body: Json, current: Json) -> str:
    """Windows id of the zone the event is entered in: named by the body, else kept."""
    if body.get("originalStartTimeZone"):
        return zone_id(body["originalStartTimeZone"])
    if "start" in body or not current:
        start = body.get("start")
        return zone_id(start.get("timeZone") if isinstance(start, dict) else None)
    return str(current.get("originalStartTimeZone") or "UTC")


def _times(body: Json, current: Json) -> list[Put]:
    # Zones with the times: the series' pattern runs in the zone of its start.
    zone = event_zone(body, current)
    src = {**current, **body}
    puts = [Put(tag, etree.Element(t(tag), Id=zone)) for tag in ("StartTimeZone", "EndTimeZone")]
    for key, tag in (("start", "Start"), ("end", "End")):
        when = parse_dtz(src.get(key))
        if when is not None:  # a time is never removed
            puts.append(Put(tag, _node(tag, cal.format_datetime(when))))
    return puts


def _attendees(body: Json, current: Json) -> list[Put]:
    puts = []
    for kind, tag in to_json.ATTENDEE_LISTS.items():
        node = etree.Element(t(tag))
        for attendee in body.get("attendees") or ():
            email = attendee.get("emailAddress") or {}
            if str(attendee.get("type", "required")) == kind and email.get("address"):
                mailbox = sub(sub(node, t("Attendee")), t("Mailbox"))
                if name := text(email.get("name")):
                    sub(mailbox, t("Name"), name)
                sub(mailbox, t("EmailAddress"), str(email["address"]))
        puts.append(Put(tag, node if len(node) else None))
    return puts


def _recurrence(body: Json, current: Json) -> list[Put]:
    src = {**current, **body}
    start = parse_dtz(src.get("start"))
    value = body.get("recurrence")
    if not isinstance(value, dict) or not isinstance(value.get("pattern"), dict):
        return [Put("Recurrence", None), _recurrence_zone(None)]
    if start is None:
        return []  # a pattern needs a first occurrence
    zone = cal.WINDOWS_ZONES[event_zone(body, current)]
    node = recurrence_node(value, start.astimezone(ZoneInfo(zone)).date())
    return [Put("Recurrence", node), _recurrence_zone(_written_zone(value))]


def _written_zone(value: Json) -> str | None:
    """The range's recurrenceTimeZone as written (a zone the server knows), None if absent."""
    rng = value.get("range")
    name = text(rng.get("recurrenceTimeZone")) if isinstance(rng, dict) else None
    if name is not None:
        zone_id(name)  # an unknown zone is refused, as in a dateTimeTimeZone
    return name


def _recurrence_zone(name: str | None) -> Put:
    # Kept verbatim: Graph gives the range back as the client wrote it (to_json reads it).
    node = etree.Element(t("ExtendedProperty"))
    node.append(ext_uri_element(to_json.RECURRENCE_ZONE))
    if name is not None:
        sub(node, t("Value"), name)
    return Put("ExtendedProperty", node)


EVENT: tuple[Field, ...] = (
    _plain("Subject", text, "subject"),
    (frozenset({"sensitivity"}), lambda b, c: [
        Put("Sensitivity", _node("Sensitivity", _sensitivity(b.get("sensitivity"))))]),
    _plain("Body", _body, "body", BodyType="Text"),
    *COMMON,
    (frozenset({"isReminderOn", "reminderMinutesBeforeStart"}), _reminder),
    (frozenset({"start", "end", "originalStartTimeZone"}), _times),
    (frozenset({"isAllDay"}), lambda b, c: [
        Put("IsAllDayEvent", _node("IsAllDayEvent", "true" if b.get("isAllDay") else "false"))]),
    _plain("Location", _location, "location"),
    (frozenset({"attendees"}), _attendees),
    (frozenset({"recurrence"}), _recurrence),
    (frozenset({"singleValueExtendedProperties"}), _extended),
)  # fmt: skip


# -- patternedRecurrence --------------------------------------------------------------------
RELATIVE = frozenset({"RelativeMonthlyRecurrence", "RelativeYearlyRecurrence"})
YEARLY = frozenset({"AbsoluteYearlyRecurrence", "RelativeYearlyRecurrence"})
ABSOLUTE = frozenset({"AbsoluteMonthlyRecurrence", "AbsoluteYearlyRecurrence"})


def recurrence_node(value: Json, first_day: date) -> etree._Element:
    """`t:Recurrence` for a patternedRecurrence; what the pattern leaves out comes from the
    day of the first occurrence (`first_day`, local)."""
    pattern, rng = value["pattern"], value.get("range") or {}
    kind = PATTERN_KINDS.get(str(pattern.get("type")))
    if kind is None:
        raise BadValue(f"unknown recurrence type {pattern.get('type')!r}")
    node = etree.Element(t("Recurrence"))
    _pattern(sub(node, t(kind)), kind, pattern, first_day)
    _range(node, rng, first_day)
    return node


def _pattern(node: etree._Element, kind: str, pattern: Json, first_day: date) -> None:
    days = [str(d).strip().capitalize() for d in pattern.get("daysOfWeek") or ()]
    if kind not in YEARLY:
        sub(node, t("Interval"), str(int(pattern.get("interval") or 1)))
    if kind == "WeeklyRecurrence":
        sub(node, t("DaysOfWeek"), " ".join(days))
    if kind in RELATIVE:
        sub(node, t("DaysOfWeek"), _one_day(days))
        index = WEEK_INDEX.get(str(pattern.get("index")), "First")
        sub(node, t("DayOfWeekIndex"), index)
    if kind in ABSOLUTE:
        sub(node, t("DayOfMonth"), str(int(pattern.get("dayOfMonth") or first_day.day)))
    if kind in YEARLY:
        month = int(pattern.get("month") or first_day.month)
        sub(node, t("Month"), cal.MONTHS[month - 1])


def _one_day(days: list[str]) -> str:
    # A relative pattern names one day or one of EWS' day sets (the last weekday, say).
    numbers = frozenset(cal.WEEKDAYS.index(d) for d in days if d in cal.WEEKDAYS)
    for name, members in cal.DAY_SETS.items():
        if len(days) > 1 and numbers == members:
            return name
    return days[0] if days else "Monday"


def _range(node: etree._Element, rng: Json, first_day: date) -> None:
    start = _graph_date(rng.get("startDate")) or first_day
    end = _graph_date(rng.get("endDate")) if rng.get("type") == "endDate" else None
    count = rng.get("numberOfOccurrences") if rng.get("type") == "numbered" else None
    if end is not None:
        holder = sub(node, t("EndDateRecurrence"))
        sub(holder, t("StartDate"), start.isoformat())
        sub(holder, t("EndDate"), end.isoformat())
    elif count:
        holder = sub(node, t("NumberedRecurrence"))
        sub(holder, t("StartDate"), start.isoformat())
        sub(holder, t("NumberOfOccurrences"), str(int(count)))
    else:
        sub(sub(node, t("NoEndRecurrence")), t("StartDate"), start.isoformat())


def _graph_date(value: Any) -> date | None:
    # Graph writes "0001-01-01" for a date it does not have.
    if not value or str(value).startswith("0001-"):
        return None
    return date.fromisoformat(str(value)[:10])


# -- todoTask -------------------------------------------------------------------------------
TASK_STATUS = {v: k for k, v in to_json.TASK_STATUS.items()}
IMPORTANCE = {v: k for k, v in to_json.IMPORTANCE.items()}


def status(value: Any) -> str:
    return TASK_STATUS.get(str(value), "NotStarted")


def _importance(value: Any) -> str:
    return IMPORTANCE.get(str(value or "normal").lower(), "Normal")


def _task_reminder(body: Json, current: Json) -> list[Put]:
    src = {**current, **body}
    when = parse_dtz(src.get("reminderDateTime")) if src.get("isReminderOn") else None
    puts = [Put("ReminderIsSet", _node("ReminderIsSet", "true" if when else "false"))]
    if when is not None:
        puts.append(Put("ReminderDueBy", _node("ReminderDueBy", cal.format_datetime(when))))
    return puts


def _task_date(key: str, tag: str) -> Field:
    return _plain(tag, lambda v: _dt_text(parse_dtz(v)), key)


TASK: tuple[Field, ...] = (
    _plain("Subject", text, "title"),
    _plain("Body", _body, "body", BodyType="Text"),
    *COMMON,
    (frozenset({"importance"}), lambda b, c: [
        Put("Importance", _node("Importance", _importance(b.get("importance"))))]),
    (frozenset({"isReminderOn", "reminderDateTime"}), _task_reminder),
    *(_task_date(key, tag) for key, tag in to_json.TASK_DATES.items()),
    (frozenset({"status"}), lambda b, c: [Put("Status", _node("Status", status(b.get("status"))))]),
)  # fmt: skip
FIELDS = {"Contact": CONTACT, "CalendarItem": EVENT, "Task": TASK}


def for_create(kind: str, body: Json) -> list[Put]:
    """Every stored property a POSTed resource of `kind` sets."""
    puts = _run(FIELDS[kind], body, {}, None)
    if kind == "Task":
        # To Do has no percent complete; EWS derives it from the status.
        done = status(body.get("status")) == "Completed"
        puts.append(Put("PercentComplete", _node("PercentComplete", "100" if done else "0")))
        puts.append(Put("ExtendedProperty", crm_node(crm_link(body))))
    return [put for put in puts if put.node is not None]


def for_patch(kind: str, body: Json, current: Json) -> list[Put]:
    """The stored properties a PATCH body changes, `current` being the resource before it."""
    return _run(FIELDS[kind], body, current, frozenset(body))


def _run(fields: Iterable[Field], body: Json, current: Json, named: frozenset[str] | None
         ) -> list[Put]:  # fmt: skip
    puts: list[Put] = []
    for inputs, write in fields:
        if named is None or inputs & named:
            puts.extend(write(body, current))
    return puts
