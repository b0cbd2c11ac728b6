"""`Prefer: outlook.timezone="<zone>"`: the dateTimeTimeZone values of an answer (an event's
start and end, an instance's, a task's due, start, completed and reminder times) given as the
wall time in the zone the client asked for, with `timeZone` naming that zone as it was
written, and the preference echoed in `Preference-Applied`.

Without the preference, or with a zone the server does not know, every value stays in UTC
and nothing is echoed (the preference was not applied). Several preferences come in one
header, comma-separated, or in several headers that the endpoint joins with commas: the
client sends `IdType="ImmutableId", outlook.timezone="UTC", outlook.body-content-type="text"`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from .. import calendar as cal
from .handlers import GResp
from .wire import BadValue, wall_time, zone_id

_TIMEZONE = re.compile(r'outlook\.timezone\s*=\s*(?:"([^"]*)"|([^\s,;"]+))', re.IGNORECASE)
APPLIED = "Preference-Applied"


def asked_zone(headers: Mapping[str, str]) -> str | None:
    """The zone name of the `outlook.timezone` preference (lower-case header names), as sent."""
    found = _TIMEZONE.search(headers.get("prefer", ""))
    if found is None:
        return None
    name = found.group(1) if found.group(1) is not None else found.group(2)
    return name.strip() or None


def known_zone(name: str) -> ZoneInfo | None:
    """The zone a Windows id or IANA name stands for; None for one the server does not know."""
    try:
        windows = zone_id(name)
    except BadValue:
        return None
    return ZoneInfo(cal.WINDOWS_ZONES.get(windows, "UTC"))


def apply(headers: Mapping[str, str], resp: GResp) -> GResp:
    """The answer with its UTC dateTimeTimeZone values moved to the preferred zone."""
    name = asked_zone(headers)
    if name is None or resp.body is None or resp.status >= 300:
        return resp
    zone = known_zone(name)
    if zone is None:
        return resp
    _convert(resp.body, name, zone)
    applied = f'outlook.timezone="{name}"'
    earlier = resp.headers.get(APPLIED)
    resp.headers[APPLIED] = f"{earlier}, {applied}" if earlier else applied
    return resp


def _convert(node: Any, name: str, zone: ZoneInfo) -> None:
    if isinstance(node, list):
        for one in node:
            _convert(one, name, zone)
    elif isinstance(node, dict):
        if _is_utc_dtz(node):
            when = wall_time(str(node["dateTime"])).replace(tzinfo=UTC).astimezone(zone)
            node["dateTime"] = f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}0"
            node["timeZone"] = name
            return
        for value in node.values():
            _convert(value, name, zone)


def _is_utc_dtz(node: dict[str, Any]) -> bool:
    # The simulator writes every dateTimeTimeZone in UTC, with exactly these two members.
    return set(node) == {"dateTime", "timeZone"} and node["timeZone"] == "UTC"
