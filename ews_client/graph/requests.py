"""Graph request builders: pure functions from arguments to `GraphRequest` values.

URLs are relative to the version root (`/users/...`), which is also what `$batch` wants for
its inner requests; `@odata.nextLink` / `@odata.deltaLink` values are absolute and used as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from ews_client.graph.events import ATTENDEES_PROP_ID
from ews_client.graph.wire import CRM_PROP_ID, LINK_APPLICATION, Json, fmt_utc
from ews_client.models import EntityKind

Headers = tuple[tuple[str, str], ...]
# "Prefer: IdType="ImmutableId"" keeps item ids stable when an item moves between folders.
IMMUTABLE = 'IdType="ImmutableId"'
EVENT_PREFER = f'{IMMUTABLE}, outlook.timezone="UTC", outlook.body-content-type="text"'
MARKER_EXTENSION = "com.crmsync.marker"
# Our named properties: the CRM id, and on events the CRM's attendees of a meeting written
# without invitations (graph/events.py).
EXPAND_CRM = (
    f"singleValueExtendedProperties($filter=id eq '{CRM_PROP_ID}' or id eq '{ATTENDEES_PROP_ID}')"
)
BATCH_MAX = 20  # "$batch: at most 20 requests"


@dataclass(frozen=True, slots=True)
class GraphRequest:
    method: str
    url: str
    body: Json | None = None
    headers: Headers = ()


_OPERATIONS = (  # path fragment -> bounded operation name (metrics labels never hold ids)
    ("$batch", "batch"),
    ("/delta", "delta"),
    ("/instances", "instances"),
    ("/linkedResources", "linked_resource"),
    ("/extensions", "marker"),
    ("/subscriptions", "subscription"),
    ("/tasks", "task"),
    ("/todo/lists", "task_lists"),
    ("/childFolders", "folders"),
    ("/contacts", "contact"),
    ("/events", "event"),
    ("/contactFolders", "contact_folders"),
    ("/calendars", "calendars"),
    ("/calendar", "calendar"),
)


def operation_name(req: GraphRequest) -> str:
    """A bounded name for metrics and logs, e.g. "GET delta", "PATCH event"."""
    path = req.url.split("?", 1)[0]
    for fragment, name in _OPERATIONS:
        if fragment in path:
            return f"{req.method} {name}"
    return f"{req.method} other"


def _query(params: dict[str, str]) -> str:
    return "?" + urlencode(params, quote_via=quote, safe="$'(),:/")


def user(mailbox: str) -> str:
    return f"/users/{quote(mailbox, safe='@')}"


def with_immutable_ids(prefer: str | None) -> str:
    """The `Prefer` value with `IdType="ImmutableId"` added when it lacks it: every request,
    top level or inside a `$batch` (inner requests do not inherit the outer headers)."""
    if prefer and "idtype=" in prefer.lower().replace(" ", ""):
        return prefer
    return f"{IMMUTABLE}, {prefer}" if prefer else IMMUTABLE


def _prefer(kind: EntityKind) -> Headers:
    return (("Prefer", EVENT_PREFER if kind is EntityKind.APPOINTMENT else IMMUTABLE),)


def _odata(value: str) -> str:
    return value.replace("'", "''")  # OData string literal: a quote is doubled


def collection(mailbox: str, kind: EntityKind, list_id: str = "") -> str:
    """The entity's items: of the default folder, or of folder `list_id` (a contact folder,
    a To Do list; tasks always name their list)."""
    if kind is EntityKind.CONTACT:
        if list_id:
            return f"{user(mailbox)}/contactFolders/{quote(list_id, safe='')}/contacts"
        return f"{user(mailbox)}/contacts"
    if kind is EntityKind.APPOINTMENT:
        if list_id:
            return f"{user(mailbox)}/calendars/{quote(list_id, safe='')}/events"
        return f"{user(mailbox)}/events"
    return f"{user(mailbox)}/todo/lists/{quote(list_id, safe='')}/tasks"


def item_url(mailbox: str, kind: EntityKind, item_id: str, list_id: str = "") -> str:
    return f"{collection(mailbox, kind, list_id)}/{quote(item_id, safe='')}"


def contacts_delta(mailbox: str, folder: str = "") -> GraphRequest:
    url = f"{collection(mailbox, EntityKind.CONTACT, folder)}/delta"
    return GraphRequest("GET", url, headers=_prefer(EntityKind.CONTACT))


def _calendar(mailbox: str, calendar: str) -> str:
    """The default calendar, or calendar `calendar` (a linked one)."""
    if calendar:
        return f"{user(mailbox)}/calendars/{quote(calendar, safe='')}"
    return f"{user(mailbox)}/calendar"


def events_delta(mailbox: str, start: datetime, end: datetime, calendar: str = "") -> GraphRequest:
    query = _query({"startDateTime": fmt_utc(start), "endDateTime": fmt_utc(end)})
    # The default calendar's view is the user's (`/calendarView/delta`), as it always was.
    base = _calendar(mailbox, calendar) if calendar else user(mailbox)
    url = f"{base}/calendarView/delta{query}"
    return GraphRequest("GET", url, headers=_prefer(EntityKind.APPOINTMENT))


# What `events.event_from_json` reads of an event (a listing asks for these only, `$select`);
# tests/graph/test_calendar_listing.py compares a listed event with one read by GET.
EVENT_SELECT = (
    "type,subject,start,end,originalStartTimeZone,isAllDay,location,body,organizer,attendees,"
    "sensitivity,isReminderOn,reminderMinutesBeforeStart,categories,recurrence,"
    "lastModifiedDateTime,changeKey,iCalUId,isOrganizer,responseStatus"
)
LISTING_PAGE = 250  # events per page we ask for; the server may answer with fewer


def calendar_events(
    mailbox: str, page_size: int = LISTING_PAGE, calendar: str = ""
) -> GraphRequest:
    """Every single event and series master of the calendar, any date (a full read)."""
    # A stable order: the listing's pages overlap and must join on (graph/listing.py).
    url = f"{_calendar(mailbox, calendar)}/events" + _query(
        {"$select": EVENT_SELECT, "$expand": EXPAND_CRM, "$orderby": "createdDateTime"}
    )
    prefer = f"{EVENT_PREFER}, odata.maxpagesize={page_size}"
    return GraphRequest("GET", url, headers=(("Prefer", prefer),))


def tasks_delta(mailbox: str, list_id: str) -> GraphRequest:
    url = f"{collection(mailbox, EntityKind.TASK, list_id)}/delta"
    return GraphRequest("GET", url, headers=_prefer(EntityKind.TASK))


def follow(link: str, kind: EntityKind) -> GraphRequest:
    """The next page (`@odata.nextLink`) or the next round (`@odata.deltaLink`)."""
    return GraphRequest("GET", link, headers=_prefer(kind))


def todo_lists(mailbox: str) -> GraphRequest:
    return GraphRequest("GET", f"{user(mailbox)}/todo/lists")


def get_item(mailbox: str, kind: EntityKind, item_id: str, list_id: str = "") -> GraphRequest:
    expand = "linkedResources" if kind is EntityKind.TASK else EXPAND_CRM
    url = item_url(mailbox, kind, item_id, list_id) + _query({"$expand": expand})
    return GraphRequest("GET", url, headers=_prefer(kind))


def instances(mailbox: str, master_id: str, start: datetime, end: datetime) -> GraphRequest:
    query = _query({"startDateTime": fmt_utc(start), "endDateTime": fmt_utc(end), "$top": "999"})
    url = f"{item_url(mailbox, EntityKind.APPOINTMENT, master_id)}/instances{query}"
    return GraphRequest("GET", url, headers=_prefer(EntityKind.APPOINTMENT))


def create(mailbox: str, kind: EntityKind, body: Json, list_id: str = "") -> GraphRequest:
    return GraphRequest("POST", collection(mailbox, kind, list_id), body, _prefer(kind))


def update(
    mailbox: str, kind: EntityKind, item_id: str, etag: str, body: Json, list_id: str = ""
) -> GraphRequest:
    """PATCH with `If-Match`: a 412 answer means the item changed since we read it."""
    headers = _prefer(kind) + ((("If-Match", etag),) if etag else ())
    return GraphRequest("PATCH", item_url(mailbox, kind, item_id, list_id), body, headers)


def delete(mailbox: str, kind: EntityKind, item_id: str, list_id: str = "") -> GraphRequest:
    return GraphRequest("DELETE", item_url(mailbox, kind, item_id, list_id), None, _prefer(kind))


def add_link(mailbox: str, list_id: str, task_id: str, crm_id: str) -> GraphRequest:
    url = f"{item_url(mailbox, EntityKind.TASK, task_id, list_id)}/linkedResources"
    body = {"applicationName": LINK_APPLICATION, "externalId": crm_id, "displayName": "CRM"}
    return GraphRequest("POST", url, body, _prefer(EntityKind.TASK))


def find_by_crm_id(mailbox: str, kind: EntityKind, crm_id: str, list_id: str = "") -> GraphRequest:
    if kind is EntityKind.TASK:
        flt = (
            f"linkedResources/any(r: r/applicationName eq '{LINK_APPLICATION}'"
            f" and r/externalId eq '{_odata(crm_id)}')"
        )
    else:
        flt = (
            f"singleValueExtendedProperties/any(ep: ep/id eq '{CRM_PROP_ID}'"
            f" and ep/value eq '{_odata(crm_id)}')"
        )
    url = collection(mailbox, kind, list_id) + _query({"$filter": flt, "$select": "id"})
    return GraphRequest("GET", url, headers=_prefer(kind))


def marker_get(mailbox: str) -> GraphRequest:
    return GraphRequest("GET", f"{user(mailbox)}/extensions/{MARKER_EXTENSION}")


def marker_update(mailbox: str, values: Json) -> GraphRequest:
    # Graph asks an extension update to name its derived type, like the create does.
    body = {"@odata.type": "microsoft.graph.openTypeExtension", **values}
    return GraphRequest("PATCH", f"{user(mailbox)}/extensions/{MARKER_EXTENSION}", body)


def marker_create(mailbox: str, values: Json) -> GraphRequest:
    body = {"@odata.type": "microsoft.graph.openTypeExtension",
            "extensionName": MARKER_EXTENSION, **values}  # fmt: skip
    return GraphRequest("POST", f"{user(mailbox)}/extensions", body)


def subscription_resource(mailbox: str, kind: EntityKind, list_id: str = "") -> str:
    return collection(mailbox, kind, list_id).lstrip("/")


def subscribe(
    resource: str,
    notification_url: str,
    client_state: str,
    expires: datetime,
    lifecycle_url: str | None = None,
) -> GraphRequest:
    """`lifecycle_url` can only be given at creation: Graph refuses to add it by PATCH."""
    body: Json = {
        "changeType": "created,updated,deleted",
        "notificationUrl": notification_url,
        "resource": resource,
        "expirationDateTime": fmt_utc(expires),
        "clientState": client_state,
    }
    if lifecycle_url:
        body["lifecycleNotificationUrl"] = lifecycle_url
    return GraphRequest("POST", "/subscriptions", body)


def subscriptions() -> GraphRequest:
    """The application's live subscriptions (paged by `@odata.nextLink`)."""
    return GraphRequest("GET", "/subscriptions")


def renew(subscription_id: str, expires: datetime) -> GraphRequest:
    body = {"expirationDateTime": fmt_utc(expires)}
    return GraphRequest("PATCH", f"/subscriptions/{quote(subscription_id, safe='')}", body)


def unsubscribe(subscription_id: str) -> GraphRequest:
    return GraphRequest("DELETE", f"/subscriptions/{quote(subscription_id, safe='')}")


def batch_body(requests: list[GraphRequest], ids: list[str]) -> Json:
    """A JSON `$batch` body; each inner request carries its own headers."""
    if len(requests) > BATCH_MAX:
        raise ValueError(f"at most {BATCH_MAX} requests per batch")
    out = []
    for rid, req in zip(ids, requests, strict=True):
        inner: Json = {"id": rid, "method": req.method, "url": req.url}
        headers = dict(req.headers)
        headers["Prefer"] = with_immutable_ids(headers.get("Prefer"))
        if req.body is not None:
            inner["body"] = req.body
            headers["Content-Type"] = "application/json"
        if headers:
            inner["headers"] = headers
        out.append(inner)
    return {"requests": out}
