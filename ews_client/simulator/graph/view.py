"""Stored items as Graph resources: the item's properties (`to_json.py`) plus what the server
manages (id, etag, change key, times), extended properties and linked resources on `$expand`,
and the instances of a series."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlencode

from lxml import etree

from ews_client.models import EntityKind

from .. import calendar as cal
from ..paths import Shape
from ..render import render_occurrence
from ..store import Mailbox, StoredItem
from ..xmlutil import t
from . import to_json
from .errors import GraphError, bad_request
from .extensions import is_extension
from .ids import etag, graph_id
from .meetings import meeting_json
from .wire import CRM_KEY, Json, item_body, linked_resource, prop_id, utc_dtz

ENTITY_OF = {"Contact": EntityKind.CONTACT, "CalendarItem": EntityKind.APPOINTMENT,
             "Task": EntityKind.TASK}  # fmt: skip
FOLDER_OF = {EntityKind.CONTACT: "contacts", EntityKind.APPOINTMENT: "calendar",
             EntityKind.TASK: "tasks"}  # fmt: skip


def resource(item: StoredItem) -> Json:
    """The item's own properties as Graph JSON (no server-managed ones)."""
    return to_json.with_written_zone(_readable(item.kind, item.props), item.props, item.ext)


def _readable(kind: str, props: etree._Element) -> Json:
    try:
        return to_json.resource(kind, props)
    except ValueError as exc:  # an owner's edit Graph cannot represent
        raise GraphError(500, "ErrorInternalServerError", f"unreadable item: {exc}") from exc


_EXPAND_IDS = re.compile(r"id eq '((?:[^']|'')*)'", re.IGNORECASE)


def expanded_props(query: Mapping[str, str]) -> frozenset[str] | None:
    """The extended property ids `$expand=singleValueExtendedProperties($filter=id eq '..'
    or id eq '..')` asks for, lower-cased; None when it names none (every one)."""
    expand = query.get("$expand", "")
    start = expand.find("singleValueExtendedProperties(")
    if start < 0:
        return None
    end = expand.find(")", start)  # the ids of this expansion only, not of one after it
    ids = _EXPAND_IDS.findall(expand[start : end if end >= 0 else None])
    return frozenset(i.replace("''", "'").lower() for i in ids) or None


def extended(item: StoredItem, props: frozenset[str] | None) -> list[Json]:
    """The item's single-value extended properties Graph can name, as Graph lists them."""
    listed = []
    for attrs, value in item.ext.values():
        if is_extension(attrs):  # an open extension's storage, listed as an extension
            continue
        name = prop_id(attrs)
        if name and isinstance(value, str) and value and (props is None or name.lower() in props):
            listed.append({"id": name, "value": value})
    return listed


def crm_of(item: StoredItem) -> str | None:
    value = item.ext.get(CRM_KEY)
    return value[1] if value and isinstance(value[1], str) and value[1] else None


def item_json(
    item: StoredItem, *, expand: bool = False, props: frozenset[str] | None = None
) -> Json:
    """The Graph resource; extended properties and linked resources only with $expand, the
    extended properties those of `props` (lower-case ids; None: every one)."""
    body = resource(item)
    if item.kind == "CalendarItem":
        body = meeting_json(item, body)
    crm = crm_of(item)
    if expand and item.kind != "Task":
        listed = extended(item, props)
        if listed:
            body["singleValueExtendedProperties"] = listed
    if expand and item.kind == "Task":
        link_id = graph_id(item.id) + "-crm"
        body["linkedResources"] = [linked_resource(crm, link_id)] if crm else []
    body.update(
        {
            "@odata.etag": etag(item),
            "id": graph_id(item.id),
            "createdDateTime": cal.format_datetime(item.created),
            "lastModifiedDateTime": cal.format_datetime(item.modified),
        }
    )
    if item.kind != "Task":  # an outlookItem property: a todoTask has only its etag
        body["changeKey"] = item.change_key
    if item.kind == "Contact":
        body["parentFolderId"] = graph_id(item.folder_id)
    return body


def occurrence_json(box: Mailbox, item: StoredItem, index: int) -> Json:
    node = render_occurrence(box, item, index, Shape("AllProperties"))
    return {
        "@odata.etag": etag(item),
        "id": graph_id(cal.occurrence_id(item.id, index)),
        "type": "exception" if index in item.exceptions else "occurrence",
        "seriesMasterId": graph_id(item.id),
        "originalStart": node.findtext(t("OriginalStart")) or "",
        "start": utc_dtz(to_json.ews_datetime(node.findtext(t("Start")))),
        "end": utc_dtz(to_json.ews_datetime(node.findtext(t("End")))),
        "subject": node.findtext(t("Subject")),
        "location": {"displayName": node.findtext(t("Location")) or ""},
        "body": item_body(node.findtext(t("Body"))),
        "originalStartTimeZone": to_json.stored_zone(node),
    }


def occurrences_in(item: StoredItem, start: datetime, end: datetime) -> list[int]:
    """Indexes of the series' occurrences whose original start lies in [start, end)."""
    out = []
    for position, when in enumerate(cal.occurrence_starts(item), start=1):
        if when >= end:
            break
        if when >= start and position not in item.deleted_occurrences:
            out.append(position)
    return out


def overlaps(item: StoredItem, start: datetime, end: datetime) -> bool:
    s, e = item.props.findtext(t("Start")), item.props.findtext(t("End"))
    if s is None or e is None:
        return False
    return cal.parse_datetime(s) < end and cal.parse_datetime(e) > start


# -- paging ----------------------------------------------------------------------------------------
DEFAULT_PAGE = 10  # Graph's page for an Outlook collection without $top
MAX_PAGE = 1000
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.I)


def preferred_page(headers: Mapping[str, str]) -> int | None:
    """`Prefer: odata.maxpagesize=N` (lower-case header names), capped as Graph caps it."""
    found = _MAXPAGESIZE.search(headers.get("prefer", ""))
    return min(int(found.group(1)), MAX_PAGE) if found and int(found.group(1)) > 0 else None


def paged(
    values: list[Json], query: Mapping[str, str], headers: Mapping[str, str], link: str
) -> tuple[Json, dict[str, str]]:
    """One page of a plain collection: `$top` (or the maxpagesize preference) a page, `$skip`
    to go on, an absolute `@odata.nextLink` that repeats the rest of the query."""
    preferred = preferred_page(headers)
    size = preferred or _number(query.get("$top"), DEFAULT_PAGE)
    size = min(max(size, 1), MAX_PAGE)
    skip = _number(query.get("$skip"), 0)
    body: Json = {"value": values[skip : skip + size]}
    if skip + size < len(values):
        rest = {k: v for k, v in query.items() if k not in ("$top", "$skip")}
        rest |= {"$top": str(size), "$skip": str(skip + size)}
        body["@odata.nextLink"] = f"{link}?{urlencode(rest, quote_via=quote, safe='$,()')}"
    applied = {"Preference-Applied": f"odata.maxpagesize={size}"} if preferred else {}
    return body, applied


def _number(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"{raw!r} is not a number", "ErrorInvalidUrlQuery")
    return int(raw)
