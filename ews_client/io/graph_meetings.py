"""Event writes that mail nobody unless invitations are allowed (Graph has no `SendToNone`).

A create carries the CRM's attendees in the CRM attendee property (and as real attendees only
when invitations are allowed and the mailbox organizes the meeting). Before an update that
could notify, or a delete, the event is read as it is in Exchange: when it has real attendees
and the write would mail them, the write is refused for that item (`ItemRejectedError`,
code `MEETING_REFUSED`) rather than done. The rules are pure (`graph/events.py`).
"""

from __future__ import annotations

from typing import Protocol

from ews_client.errors import ItemRejectedError
from ews_client.graph import requests as rq
from ews_client.graph.events import (
    MEETING_REFUSED,
    SILENT_FIELDS,
    MeetingState,
    delete_refusal,
    may_invite,
    meeting_body,
    meeting_state,
    write_refusal,
)
from ews_client.graph.wire import Json
from ews_client.models import Appointment, EntityKind, ItemRef

EVENT = EntityKind.APPOINTMENT


class EventCalls(Protocol):
    """What this needs from the Graph client (`GraphClient` has it; it composes a
    `MeetingWrites`, so this module must not import the client back)."""

    async def call(self, mailbox: str, req: rq.GraphRequest, *, idempotent: bool = False) -> Json:
        """One request; the JSON body of a 2xx answer."""


class MeetingWrites:
    def __init__(self, calls: EventCalls, *, send_invitations: bool = False) -> None:
        self._calls = calls
        self.send_invitations = send_invitations

    def create_body(self, mailbox: str, body: Json, item: Appointment) -> Json:
        invite = self.send_invitations and may_invite(item, mailbox)
        return meeting_body(body, item, invite=invite, create=True)

    async def patch_body(
        self, mailbox: str, ref: ItemRef, item: Appointment, fields: frozenset[str], body: Json
    ) -> Json:
        """The PATCH body to send, or ItemRejectedError when it would mail attendees."""
        if not body or not fields - SILENT_FIELDS:
            return body  # nothing an attendee sees: no need to look first
        state = await self._state(mailbox, ref)
        reason = write_refusal(state, fields, self.send_invitations)
        if reason is not None:
            raise ItemRejectedError(f"event {ref.id}: {reason}", code=MEETING_REFUSED)
        invite = (
            self.send_invitations
            and may_invite(item, mailbox)
            and (not state.attendees or state.crm_organized)
        )
        return meeting_body(body, item, invite=invite)

    async def check_delete(self, mailbox: str, ref: ItemRef) -> None:
        """ItemRejectedError when deleting the event would mail its attendees."""
        reason = delete_refusal(await self._state(mailbox, ref), self.send_invitations)
        if reason is not None:
            raise ItemRejectedError(f"event {ref.id}: {reason}", code=MEETING_REFUSED)

    async def _state(self, mailbox: str, ref: ItemRef) -> MeetingState:
        obj = await self._calls.call(mailbox, rq.get_item(mailbox, EVENT, ref.id), idempotent=True)
        return meeting_state(obj, mailbox)
