"""Linking CRM records to users (shared, firm records): `records link|unlink|show` and their
API. A linked user's mailbox gets its own copy of the record on its next pass (the link is
change-captured like any CRM write, so the dispatcher queues that mailbox); an unlinked user's
copy leaves their mailbox. Users are named by their CRM e-mail address.

Bulk by CSV (`entity,record_id,email`, a header line): each invalid row is reported with its
line and skipped, as `mailboxes import` does; the valid rows are applied in one statement.
Linking a record's owner gives back the copy their Outlook delete dropped
(SYNC_SHARED_OWNER_DELETE=keep); unlinking the owner is refused (the owner's copy goes with
their delete in Outlook, or the record changes hands in the CRM).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from sync_service.db.record_links import LinkChange, RecordLinks
from sync_service.operator.csv_import import RowError, read_rows, shown, valid_email
from sync_service.operator.operations import Conflict, NotFound
from sync_service.operator.server_specs import InvalidInput

# The words an operator may use for an entity, and the stored names they stand for.
ENTITIES = {
    "contact": "contact",
    "contacts": "contact",
    "appointment": "appointment",
    "appointments": "appointment",
    "calendar": "appointment",
    "task": "task",
    "tasks": "task",
}
COLUMNS = ("entity", "record_id", "email")
RECORD_ID_MAX = 64  # far above a uuid's 36 characters: longer is never an id


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One record and user to link or unlink, from the line `line` of the input."""

    line: int
    entity: str
    record_id: str
    email: str


@dataclass(frozen=True, slots=True)
class LinkReport:
    changed: int  # links made (or an owner's copy given back), or links removed
    unchanged: int  # valid rows that named what was already so
    invalid: list[RowError]


def parse_entity(value: str) -> str:
    name = value.strip().lower()
    if name not in ENTITIES:
        raise InvalidInput("entity", f"entity {shown(value)} is not one of contact, calendar, task")
    return ENTITIES[name]


def parse_record_id(value: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("record_id", "record_id is empty")
    try:
        if len(text) > RECORD_ID_MAX:
            raise ValueError(text)
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput(
            "record_id", f"record_id {shown(text)} is not a CRM id (a uuid)"
        ) from None


def parse_email(value: str) -> str:
    text = value.strip()
    if not valid_email(text):
        raise InvalidInput("email", f"malformed address {shown(text)}")
    return text.lower()


def link_row(line: int, entity: str, record_id: str, email: str) -> LinkRow:
    return LinkRow(line, parse_entity(entity), parse_record_id(record_id), parse_email(email))


def parse_links_csv(text: str) -> tuple[list[LinkRow], list[RowError]]:
    """Rows of `entity,record_id,email` (a header line); InvalidInput when the file or its
    header is unusable."""
    return read_rows(
        text, _header, _row, lambda row: (row.entity, row.record_id, row.email), "email"
    )


def _header(reader: Any) -> list[str]:
    try:
        names = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise InvalidInput("header", "the file is empty; expected a header line") from None
    except csv.Error as exc:
        raise InvalidInput("header", f"unreadable CSV: {exc}") from None
    if sorted(names) != sorted(COLUMNS):
        raise InvalidInput(
            "header", f"expected columns {','.join(COLUMNS)}; got {','.join(names) or 'none'}"
        )
    return names


def _row(line: int, header: list[str], record: list[str]) -> LinkRow:
    if len(record) != len(header):
        raise InvalidInput("row", f"expected {len(header)} columns, found {len(record)}")
    cells = dict(zip(header, record, strict=True))
    return link_row(line, cells["entity"], cells["record_id"], cells["email"])


class RecordLinkOps:
    """What the CLI and the API do with record links."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.store = RecordLinks(pool)

    async def link(self, rows: Sequence[LinkRow]) -> LinkReport:
        return await self._apply(rows, unlink=False)

    async def unlink(self, rows: Sequence[LinkRow]) -> LinkReport:
        return await self._apply(rows, unlink=True)

    async def import_csv(self, text: str, *, unlink: bool) -> LinkReport:
        rows, invalid = parse_links_csv(text)
        report = await self._apply(rows, unlink=unlink)
        errors = sorted([*invalid, *report.invalid], key=lambda e: e.line)
        return LinkReport(report.changed, report.unchanged, errors)

    async def change_one(self, unlink: bool, entity: str, record_id: str, email: str) -> LinkReport:
        """One link: its problem is raised (NotFound: no such user or record; Conflict:
        unlinking the owner), not reported."""
        changes, problems = await self._resolve([link_row(0, entity, record_id, email)], unlink)
        for problem in problems:
            raise problem.error(problem.field, problem.message)
        changed = await self._write(changes, unlink)
        return LinkReport(changed, len(changes) - changed, [])

    async def show(self, entity: str, record_id: str) -> dict[str, Any]:
        stored, rid = parse_entity(entity), parse_record_id(record_id)
        if not await self.store.owners(stored, [rid]):
            raise NotFound("record_id", f"no {stored} {rid}")
        holders = await self.store.holders(stored, rid)
        users = [
            {"email": h.email, "role": h.role, "holds": h.holds,
             "linked_at": h.linked_at.isoformat() if h.linked_at else None}
            for h in holders
        ]  # fmt: skip
        return {"entity": stored, "record_id": rid, "users": users}

    async def _apply(self, rows: Sequence[LinkRow], *, unlink: bool) -> LinkReport:
        changes, problems = await self._resolve(rows, unlink)
        changed = await self._write(changes, unlink)
        invalid = [RowError(p.line, p.message, p.field) for p in problems]
        return LinkReport(changed, len(changes) - changed, invalid)

    async def _write(self, changes: list[LinkChange], unlink: bool) -> int:
        if unlink:
            return await self.store.unlink_many(changes)
        return await self.store.link_many(changes)

    async def _resolve(
        self, rows: Sequence[LinkRow], unlink: bool
    ) -> tuple[list[LinkChange], list[_Problem]]:
        """The rows' users and records looked up (one statement, and one per entity); rows
        naming no CRM user, no record, or (to unlink) the record's owner are refused."""
        users = await self.store.users_by_email(sorted({r.email for r in rows}))
        owners: dict[tuple[str, str], str] = {}
        for entity in sorted({r.entity for r in rows}):
            ids = sorted({r.record_id for r in rows if r.entity == entity})
            found = await self.store.owners(entity, ids)
            owners.update(((entity, rid), owner) for rid, owner in found.items())
        changes: list[LinkChange] = []
        problems: list[_Problem] = []
        for row in rows:
            user, owner = users.get(row.email), owners.get((row.entity, row.record_id))
            if user is None:
                problems.append(_Problem(row.line, NotFound, "email",
                                         f"no CRM user {row.email!r}"))  # fmt: skip
            elif owner is None:
                problems.append(_Problem(row.line, NotFound, "record_id",
                                         f"no {row.entity} {row.record_id}"))  # fmt: skip
            elif unlink and owner == user:
                message = (
                    f"{row.email} owns {row.entity} {row.record_id}: an owner is not unlinked "
                    "(their Outlook delete drops their copy, see SYNC_SHARED_OWNER_DELETE)"
                )
                problems.append(_Problem(row.line, Conflict, "email", message))
            else:
                changes.append(LinkChange(row.entity, row.record_id, user))
        return changes, problems


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why a row cannot be applied, and what a single request raises for it."""

    line: int
    error: type[NotFound] | type[Conflict]
    field: str
    message: str
