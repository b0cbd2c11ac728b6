"""Folder links, as the operator sets them: per mailbox and entity, the Exchange folder to
sync instead of the default one. By display path from the entity's default folder
("Contacts/CRM", as Outlook shows it), by folder id (`id:AAMk...`) or by well-known name
(`well-known:contacts`); `--create` makes a path's missing folders. The next pass resolves the
link to the folder's id and keeps it (a folder renamed or moved in Outlook stays linked) and
matches the new folder afresh; a folder that is gone is shown as the entity's error.

Commands: `mailboxes folder-link set|clear|show|import`; the CSV import (`email,entity,folder`
and optional `create`) reports each invalid row by line, as `mailboxes import` does.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from typing import Any

from sync_service.config import Settings
from sync_service.db.folder_links import FolderLinkStore, LinkRequest
from sync_service.operator.csv_import import (
    RowError,
    read_rows,
    shown,
    text_problem,
    valid_email,
)
from sync_service.operator.folder_link_views import ENTITY_NAMES, folders_of, link_json
from sync_service.operator.operations import Operations
from sync_service.operator.output import print_json, read_input, table
from sync_service.operator.server_specs import InvalidInput

PREFIXES = {"id:": "id", "well-known:": "well_known"}
VALUE_MAX = 1024  # far above a folder id (~150 characters) or a few nested names
TRUE, FALSE = ("1", "true", "yes", "y"), ("", "0", "false", "no", "n")


def parse_entity(value: str) -> str:
    name = value.strip().lower()
    if name not in ENTITY_NAMES:
        raise InvalidInput(
            "entity", f"entity {shown(value)} is not one of contacts, calendar, tasks"
        )
    return ENTITY_NAMES[name]


def parse_folder(value: str) -> tuple[str, str]:
    """(by, value) of a folder as written: `id:...`, `well-known:...`, else a display path."""
    text = value.strip()
    problem = text_problem(text, VALUE_MAX)
    if problem is not None:
        raise InvalidInput("folder", f"folder {problem}")
    for prefix, by in PREFIXES.items():
        if text.lower().startswith(prefix):
            rest = text[len(prefix) :].strip()
            if not rest:
                raise InvalidInput("folder", f"folder {shown(text)} names nothing after {prefix}")
            return by, rest
    parts = [part.strip() for part in text.strip("/").split("/")]
    if not all(parts):
        raise InvalidInput("folder", f"folder path {shown(text)} has an empty part")
    return "path", "/".join(parts)


@dataclass(frozen=True, slots=True)
class ImportReport:
    changed: int
    unchanged: int
    invalid: list[RowError]


class FolderLinks:
    """What the CLI (and the API) do with folder links."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.store = FolderLinkStore(ops.pool)

    async def set(self, email: str, entity: str, folder: str, create: bool) -> dict[str, Any]:
        mailbox = await self.ops.mailbox(email)
        stored = parse_entity(entity)
        by, value = parse_folder(folder)
        await self.store.set(mailbox.id, stored, by, value, create)
        return link_json(stored, (await self.store.links(mailbox.id)).get(stored))

    async def clear(self, email: str, entity: str) -> dict[str, Any]:
        mailbox = await self.ops.mailbox(email)
        stored = parse_entity(entity)
        link = (await self.store.links(mailbox.id)).get(stored)
        if link is not None and link.linked:  # the default folder already: nothing to reset
            await self.store.set(mailbox.id, stored, None, None, False)
        return link_json(stored, (await self.store.links(mailbox.id)).get(stored))

    async def show(self, email: str) -> list[dict[str, Any]]:
        return await folders_of(self.ops.pool, (await self.ops.mailbox(email)).id)

    async def import_csv(self, text: str) -> ImportReport:
        rows, invalid = parse_links_csv(text)
        result = await self.store.set_many(rows)
        invalid += [
            RowError(line, f"no mailbox {email!r}", "email") for line, email in result.unknown
        ]
        invalid.sort(key=lambda e: e.line)
        valid = len(rows) - len(result.unknown)
        return ImportReport(result.changed, valid - result.changed, invalid)


def parse_links_csv(text: str) -> tuple[list[LinkRequest], list[RowError]]:
    """Rows of a link import (`email,entity,folder[,create]`, a header line); InvalidInput
    when the header is unusable."""
    return read_rows(text, _header, _row, lambda row: (row.email, row.entity), "entity")


def _header(reader: Any) -> list[str]:
    try:
        names = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise InvalidInput("header", "the file is empty; expected a header line") from None
    missing = [c for c in ("email", "entity", "folder") if c not in names]
    unknown = [c for c in names if c not in ("email", "entity", "folder", "create")]
    if missing or unknown or len(set(names)) != len(names):
        raise InvalidInput(
            "header", f"expected columns email,entity,folder[,create]; got {','.join(names)}"
        )
    return names


def _row(line: int, header: list[str], record: list[str]) -> LinkRequest:
    if len(record) != len(header):
        raise InvalidInput("row", f"expected {len(header)} columns, found {len(record)}")
    cells = {name: value.strip() for name, value in zip(header, record, strict=True)}
    if not valid_email(cells["email"]):
        raise InvalidInput("email", f"malformed address {shown(cells['email'])}")
    entity = parse_entity(cells["entity"])
    if not cells["folder"]:
        raise InvalidInput("folder", "folder is empty")
    by, value = parse_folder(cells["folder"])
    flag = cells.get("create", "").lower()
    if flag not in TRUE + FALSE:
        raise InvalidInput("create", f"create {shown(flag)} is not true or false")
    return LinkRequest(line, cells["email"].lower(), entity, by, value, flag in TRUE)


# -- the CLI ---------------------------------------------------------------------------------
EXIT_OK, EXIT_FAILED = 0, 1


async def cmd_set(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.operator.connect import operations

    async with operations(settings) as ops:
        link = await FolderLinks(ops).set(args.mailbox, args.entity, args.folder, args.create)
    _print([link], args.json)
    return EXIT_OK


async def cmd_clear(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.operator.connect import operations

    async with operations(settings) as ops:
        link = await FolderLinks(ops).clear(args.mailbox, args.entity)
    _print([link], args.json)
    return EXIT_OK


async def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.operator.connect import operations

    async with operations(settings) as ops:
        links = await FolderLinks(ops).show(args.mailbox)
    _print(links, args.json)
    return EXIT_OK


async def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.operator.connect import operations

    text = read_input(args.file)
    async with operations(settings) as ops:
        report = await FolderLinks(ops).import_csv(text)
    for error in report.invalid:
        print(f"{args.file}:{error.line}: {error.message} (row skipped)", file=sys.stderr)
    if args.json:
        print_json(asdict(report))
    else:
        print(
            f"linked {report.changed} folder(s), {report.unchanged} unchanged, "
            f"{len(report.invalid)} invalid row(s) skipped"
        )
    return EXIT_FAILED if report.invalid else EXIT_OK


def _print(links: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(links)
        return
    table(
        ["ENTITY", "FOLDER", "STATE", "PATH", "ERROR"],
        [
            [k["entity"], k["folder"], k["state"], k.get("path") or "-", k.get("error") or "-"]
            for k in links
        ],
    )


def add_folder_link_commands(msub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    links = msub.add_parser(
        "folder-link",
        help="the Exchange folder a mailbox entity syncs: set, clear, show, import",
        description="FOLDER: a display path from the entity's default folder (Contacts/CRM), "
        "id:FOLDER_ID, or well-known:NAME. The next pass resolves it once and keeps the id "
        "(renamed or moved in Outlook, it stays linked) and matches the new folder afresh: "
        "no CRM record is deleted because the old folder's items are not in it.",
    )
    lsub = links.add_subparsers(dest="folder_link_command", required=True, metavar="COMMAND")
    put = lsub.add_parser("set", help="link an entity to a folder")
    put.add_argument("mailbox")
    put.add_argument("entity", choices=list(ENTITY_NAMES))
    put.add_argument("folder")
    put.add_argument("--create", action="store_true", help="make a path's missing folders")
    clear = lsub.add_parser("clear", help="sync the entity's default folder again")
    clear.add_argument("mailbox")
    clear.add_argument("entity", choices=list(ENTITY_NAMES))
    show = lsub.add_parser("show", help="each entity's folder, its state and error")
    show.add_argument("mailbox")
    imp = lsub.add_parser(
        "import",
        help="set links from CSV: email,entity,folder[,create]",
        description="Invalid rows are reported with their line and skipped; the valid ones "
        "are set in one statement. Exit 1 when any row was invalid, 2 when the file is.",
    )
    imp.add_argument("file", help="CSV file, or - for standard input")
    for parser, handler in (
        (put, cmd_set),
        (clear, cmd_clear),
        (show, cmd_show),
        (imp, cmd_import),
    ):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(handler=handler)
