"""A calendar read as Graph serves it, beyond the window of `calendarView/delta`:

- `GET /users/{id}/calendar/events`: every single event and series master, whatever its
  date, each series once (never its occurrences), paged by `@odata.nextLink`;
- `GET /users/{id}/events/{id}/instances?startDateTime&endDateTime`: the occurrences and
  exceptions of a series whose original start lies in the range (so a series that never ends
  is bounded by the range), cancelled occurrences left out, paged likewise;
- in an incremental `calendarView/delta` round, an event that changed and no longer falls in
  the window is reported `@removed` (reason "changed": it left the result, it still exists).

Page size: `Prefer: odata.maxpagesize=N` (answered with `Preference-Applied`) or `$top`,
else Graph's default of 10 for Outlook collections; the simulator caps a page at 1,000.
The next link carries `$top` and `$skip` with the other query options of the request, so an
event deleted between two page requests moves the others up by one place, as Graph's do.
`$orderby=createdDateTime` sorts the listing (stably).
`$select` keeps the named properties (plus `id` and `@odata.etag`); `$expand` adds the
extended properties as a GET of the item does.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from ews_client.models import EntityKind

from .. import calendar as cal
from ..store import Folder, Mailbox
from . import delta, handlers
from .errors import bad_request
from .handlers import Env, GReq, GResp, _item, _range, event_calendar
from .ids import graph_id
from .view import expanded_props, item_json, occurrence_json, occurrences_in, overlaps

Json = dict[str, Any]
DEFAULT_PAGE = 10
MAX_PAGE = 1000
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.I)
_ALWAYS = frozenset({"id", "@odata.etag"})


def _page_size(req: GReq) -> tuple[int, bool]:
    """(page size, whether it came from the maxpagesize preference)."""
    found = _MAXPAGESIZE.search(req.headers.get("prefer", ""))
    raw = found.group(1) if found else req.query.get("$top")
    if raw is None:
        return DEFAULT_PAGE, False
    try:
        size = int(raw)
    except ValueError as exc:
        raise bad_request("$top must be a number", "ErrorInvalidUrlQuery") from exc
    if size < 1:
        raise bad_request("the page size must be positive", "ErrorInvalidUrlQuery")
    return min(size, MAX_PAGE), found is not None


def _skip(req: GReq) -> int:
    try:
        return max(0, int(req.query.get("$skip", "0")))
    except ValueError as exc:
        raise bad_request("$skip must be a number", "ErrorInvalidUrlQuery") from exc


def _select(obj: Json, req: GReq) -> Json:
    wanted = req.query.get("$select")
    if not wanted:
        return obj
    keep = {name.strip() for name in wanted.split(",")} | _ALWAYS
    keep.add("singleValueExtendedProperties")  # asked for by $expand, not by $select
    return {k: v for k, v in obj.items() if k in keep}


def _paged(req: GReq, values: list[Json]) -> GResp:
    size, preferred = _page_size(req)
    skip = _skip(req)
    body: Json = {"value": values[skip : skip + size]}
    if skip + size < len(values):
        query = {k: v for k, v in req.query.items() if k not in ("$top", "$skip")}
        query.update({"$top": str(size), "$skip": str(skip + size)})
        body["@odata.nextLink"] = f"{req.base}/{quote(req.path, safe='/@')}?" + urlencode(
            query, quote_via=quote, safe="$'(),:/"
        )
    headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if preferred else {}
    return GResp(200, body, headers)


def list_events(env: Env, req: GReq, box: Mailbox, folder: Folder | None = None) -> GResp:
    """`/calendar/events` (or `/calendars/{id}/events`, `folder`): singles and series masters
    of any date (the folder holds no occurrences: those exist only as instances of their
    master)."""
    folder = folder or box.folder("calendar")
    expand = "$expand" in req.query
    props = expanded_props(req.query)
    items = _ordered(req, [box.items[i] for i in folder.items])
    return _paged(req, [_select(item_json(it, expand=expand, props=props), req) for it in items])


def _ordered(req: GReq, items: list[Any]) -> list[Any]:
    """`$orderby=createdDateTime [asc|desc]` (a stable sort; ties keep the folder's order).
    Any other order is refused rather than silently ignored."""
    raw = req.query.get("$orderby")
    if raw is None:
        return items
    field, _, direction = raw.strip().partition(" ")
    if field != "createdDateTime" or direction.strip().lower() not in ("", "asc", "desc"):
        raise bad_request(f"$orderby={raw!r} is not supported here", "ErrorInvalidUrlQuery")
    return sorted(items, key=lambda it: it.created, reverse=direction.strip().lower() == "desc")


def instances(env: Env, req: GReq, box: Mailbox, raw: str) -> GResp:
    item, index = _item(box, event_calendar(box, raw), raw)
    start, end = _range(req)
    if index is not None or cal.series(item) is None:
        return GResp(200, {"value": []})
    found = occurrences_in(item, start, end)
    return _paged(req, [_select(occurrence_json(box, item, i), req) for i in found])


def left_window(box: Mailbox, folder: Folder, token: delta.DeltaToken, size: int) -> list[Json]:
    """The `@removed` entries of a delta page for single events that changed out of the
    window since the round's last token (the page's own entries leave them out)."""
    window = token.window
    if window is None or token.since == 0:
        return []
    start, end = cal.parse_datetime(window[0]), cal.parse_datetime(window[1])
    listed = delta.changes(box, folder, token.since, token.upto)
    out = []
    for item_id, present in listed[token.offset : token.offset + size]:
        item = box.items.get(item_id) if present else None
        if item is None or cal.series(item) is not None or overlaps(item, start, end):
            continue
        out.append({"id": graph_id(item_id), "@removed": {"reason": "changed"}})
    return out


def calendar_delta(env: Env, req: GReq, box: Mailbox, folder: Folder | None = None) -> GResp:
    """`calendarView/delta` (of the default calendar, or of `folder`) with the removals of
    events that changed out of its window."""
    lid = None if folder is None else folder.id
    resp = handlers.delta_query(env, req, box, EntityKind.APPOINTMENT, lid)
    text = req.query.get("$skiptoken") or req.query.get("$deltatoken")
    if text is None or resp.body is None:
        return resp
    token = delta.decode(text, env.secret)
    if "$deltatoken" in req.query:
        token = replace(token, upto=box.seq)  # as the round's first page reads it
    where = folder or box.folder("calendar")
    resp.body["value"].extend(left_window(box, where, token, env.page_size))
    return resp
