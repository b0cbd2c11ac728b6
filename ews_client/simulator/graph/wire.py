"""Graph v1.0 values the simulator reads and writes: `dateTimeTimeZone`, `itemBody`, the
CRM id as a `singleValueLegacyExtendedProperty` or a `linkedResource`, plain strings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ews_client.models import CRM_ID_PROPERTY, CRM_PROPERTY_SET_ID

from .. import calendar as cal
from ..paths import ext_key

Json = dict[str, Any]
# The CRM id is one named MAPI property; EWS addresses it by these attributes, Graph by the
# id "<type> {<property set>} Name <name>".
CRM_ATTRS = {"PropertySetId": CRM_PROPERTY_SET_ID, "PropertyName": CRM_ID_PROPERTY,
             "PropertyType": "String"}  # fmt: skip
CRM_KEY = ext_key(CRM_ATTRS)
# To Do tasks have no extended properties: a linked resource of this application carries the
# CRM id instead (stored as the same extended property, so EWS sees it too).
LINK_APPLICATION = "CrmSync"
_UTC_NAMES = ("", "UTC", "tzone://Microsoft/Utc")


class BadValue(ValueError):
    """A property value Graph would refuse (answered 400)."""


def graph_datetime(value: datetime) -> str:
    """A dateTimeTimeZone's dateTime: UTC wall time, seven fractional digits, no offset."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def utc_dtz(value: datetime | None) -> Json | None:
    return {"dateTime": graph_datetime(value), "timeZone": "UTC"} if value else None


def wall_time(text: str) -> datetime:
    """An ISO date-time as sent, offset dropped (Graph reads it in the zone beside it)."""
    head, dot, rest = text.strip().removesuffix("Z").partition(".")
    if dot:  # up to seven fractional digits; Python reads six
        digits = "".join(ch for ch in rest if ch.isdigit())
        head = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(head).replace(tzinfo=None)
    except ValueError as exc:
        raise BadValue(f"bad date-time {text!r}") from exc


def zone_id(name: Any) -> str:
    """The Windows id for a dateTimeTimeZone's timeZone (a Windows id or an IANA name)."""
    text = str(name or "")
    if text in _UTC_NAMES:
        return "UTC"
    found = cal.windows_id(text)
    if found is None:
        raise BadValue(f"unknown time zone {text!r}")
    return found


def _zoneinfo(name: Any) -> ZoneInfo:
    text = str(name or "")
    if text in _UTC_NAMES:
        return ZoneInfo("UTC")
    if text in cal.WINDOWS_ZONES:
        text = cal.WINDOWS_ZONES[text]
    zone_id(text)  # refuse a zone the server does not know
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadValue(f"unknown time zone {text!r}") from exc


def parse_dtz(obj: Any) -> datetime | None:
    """The instant of a dateTimeTimeZone (None when absent or without a dateTime)."""
    if not isinstance(obj, dict) or not obj.get("dateTime"):
        return None
    value = wall_time(str(obj["dateTime"]))
    return value.replace(tzinfo=_zoneinfo(obj.get("timeZone"))).astimezone(UTC)


def parse_day(value: Any) -> date:
    """The calendar day of a DateTimeOffset, in the offset it was written in."""
    return wall_time(str(value)).date()


def text(value: Any) -> str | None:
    """A string property: None for null or empty."""
    return str(value) if value not in (None, "") else None


def item_body(content: str | None) -> Json:
    return {"contentType": "text", "content": content or ""}


def body_text(obj: Json, key: str = "body") -> str | None:
    body = obj.get(key)
    if isinstance(body, dict) and body.get("content"):
        return str(body["content"])
    return None


def crm_link(obj: Json) -> str | None:
    """The CRM id of this application's linked resource, if the object has one."""
    for link in obj.get("linkedResources") or ():
        if link.get("applicationName") == LINK_APPLICATION and link.get("externalId"):
            return str(link["externalId"])
    return None


def linked_resource(crm_id: str, link_id: str) -> Json:
    return {"applicationName": LINK_APPLICATION, "externalId": crm_id, "displayName": "CRM",
            "id": link_id}  # fmt: skip


# A single-value extended property's Graph id: "<type> {<property set>} Name <name>",
# "<type> {<property set>} Id <0xhex>", or "<type> <0xtag>" (the MAPI tag itself).
_NAMED = re.compile(r"^(\w+) \{([0-9A-Fa-f-]{36})\} (Name|Id) (\S.*)$")
_TAGGED = re.compile(r"^(\w+) (0x[0-9A-Fa-f]{1,4})$")


def prop_attrs(prop_id: str) -> dict[str, str]:
    """The EWS ExtendedFieldURI attributes of a Graph extended property id."""
    if named := _NAMED.match(prop_id.strip()):
        kind, set_id, how, name = named.groups()
        if how == "Name":
            return {"PropertySetId": set_id, "PropertyName": name, "PropertyType": kind}
        try:
            number = str(int(name, 16))
        except ValueError:
            raise BadValue(f"not an extended property id: {prop_id!r}") from None
        return {"PropertySetId": set_id, "PropertyId": number, "PropertyType": kind}
    if tagged := _TAGGED.match(prop_id.strip()):
        return {"PropertyTag": tagged[2], "PropertyType": tagged[1]}
    raise BadValue(f"not an extended property id: {prop_id!r}")


def prop_id(attrs: Mapping[str, str]) -> str | None:
    """The Graph id of a stored extended property (None: one Graph cannot name, such as a
    property of a distinguished property set written through EWS)."""
    kind = attrs.get("PropertyType", "String")
    if "PropertyTag" in attrs:
        return f"{kind} {attrs['PropertyTag']}"
    set_id = attrs.get("PropertySetId", "").strip("{}")
    if not set_id:
        return None
    if "PropertyName" in attrs:
        return f"{kind} {{{set_id}}} Name {attrs['PropertyName']}"
    return f"{kind} {{{set_id}}} Id {hex(int(attrs.get('PropertyId', '0')))}"
