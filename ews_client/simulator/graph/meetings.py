"""An event's meeting properties as Graph shows them: `iCalUId` (the EWS `UID` every copy of
the meeting shares), `isOrganizer`, the calendar owner's `responseStatus` and each attendee's
`status` as the organizer's item records it (see ../meetings.py)."""

from __future__ import annotations

from lxml import etree

from ..meetings import NOT_RESPONDED, ORGANIZER, attendee_node
from ..store import StoredItem
from ..xmlutil import t
from .wire import Json

# EWS ResponseTypeType -> Graph responseType.
RESPONSE = {
    "Unknown": "none",
    ORGANIZER: "organizer",
    "Tentative": "tentativelyAccepted",
    "Accept": "accepted",
    "Decline": "declined",
    NOT_RESPONDED: "notResponded",
}
NEVER = "0001-01-01T00:00:00Z"  # Graph's time of a status nobody has given yet


def _status(response: str | None, when: str | None = None) -> Json:
    return {"response": RESPONSE.get(response or "", "none"), "time": when or NEVER}


def meeting_json(item: StoredItem, body: Json) -> Json:
    """`body` (an event resource) with its meeting properties."""
    props = item.props
    mine = props.findtext(t("MyResponseType"))
    organizer = props.find(t("Organizer")) is None or mine == ORGANIZER
    out = dict(body)
    if uid := props.findtext(t("UID")):
        out["iCalUId"] = uid
    out["isOrganizer"] = organizer
    out["responseStatus"] = _status(ORGANIZER if organizer else mine)
    out["attendees"] = [_with_status(props, a) for a in body.get("attendees") or ()]
    return out


def _with_status(props: etree._Element, attendee: Json) -> Json:
    address = str((attendee.get("emailAddress") or {}).get("address") or "").strip().lower()
    node = attendee_node(props, address)
    if node is None:
        return {**attendee, "status": _status(None)}
    response = node.findtext(t("ResponseType")) or NOT_RESPONDED
    return {**attendee, "status": _status(response, node.findtext(t("LastResponseTime")))}
