"""Carry a mailbox to another server (an Exchange Server mailbox moved to Exchange Online, or
back), its links kept: no duplicate, no deletion, no re-planning of unchanged items.

Every item the service links carries its CRM id in Exchange (a contact's and an event's
extended property, a task's linked resource), and a mailbox move keeps it. So the move lists
each synchronized folder in full on the new server and re-points every link at the item
carrying its CRM id. Graph's `translateExchangeIds` would map old ids to new ones, but it
takes delegated permissions only, and the service signs in as an application
(ews_client/PROTOCOL_NOTES.md, "Mailbox moves and id translation").

Then the old server's sync states are dropped (the first pass on the new server reads every
folder in full and finds each item linked: a content equal to the link's is no write), the
marker is written to the new server at the generation the database holds, and the mailbox
is served from the new server. A link whose CRM id no item carries stops the move before
the switch: switching would leave a link to nothing, which a complete pass takes for a
deletion in Exchange.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ews_client import EntityKind, SyncMarker
from sync_service.db.enums import EntityMode
from sync_service.db.moves import MoveStore
from sync_service.db.store import Mailbox, Server, Store
from sync_service.operator.operations import Conflict, InvalidInput, NotFound
from sync_service.runtime.backends import PASS_STATS, Backends, RequestStats

_SHOWN = 5  # unmatched CRM ids named in the error


@dataclass(slots=True)
class MoveReport:
    email: str
    source: str
    target: str
    linked: dict[str, int] = field(default_factory=dict)  # entity -> links re-pointed
    requests: int = 0  # requests to the new server
    batches: int = 0  # link transactions


class MailboxMover:
    def __init__(self, store: Store, backends: Backends) -> None:
        self.store = store
        self.backends = backends
        self.moves = MoveStore(store.pool)

    async def move(self, email: str, target_name: str) -> MoveReport:
        mailbox, source, target = await self._resolve(email, target_name)
        # Stopped while it moves, so that no pass runs on half-moved links; a move that does
        # not happen gives the mailbox its state back, a move that does makes it active.
        before = await self.moves.hold(mailbox.id, f"moving to {target.name}")
        if before is None:
            raise Conflict("mailbox", f"{email}: a pass is running; move it when the pass ends")
        stats = RequestStats()
        token = PASS_STATS.set(stats)
        try:
            report = await self._carry(mailbox, source, target)
        except BaseException:
            await self.moves.release(mailbox.id, *before)
            raise
        finally:
            PASS_STATS.reset(token)
        report.requests = stats.requests
        return report

    async def _resolve(self, email: str, target_name: str) -> tuple[Mailbox, Server, Server]:
        mailbox = await self.store.mailbox_by_email(email)
        if mailbox is None:
            raise NotFound("mailbox", f"no mailbox {email!r}")
        target = await self.store.server_by_name(target_name)
        if target is None:
            raise NotFound("server", f"no server {target_name!r} (see `sync-service servers list`)")
        source = await self.store.server(mailbox.server_id)
        assert source is not None  # a mailbox's server cannot be removed under it
        if target.id == source.id:
            raise Conflict("server", f"{email} is already served by {target.name}")
        return mailbox, source, target

    async def _carry(self, mailbox: Mailbox, source: Server, target: Server) -> MoveReport:
        backend = await self.backends.get(target)
        report = MoveReport(mailbox.email, source.name, target.name)
        plans: list[tuple[EntityKind, list[tuple[str, str]]]] = []
        for entity in EntityKind:
            if mailbox.mode(entity.value) == EntityMode.OFF:
                continue
            held = {i.crm_id: i.ref.id for i in await backend.list_items(mailbox.email, entity)
                    if i.crm_id and i.ref is not None}  # fmt: skip
            links = await self.moves.links(mailbox.id, entity.value)
            missing = [
                link.crm_id for link in links if link.exchange_id and link.crm_id not in held
            ]
            if missing:
                shown = ", ".join(missing[:_SHOWN]) + (" ..." if len(missing) > _SHOWN else "")
                raise Conflict(
                    "mailbox",
                    f"{mailbox.email}: {len(missing)} linked {entity.value} item(s) carry no "
                    f"CRM id on {target.name} ({shown}); nothing was moved. Is the mailbox's "
                    f"move to {target.name} complete?",
                )
            # A create not yet confirmed ('' id) is left to the pass, which finds it by CRM id.
            plans.append((entity, [(link.crm_id, held[link.crm_id]) for link in links
                                   if link.exchange_id]))  # fmt: skip
        if mailbox.marker_generation:
            # Written before the switch: the new server's first pass finds the marker it expects.
            marker = SyncMarker(mailbox.marker_generation, mailbox.marker_at or _never())
            await backend.write_marker(mailbox.email, marker)
        for entity, pairs in plans:
            report.batches += await self.moves.relink(mailbox.id, entity.value, pairs)
            report.linked[entity.value] = len(pairs)
        await self.moves.switch_server(mailbox.id, target.id)
        return report


def _never() -> datetime:
    return datetime.fromtimestamp(0, UTC)


def parse_move_csv(text: str) -> list[tuple[str, str]]:
    """(email, server) of each row of a CSV with the columns email,server (a header first)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != ["email", "server"]:
        raise InvalidInput("csv", "the first line must be the header email,server")
    out: list[tuple[str, str]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not all(cell.strip() for cell in row):
            raise InvalidInput("csv", f"line {line}: expected email,server, got {row!r}")
        out.append((row[0].strip(), row[1].strip()))
    if not out:
        raise InvalidInput("csv", "no mailbox to move")
    return out
