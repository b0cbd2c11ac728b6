"""Meetings as Exchange keeps them: the organizer's item and one copy per attendee mailbox.

What the simulator models (ews_client/PROTOCOL_NOTES.md, "Meetings"):

- A meeting has one global object id, EWS `UID` (Graph `iCalUId`), on the organizer's item and
  on every attendee's copy.
- A copy reaches an attendee's calendar only through a meeting message: Exchange's calendar
  processing puts the request of an invitation into the attendee's calendar (tentatively,
  "not responded"), an update changes that copy, a cancellation marks it cancelled. A write
  that mails nobody (EWS `SendToNone`) leaves the attendees' calendars as they were, so the
  copies follow the messages `invitations.py` counts, never the organizer's item itself.
- Only attendees that are mailboxes of this simulator get copies; the others are just counted.
- An attendee's response (Accept, Tentative, Decline) is the copy's `MyResponseType`; when the
  response is sent, the organizer's item records it on that attendee (`ResponseType`,
  `LastResponseTime`).
- The organizer's own item says `MyResponseType` Organizer, and `MeetingRequestWasSent` once
  a message of it went out; a copy names its `Organizer`.

The message handlers reach the simulator only through the quota they are given (like the
outbox), so the mailboxes are attached to the quota and found through it.
"""

from __future__ import annotations

import copy
import uuid
import weakref
from collections.abc import Iterable, Mapping

from lxml import etree

from .store import ITEM_TYPES, Mailbox, StoredItem, now_utc
from .writes import Quota
from .xmlutil import insert_ordered, t

CALENDAR = ITEM_TYPES["CalendarItem"]
ORGANIZER, NOT_RESPONDED = "Organizer", "NoResponseReceived"
# ResponseTypeType values an attendee can answer with.
RESPONSES = frozenset({"Accept", "Tentative", "Decline"})
_LISTS = ("RequiredAttendees", "OptionalAttendees", "Resources")

_MAILBOXES: weakref.WeakKeyDictionary[Quota, Mapping[str, Mailbox]] = weakref.WeakKeyDictionary()


class MeetingError(ValueError):
    """A response the meeting cannot take (with the EWS ResponseCode it answers with)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def attach(quota: Quota, mailboxes: Mapping[str, Mailbox]) -> None:
    _MAILBOXES[quota] = mailboxes


def mailboxes_of(quota: Quota) -> Mapping[str, Mailbox]:
    return _MAILBOXES.get(quota, {})


# -- reading --------------------------------------------------------------------------------
def uid_of(item: StoredItem) -> str | None:
    return item.props.findtext(t("UID")) if item.kind == "CalendarItem" else None


def organizer_of(box: Mailbox, props: etree._Element) -> str:
    named = props.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}")
    return (named or box.address).strip().lower()


def find_copy(box: Mailbox, uid: str) -> StoredItem | None:
    """The mailbox's calendar item of the meeting `uid` (its own or its copy)."""
    for item_id in box.folder("calendar").items:
        item = box.items[item_id]
        if uid_of(item) == uid:
            return item
    return None


def _attendee_nodes(props: etree._Element) -> Iterable[etree._Element]:
    for tag in _LISTS:
        holder = props.find(t(tag))
        yield from () if holder is None else holder.iterchildren(t("Attendee"))


def addresses(props: etree._Element) -> list[str]:
    """The attendees' addresses, lower case, in order."""
    found = (n.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") for n in _attendee_nodes(props))
    return [a.strip().lower() for a in found if a and a.strip()]


def attendee_node(props: etree._Element, address: str) -> etree._Element | None:
    for node in _attendee_nodes(props):
        email = node.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") or ""
        if email.strip().lower() == address:
            return node
    return None


def response_of(props: etree._Element, address: str) -> str | None:
    """The response the organizer's item records for one attendee (None: not an attendee)."""
    node = attendee_node(props, address)
    if node is None:
        return None
    return node.findtext(t("ResponseType")) or NOT_RESPONDED


# -- writing --------------------------------------------------------------------------------
def ensure_uid(item: StoredItem) -> None:
    """Exchange gives every calendar item a global object id when it is saved."""
    if item.kind == "CalendarItem" and item.props.find(t("UID")) is None:
        _set(item.props, "UID", uuid.uuid4().hex.upper())


def _set(props: etree._Element, name: str, text: str, order: str = CALENDAR) -> None:
    node = etree.Element(t(name))
    node.text = text
    insert_ordered(props, node, order)


def _mailbox(address: str, name: str | None) -> etree._Element:
    node = etree.Element(t("Mailbox"))
    if name:
        etree.SubElement(node, t("Name")).text = name
    etree.SubElement(node, t("EmailAddress")).text = address
    etree.SubElement(node, t("RoutingType")).text = "SMTP"
    return node


def mark_organized(box: Mailbox, item: StoredItem) -> None:
    """The organizer's item once its meeting is sent: a meeting, organized by its mailbox."""
    _set(item.props, "IsMeeting", "true")
    _set(item.props, "MyResponseType", ORGANIZER)
    if item.props.find(t("Organizer")) is None:
        holder = etree.Element(t("Organizer"))
        holder.append(_mailbox(box.address, None))
        insert_ordered(item.props, holder, CALENDAR)


def _copy_props(organizer: Mailbox, item: StoredItem, response: str) -> etree._Element:
    props = copy.deepcopy(item.props)
    for name in ("Organizer", "MyResponseType"):
        node = props.find(t(name))
        if node is not None:
            props.remove(node)
    _set(props, "IsMeeting", "true")
    _set(props, "MyResponseType", response)
    holder = etree.Element(t("Organizer"))
    holder.append(_mailbox(organizer.address, None))
    insert_ordered(props, holder, CALENDAR)
    return props


def deliver(quota: Quota, organizer: Mailbox, item: StoredItem, to: Iterable[str]) -> None:
    """An invitation or update reaching the attendees of this simulator: each one's copy
    is created or replaced by the organizer's meeting, keeping that attendee's response."""
    uid = uid_of(item)
    if uid is not None:
        _set(item.props, "MeetingRequestWasSent", "true")
    local = [mailboxes_of(quota).get(a) for a in to]
    boxes = [b for b in local if b is not None and b is not organizer]
    if uid is None or not boxes:
        return  # (an organizer's item is marked only once a copy of it exists somewhere)
    mark_organized(organizer, item)
    for box in boxes:
        held = find_copy(box, uid)
        response = NOT_RESPONDED
        if held is not None:
            response = held.props.findtext(t("MyResponseType")) or NOT_RESPONDED
        props = _copy_props(organizer, item, response)
        if held is None:
            box.add(box.folder("calendar"), "CalendarItem", props)
        else:
            held.props = props
            box.touch(held)


def cancel(quota: Quota, organizer: Mailbox, item: StoredItem, to: Iterable[str]) -> None:
    """A cancellation reaching the attendees: each copy stays, marked cancelled, until its
    owner removes it (Outlook's "Remove from calendar")."""
    uid = uid_of(item)
    if uid is None:
        return
    for address in to:
        box = mailboxes_of(quota).get(address)
        held = None if box is None or box is organizer else find_copy(box, uid)
        if box is not None and held is not None:
            _set(held.props, "IsCancelled", "true")
            box.touch(held)


def respond(quota: Quota, box: Mailbox, item: StoredItem, response: str, send: bool) -> None:
    """The attendee answers: its copy's MyResponseType; sent, the organizer's item records it."""
    if response not in RESPONSES:
        raise MeetingError("ErrorInvalidRequest", f"{response} is not a response")
    if item.kind != "CalendarItem" or organizer_of(box, item.props) == box.address:
        raise MeetingError("ErrorItemNotFound", "only an attendee's copy of a meeting answers")
    if item.props.findtext(t("IsCancelled")) == "true":
        raise MeetingError(f"ErrorCalendarIsCancelledFor{response}", "meeting cancelled")
    _set(item.props, "MyResponseType", response)
    box.touch(item)
    if send:
        _record_response(quota, box, item, response)


def _record_response(quota: Quota, box: Mailbox, item: StoredItem, response: str) -> None:
    organizer = mailboxes_of(quota).get(organizer_of(box, item.props))
    uid = uid_of(item)
    own = None if organizer is None or uid is None else find_copy(organizer, uid)
    node = None if own is None else attendee_node(own.props, box.address)
    if organizer is None or own is None or node is None:
        return  # an organizer outside this simulator: the response is mailed, not recorded
    _set(node, "ResponseType", response, "AttendeeType")
    _set(node, "LastResponseTime", now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"), "AttendeeType")
    organizer.touch(own)


def set_attendees(item: StoredItem, required: Iterable[str], optional: Iterable[str]) -> None:
    """Replace the meeting's attendee lists (the owner's Outlook edit before sending)."""
    for tag, addresses in (
        ("RequiredAttendees", list(required)),
        ("OptionalAttendees", list(optional)),
    ):
        old = item.props.find(t(tag))
        if old is not None:
            item.props.remove(old)
        if not addresses:
            continue
        holder = etree.Element(t(tag))
        for address in addresses:
            etree.SubElement(holder, t("Attendee")).append(_mailbox(address, None))
        insert_ordered(item.props, holder, CALENDAR)


def send_as_owner(quota: Quota, box: Mailbox, item: StoredItem) -> None:
    """The owner sends the meeting (or its update) from Outlook: not a client's write, so not
    in the outbox, but the attendees of this simulator get their copies all the same."""
    deliver(quota, box, item, addresses(item.props))


# -- the wire: EWS response objects, Graph's accept / decline / tentativelyAccept ----------
# EWS CreateItem of one of these, with a ReferenceItemId naming the attendee's copy.
EWS_RESPONSE_OBJECTS = {
    "AcceptItem": "Accept",
    "TentativelyAcceptItem": "Tentative",
    "DeclineItem": "Decline",
}
GRAPH_ACTIONS = {"accept": "Accept", "tentativelyAccept": "Tentative", "decline": "Decline"}
