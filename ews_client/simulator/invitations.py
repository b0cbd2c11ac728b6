"""What a real Exchange would have mailed to people: meeting invitations, updates and
cancellations, counted per mailbox and in total, on both endpoints.

Nothing is sent anywhere; the simulator only counts, so that tests can prove a sync write
mails nobody. The rules (ews_client/PROTOCOL_NOTES.md, "Meeting messages"):

- EWS: CreateItem with `SendMeetingInvitations`, UpdateItem with
  `SendMeetingInvitationsOrCancellations` and DeleteItem with `SendMeetingCancellations`
  other than `SendToNone` mail the attendees of a meeting the mailbox organizes.
- Graph has no such switch: creating an event with attendees invites them; a PATCH by the
  organizer that changes what attendees see sends them an update (a PATCH of `attendees`
  alone: only to those added or removed); deleting an organized meeting, and
  `POST /events/{id}/cancel`, sends cancellations.

The operation handlers reach the simulator only through the mailbox and the quota they are
given, so the outbox is attached to the simulator's quota and found through it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from . import meetings
from .store import Mailbox, StoredItem
from .writes import Quota
from .xmlutil import t

INVITATION, UPDATE, CANCELLATION = "invitations", "updates", "cancellations"
KINDS = (INVITATION, UPDATE, CANCELLATION)
_ATTENDEE_LISTS = ("RequiredAttendees", "OptionalAttendees", "Resources")
# EWS attribute values that mail people (every value but SendToNone).
EWS_SENDING = frozenset(
    {"SendOnlyToAll", "SendToAllAndSaveCopy", "SendOnlyToChanged", "SendToChangedAndSaveCopy"}
)
_TO_CHANGED = frozenset({"SendOnlyToChanged", "SendToChangedAndSaveCopy"})
# Graph event properties personal to the calendar's owner, or the application's own data: a
# PATCH of only these is saved without a meeting update (our model; see the protocol notes).
GRAPH_SILENT = frozenset(
    {
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "extensions",
        "categories",
        "isReminderOn",
        "reminderMinutesBeforeStart",
        "showAs",
    }
)


@dataclass(frozen=True, slots=True)
class Message:
    """One message Exchange would have sent: from `mailbox`, of `kind`, to `recipients`."""

    mailbox: str
    kind: str  # invitations | updates | cancellations
    endpoint: str  # ews | graph
    recipients: tuple[str, ...]
    subject: str | None


@dataclass(slots=True)
class Sent:
    invitations: int = 0
    updates: int = 0
    cancellations: int = 0
    recipients: int = 0  # addressees over all messages

    @property
    def messages(self) -> int:
        return self.invitations + self.updates + self.cancellations

    def add(self, message: Message) -> None:
        setattr(self, message.kind, getattr(self, message.kind) + 1)
        self.recipients += len(message.recipients)

    def as_json(self) -> dict[str, int]:
        return {
            INVITATION: self.invitations,
            UPDATE: self.updates,
            CANCELLATION: self.cancellations,
            "recipients": self.recipients,
        }


@dataclass(slots=True)
class Outbox:
    """Every message the simulator would have sent, in order."""

    messages: list[Message] = field(default_factory=list)

    def record(self, message: Message) -> None:
        if message.recipients:
            self.messages.append(message)

    def total(self) -> Sent:
        sent = Sent()
        for message in self.messages:
            sent.add(message)
        return sent

    def by_mailbox(self) -> dict[str, Sent]:
        out: dict[str, Sent] = {}
        for message in self.messages:
            out.setdefault(message.mailbox, Sent()).add(message)
        return out

    def counters(self) -> dict[str, object]:
        mailboxes = {box: sent.as_json() for box, sent in sorted(self.by_mailbox().items())}
        return {**self.total().as_json(), "mailboxes": mailboxes}

    def listing(self) -> list[dict[str, object]]:
        return [
            {"mailbox": m.mailbox, "kind": m.kind, "endpoint": m.endpoint,
             "recipients": list(m.recipients), "subject": m.subject}
            for m in self.messages
        ]  # fmt: skip

    def clear(self) -> None:
        self.messages.clear()


_OUTBOXES: weakref.WeakKeyDictionary[Quota, Outbox] = weakref.WeakKeyDictionary()


def attach(quota: Quota, outbox: Outbox) -> None:
    _OUTBOXES[quota] = outbox


def outbox_of(quota: Quota) -> Outbox | None:
    return _OUTBOXES.get(quota)


# -- reading a stored meeting ---------------------------------------------------------------
def attendees(props: etree._Element) -> tuple[str, ...]:
    """The attendees' addresses (required, optional, resources), lower case, in order."""
    out: list[str] = []
    for tag in _ATTENDEE_LISTS:
        holder = props.find(t(tag))
        for node in () if holder is None else holder.iterchildren(t("Attendee")):
            address = (node.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") or "").strip()
            if address and address.lower() not in out:
                out.append(address.lower())
    return tuple(out)


def organizes(box: Mailbox, props: etree._Element) -> bool:
    """Whether the mailbox is the meeting's organizer: no other organizer is named."""
    named = props.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}")
    return not named or named.strip().lower() == box.address


def _send(
    quota: Quota, box: Mailbox, item: StoredItem, kind: str, endpoint: str, to: Iterable[str]
) -> None:
    outbox, to = outbox_of(quota), tuple(to)
    if outbox is not None:
        subject = item.props.findtext(t("Subject"))
        outbox.record(Message(box.address, kind, endpoint, to, subject))
    # What the message does in the attendees' calendars of this simulator (meetings.py).
    (meetings.cancel if kind == CANCELLATION else meetings.deliver)(quota, box, item, to)


def _changed(
    quota: Quota, box: Mailbox, item: StoredItem, endpoint: str, before: tuple[str, ...]
) -> None:
    after = attendees(item.props)
    _send(quota, box, item, INVITATION, endpoint, [a for a in after if a not in before])
    _send(quota, box, item, CANCELLATION, endpoint, [a for a in before if a not in after])


# -- EWS ------------------------------------------------------------------------------------
def ews_created(quota: Quota, box: Mailbox, item: StoredItem, mode: str | None) -> None:
    """CreateItem: the creator organizes the meeting; invitations unless SendToNone."""
    if item.kind == "CalendarItem" and mode in EWS_SENDING:
        _send(quota, box, item, INVITATION, "ews", attendees(item.props))


def ews_updated(
    quota: Quota, box: Mailbox, item: StoredItem, mode: str | None, before: tuple[str, ...]
) -> None:
    """UpdateItem (of the item or one occurrence): updates to all, or to the changed only."""
    if item.kind != "CalendarItem" or mode not in EWS_SENDING or not organizes(box, item.props):
        return
    if mode in _TO_CHANGED:
        _changed(quota, box, item, "ews", before)
        return
    after = attendees(item.props)
    _send(quota, box, item, UPDATE, "ews", after)
    _send(quota, box, item, CANCELLATION, "ews", [a for a in before if a not in after])


def ews_deleted(quota: Quota, box: Mailbox, item: StoredItem, mode: str | None) -> None:
    if item.kind == "CalendarItem" and mode in EWS_SENDING and organizes(box, item.props):
        _send(quota, box, item, CANCELLATION, "ews", attendees(item.props))


# -- Graph ----------------------------------------------------------------------------------
def graph_created(quota: Quota, box: Mailbox, item: StoredItem) -> None:
    """POST of an event: whoever creates it organizes it, and its attendees are invited."""
    if item.kind == "CalendarItem":
        _send(quota, box, item, INVITATION, "graph", attendees(item.props))


def graph_patched(
    quota: Quota, box: Mailbox, item: StoredItem, body: Mapping[str, object],
    before: tuple[str, ...],
) -> None:  # fmt: skip
    """PATCH of an event or of one occurrence, by the organizer."""
    if item.kind != "CalendarItem" or not organizes(box, item.props):
        return
    named = {k for k in body if not k.startswith("@")} - GRAPH_SILENT
    if not named:
        return
    if named == {"attendees"}:
        _changed(quota, box, item, "graph", before)
        return
    after = attendees(item.props)
    _send(quota, box, item, UPDATE, "graph", [a for a in after if a in before])
    _changed(quota, box, item, "graph", before)


def graph_deleted(quota: Quota, box: Mailbox, item: StoredItem) -> None:
    """DELETE of an organized meeting (or of one of its occurrences), or its /cancel."""
    if item.kind == "CalendarItem" and organizes(box, item.props):
        _send(quota, box, item, CANCELLATION, "graph", attendees(item.props))
