"""Graph JSON value helpers shared by the entity converters (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ews_client.errors import ProtocolError
from ews_client.ews.timezones import to_iana
from ews_client.models import CRM_ID_PROPERTY, CRM_PROPERTY_SET_ID

Json = dict[str, Any]
# Graph names a MAPI named property "<type> {<guid>} Name <name>".
CRM_PROP_ID = f"String {{{CRM_PROPERTY_SET_ID}}} Name {CRM_ID_PROPERTY}"
# To Do tasks carry no extended properties: the CRM id rides in a linkedResource of this app.
LINK_APPLICATION = "CrmSync"


def fmt_dt(value: datetime) -> str:
    """Graph's dateTime: wall time without an offset (the zone travels beside it)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def fmt_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_dt(text: str) -> datetime:
    """An ISO date-time as Graph writes it (7 fractional digits, 'Z' or no offset = UTC)."""
    body = text.strip().replace("Z", "+00:00")
    head, dot, rest = body.partition(".")
    if dot:  # Python wants at most 6 fractional digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        body = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        value = datetime.fromisoformat(body)
    except ValueError as exc:
        raise ProtocolError(f"bad date-time {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def zone_of(name: str | None) -> str:
    """IANA name for a Graph timeZone value (Windows or IANA); UTC when absent."""
    if not name or name in ("UTC", "tzone://Microsoft/Utc"):
        return "UTC"
    return to_iana(name)


def dtz(value: datetime, zone: str = "UTC") -> Json:
    """A dateTimeTimeZone: the wall time in `zone` (IANA names are accepted by Graph)."""
    return {"dateTime": fmt_dt(value.astimezone(_zoneinfo(zone))), "timeZone": zone}


def parse_dtz(obj: Any) -> datetime | None:
    if not isinstance(obj, dict) or not obj.get("dateTime"):
        return None
    value = parse_dt(str(obj["dateTime"]).removesuffix("Z"))
    zone = zone_of(obj.get("timeZone"))
    return value.replace(tzinfo=_zoneinfo(zone)).astimezone(UTC)


def _zoneinfo(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProtocolError(f"unknown time zone {zone!r}") from exc


def text_body(notes: str | None) -> Json:
    return {"contentType": "text", "content": notes or ""}


def read_body(obj: Json, key: str = "body") -> str | None:
    body = obj.get(key)
    if isinstance(body, dict):
        content = body.get("content")
        return str(content) if content else None
    return None


def opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def extended_props(crm_id: str | None) -> list[Json]:
    # Graph cannot remove an extended property through PATCH: an empty value means "none".
    return [{"id": CRM_PROP_ID, "value": crm_id or ""}]


def read_crm_prop(obj: Json) -> str | None:
    for prop in obj.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).lower() == CRM_PROP_ID.lower():
            return opt_str(prop.get("value"))
    return None


def etag_of(obj: Json) -> str:
    return str(obj.get("@odata.etag") or obj.get("changeKey") or "")
