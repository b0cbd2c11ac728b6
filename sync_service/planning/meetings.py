"""Meetings with several CRM participants: which mailbox copy speaks for the meeting. Pure.

One CRM appointment per meeting. Every participant's mailbox holds its own copy of the
meeting (Exchange puts it there when the organizer's invitation arrives), and every copy
carries the meeting's global object id (EWS `UID`, Graph `iCalUId`); the CRM keeps which
appointment that id names. The rules:

- The organizer's copy is the source of the meeting's fields. When the organizer is no CRM
  user (an external organizer), the copy of the appointment's owner (the CRM user whose copy
  was synced first) is.
- Any other copy is an attendee copy: it contributes only its owner's response. Its fields
  count as unchanged (the link row's content stands in for them), so an attendee's edit of a
  field the organizer owns is never written to the CRM. It is left as the attendee's local
  change, as Exchange leaves it, until the meeting itself changes: then the CRM's new content
  is written over that copy, as the organizer's update would be.
- A copy the CRM does not know yet is paired with the appointment its uid names: an attendee
  copy takes the appointment's content (it links, writing nothing to the CRM); the organizer's
  copy is paired like any item carrying the appointment's CRM id.
- A meeting appointment the CRM knows by uid is never created in the mailbox of an attendee
  (Exchange delivered that copy, or the attendee removed it): only paired when it is seen.
- Only a delivered meeting is named by its uid (an attendee's copy, or the organizer's once
  sent). The sync's own copies of a CRM meeting (written without mail, each with its own
  uid) follow the CRM: the copy of the organizer it names, else of the owner, is the source;
  a participant's copy counts as unchanged like an attendee's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from ews_client.models import Appointment, Item, ItemRef

from .actions import Action, Link, Plan, Update
from .state import CrmSnapshot, ExchangeSnapshot, SyncedRow

ORGANIZER = "organizer"
RESPONSES = frozenset({"none", "accepted", "tentative", "declined"})


@dataclass(frozen=True, slots=True)
class MeetingCopy:
    """What a mailbox's calendar item says of the meeting it is a copy of."""

    uid: str
    organizer: str | None  # lower case; None: the mailbox's own appointment
    response: str | None  # the mailbox owner's: organizer, accepted, tentative, declined, none
    participants: tuple[str, ...]  # organizer and attendees, lower case, each once
    sent: bool = False  # the organizer's copy: its meeting was sent to the attendees


def copy_of(item: Item) -> MeetingCopy | None:
    """The meeting facts of an appointment read with its uid (None: not a meeting copy)."""
    uid = getattr(item, "uid", None)
    if not isinstance(item, Appointment) or not isinstance(uid, str) or not uid:
        return None
    organizer = item.organizer.strip().lower() if item.organizer else None
    people = [organizer] if organizer else []
    for attendee in (*item.required_attendees, *item.optional_attendees):
        address = attendee.email.strip().lower()
        if address and address not in people:
            people.append(address)
    response = getattr(item, "my_response", None)
    mine = response if isinstance(response, str) else None
    return MeetingCopy(uid, organizer, mine, tuple(people), getattr(item, "sent", False) is True)


def organizes(copy: MeetingCopy, mailbox: str) -> bool:
    """Whether this is the organizer's own copy."""
    return copy.response == ORGANIZER or copy.organizer in (None, mailbox.strip().lower())


def is_source(
    copy: MeetingCopy | None,
    mailbox: str,
    users: Collection[str],
    owns_record: bool,
    record_organizer: str | None,
) -> bool:
    """Whether a linked item's fields are the meeting's.

    A copy Exchange delivered (`delivered`): the organizer's; with an organizer who is no CRM
    user (`users`: lower-case addresses), the appointment owner's. Any other item (the sync's
    own copy of a CRM appointment, or no meeting at all): unless the CRM names another
    organizer (`record_organizer`), it speaks for itself; else only the owner's does.
    """
    address = mailbox.strip().lower()
    if copy is not None and delivered(copy, address):
        if organizes(copy, address):
            return True
        return copy.organizer not in users and owns_record
    organizer = record_organizer.strip().lower() if record_organizer else None
    return organizer in (None, address) or owns_record


def delivered(copy: MeetingCopy, mailbox: str) -> bool:
    """Whether Exchange put copies of this meeting in its attendees' calendars: an attendee's
    copy proves it, the organizer's copy once its meeting was sent. Only such a meeting is
    named by its uid: a meeting the sync wrote without mail (the CRM's, SendToNone) reaches
    its participants as the sync's own copies, each with its own uid."""
    return copy.sent or not organizes(copy, mailbox)


def attendee_response(copy: MeetingCopy, mailbox: str) -> str | None:
    """The response an attendee copy contributes (None for the organizer's copy)."""
    if organizes(copy, mailbox):
        return None
    return copy.response if copy.response in RESPONSES else "none"


def as_unchanged(snapshot: ExchangeSnapshot, row: SyncedRow) -> ExchangeSnapshot:
    """An attendee copy as the planner sees it: the row's content (its edits are its own)."""
    return replace(snapshot, fields=row.fields, hash=row.exchange_hash)


def as_paired(snapshot: ExchangeSnapshot, record: CrmSnapshot) -> ExchangeSnapshot:
    """An attendee copy met for the first time: the appointment's, with its content."""
    return replace(snapshot, crm_id=record.id, fields=record.fields, hash=record.hash)


def second_copy(target: str | None, holding: Collection[str]) -> bool:
    """Whether an unlinked copy is a second one of a meeting the mailbox already holds linked
    (`holding`: the CRM ids of its link rows): the sync's own copy was there first (a CRM
    meeting that invitations were allowed for). Left out of the plan: paired, it would be
    an Outlook copy of a linked record, a second CRM appointment."""
    return target is not None and target in holding


ATTENDEE_MODEL_FIELDS = frozenset({"required_attendees", "optional_attendees"})


def without_attendee_writes(plan: Plan, copies: Collection[str]) -> Plan:
    """The plan, its updates of attendee copies Exchange delivered (`copies`: item ids) not
    writing their attendee lists: the organizer's messages keep those (and Graph refuses to
    change them on an attendee's copy); what else changed is still written."""

    def trimmed(action: Action) -> Action:
        if not isinstance(action, Update) or action.ref.id not in copies:
            return action
        return replace(
            action,
            exchange_changes=action.exchange_changes - {"attendees"},
            model_fields=action.model_fields - ATTENDEE_MODEL_FIELDS,
        )

    if not copies:
        return plan
    return replace(plan, actions=tuple(trimmed(a) for a in plan.actions))


def stamped(plan: Plan, paired: Collection[str]) -> Plan:
    """The plan, its links of copies paired by uid (`paired`: item ids) made stamps: such a
    copy does not carry the appointment's CRM id yet (the planner saw it as if it did)."""

    def stamp(action: Action) -> Action:
        if not isinstance(action, Link) or action.row.exchange_id not in paired:
            return action
        row = action.row
        return Update(
            crm_id=row.crm_id, ref=ItemRef(row.exchange_id, row.change_key), target=row.fields,
            crm_changes=frozenset(), exchange_changes=frozenset(), model_fields=frozenset(),
            crm_version=None, stamp=True, row=row, conflict=action.conflict, title=action.title,
        )  # fmt: skip

    if not paired:
        return plan
    return replace(plan, actions=tuple(stamp(a) for a in plan.actions))


def held_back(
    records: Iterable[CrmSnapshot],
    meeting_ids: Mapping[str, str],
    rows: Iterable[SyncedRow],
    seen: Collection[str],
    organized: Collection[str],
) -> set[str]:
    """The appointments not to create in this mailbox: meetings the CRM knows by uid
    (`meeting_ids`: appointment id -> uid), not linked here, whose copy this read did not
    show (`seen`: uids), and that this mailbox does not organize (`organized`: ids)."""
    linked = {row.crm_id for row in rows}
    return {
        r.id
        for r in records
        if r.id in meeting_ids
        and r.id not in linked
        and meeting_ids[r.id] not in seen
        and r.id not in organized
    }
