"""A mailbox pass's meeting work around the planner (rules in planning/meetings.py).

Before planning: meeting copies are paired with the appointment their uid names, attendee
copies are shown to the planner as unchanged, and appointments Exchange delivers to the
mailbox are not created in it. After the writes: each linked copy's uid names its appointment
(the first one linked wins), the CRM users among the meeting's participants are linked to it
(so their mailboxes pair their own copies), and an attendee copy's response is kept for that
participant. None of this writes to Exchange: no meeting message can come of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from ews_client import Item
from sync_service.crm.port import CrmPort
from sync_service.db.links import LinkRow
from sync_service.planning import meetings as rules
from sync_service.planning.actions import Plan
from sync_service.planning.mapping import Binding
from sync_service.planning.records import CrmAppointment, CrmRecord
from sync_service.planning.state import CrmSnapshot, ExchangeSnapshot, SyncedRow, snapshot_crm


class MeetingCopies:
    """The meeting side of one mailbox's appointment pass."""

    def __init__(self, crm: CrmPort, mailbox: str, user_id: str) -> None:
        self.crm, self.mailbox, self.user_id = crm, mailbox.strip().lower(), user_id
        self.attendee_copies: set[str] = set()  # delivered copies the last prepare saw
        self.paired: set[str] = set()  # copies it paired by uid (they carry no CRM id yet)

    def trim(self, plan: Plan) -> Plan:
        """The plan without attendee-list writes to delivered attendee copies, and with the
        CRM id stamped on the copies paired by uid."""
        return rules.stamped(rules.without_attendee_writes(plan, self.attendee_copies), self.paired)

    def _copies(self, items: Sequence[Item]) -> dict[str, rules.MeetingCopy]:
        found = {}
        for item in items:
            copy = rules.copy_of(item)
            if copy is not None and item.ref is not None:
                found[item.ref.id] = copy
        return found

    async def prepare(
        self,
        binding: Binding,
        records: Sequence[CrmSnapshot],
        items: Sequence[Item],
        snapshots: Sequence[ExchangeSnapshot],
        rows: Sequence[SyncedRow],
        read: Mapping[str, CrmRecord],
    ) -> tuple[dict[str, CrmRecord], list[CrmSnapshot], list[ExchangeSnapshot]]:
        """The CRM records read (`read`, plus those fetched for pairing and for telling whose
        copy an item is) and the planner's inputs with the meeting rules applied."""
        copies = self._copies(items)
        linked = {row.exchange_id: row for row in rows}
        self.paired = set()
        self.attendee_copies = {
            i for i, c in copies.items()
            if rules.delivered(c, self.mailbox) and not rules.organizes(c, self.mailbox)
        }  # fmt: skip
        if not copies and not records and not any(s.id in linked for s in snapshots):
            return dict(read), list(records), list(snapshots)
        known = await self.crm.meetings.known({c.uid for c in copies.values()})
        targets = {known[c.uid] for c in copies.values() if c.uid in known}
        wanted = targets | {linked[s.id].crm_id for s in snapshots if s.id in linked}
        missing = sorted(wanted - read.keys())
        fetched = await self.crm.get_records(binding.entity, missing) if missing else {}
        held_by = {**read, **fetched}
        crm_side = {r.id: r for r in records}
        crm_side.update({i: snapshot_crm(binding, r) for i, r in fetched.items() if i in targets})
        users = await self.crm.meetings.users_by_email(
            {c.organizer for c in copies.values() if c.organizer}
        )
        out, holding = [], {row.crm_id for row in rows}
        for snap in snapshots:
            row, copy = linked.get(snap.id), copies.get(snap.id)
            target = row.crm_id if row else known.get(copy.uid) if copy else None
            if row is None and rules.second_copy(target, holding):
                continue
            record = held_by.get(target or "")
            source = rules.is_source(
                copy, self.mailbox, users.keys(),
                record is not None and record.owner_id == self.user_id, _organizer(record),
            )  # fmt: skip
            shown = self._seen(snap, row, crm_side.get(target or ""), source)
            if shown.crm_id != snap.crm_id:
                self.paired.add(snap.id)
            out.append(shown)
        ids_by_uid = await self._meeting_ids(records, known)
        organized = {i for i, r in held_by.items() if _organizer(r) == self.mailbox}
        seen = {c.uid for c in copies.values()}
        held = rules.held_back(crm_side.values(), ids_by_uid, rows, seen, organized)
        return held_by, [r for r in crm_side.values() if r.id not in held], out

    @staticmethod
    def _seen(
        snap: ExchangeSnapshot, row: SyncedRow | None, paired: CrmSnapshot | None, source: bool
    ) -> ExchangeSnapshot:
        """An item as the planner is to see it: linked and not the meeting's source, its
        row's content; met for the first time, the appointment its uid names."""
        if row is not None:
            return snap if source else rules.as_unchanged(snap, row)
        if paired is None:
            return snap
        return replace(snap, crm_id=paired.id) if source else rules.as_paired(snap, paired)

    async def _meeting_ids(
        self, records: Sequence[CrmSnapshot], known: Mapping[str, str]
    ) -> dict[str, str]:
        """Appointment id -> uid for the meetings among `records` the CRM knows by uid."""
        ids = {r.id for r in records}
        found = await self.crm.meetings.uids(ids) if ids else {}
        return {**{v: k for k, v in known.items()}, **found}

    async def settle(
        self, items: Sequence[Item], link_rows: Callable[[], Awaitable[Sequence[LinkRow]]]
    ) -> None:
        """After the writes (`link_rows` reads the mailbox's link rows as they are now)."""
        copies = self._copies(items)
        if not copies:
            return
        linked = {row.exchange_id: row.crm_id for row in await link_rows() if not row.pending}
        copies = {i: c for i, c in copies.items() if i in linked}
        people = {p for c in copies.values() for p in c.participants}
        users = await self.crm.meetings.users_by_email(people)
        for item_id, copy in copies.items():
            if not rules.delivered(copy, self.mailbox):
                continue
            named = await self.crm.meetings.register(linked[item_id], copy.uid)
            if named != linked[item_id]:
                continue  # another appointment is the meeting's: this copy is not its link
            if rules.organizes(copy, self.mailbox):
                await self.crm.meetings.claim(named, self.user_id)
            others = {users[p] for p in copy.participants if p in users} - {self.user_id}
            await self.crm.meetings.link_participants(named, others)
            response = rules.attendee_response(copy, self.mailbox)
            if response is not None:
                await self.crm.meetings.respond(named, self.user_id, response)


def _organizer(record: CrmRecord | None) -> str | None:
    if isinstance(record, CrmAppointment) and record.organizer_email:
        return record.organizer_email.strip().lower()
    return None
