"""`sync-service records link|unlink|show`: which users hold a shared (firm) CRM record.

`records link ENTITY RECORD_ID EMAIL...` links CRM users (by e-mail) to one record; with
`--csv FILE` (columns entity,record_id,email) the rows of a file, each invalid one reported by
line and skipped (exit 1 when any was). `records show ENTITY RECORD_ID` lists its holders.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from sync_service.config import Settings
from sync_service.operator.output import print_json, read_input, table
from sync_service.operator.records import ENTITIES, LinkReport, RecordLinkOps, link_row
from sync_service.operator.server_specs import InvalidInput

EXIT_OK, EXIT_FAILED = 0, 1


async def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    return await _change(settings, args, unlink=False)


async def cmd_unlink(settings: Settings, args: argparse.Namespace) -> int:
    return await _change(settings, args, unlink=True)


async def _change(settings: Settings, args: argparse.Namespace, *, unlink: bool) -> int:
    from sync_service.operator.connect import operations

    text = _inputs(args)
    async with operations(settings) as ops:
        records = RecordLinkOps(ops.pool)
        if text is not None:
            report = await records.import_csv(text, unlink=unlink)
        else:
            report = LinkReport(0, 0, [])
            for email in args.email:
                one = await records.change_one(unlink, args.entity, args.record_id, email)
                report = LinkReport(report.changed + one.changed,
                                    report.unchanged + one.unchanged, [])  # fmt: skip
    for error in report.invalid:
        print(f"{args.csv}:{error.line}: {error.message} (row skipped)", file=sys.stderr)
    if args.json:
        print_json(asdict(report))
    else:
        done = "unlinked" if unlink else "linked"
        print(
            f"{done} {report.changed}, {report.unchanged} unchanged, "
            f"{len(report.invalid)} invalid row(s) skipped"
        )
    return EXIT_FAILED if report.invalid else EXIT_OK


def _inputs(args: argparse.Namespace) -> str | None:
    """The CSV text of --csv, or None for a record named on the command line."""
    named = args.entity is not None
    if (args.csv is None) == (not named) or (named and (not args.record_id or not args.email)):
        raise InvalidInput("arguments", "give ENTITY RECORD_ID EMAIL... or --csv FILE")
    if args.csv is None:
        # Checked here so that a typo is named before the database is opened.
        for email in args.email:
            link_row(0, args.entity, args.record_id, email)
        return None
    return read_input(args.csv)


async def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.operator.connect import operations

    async with operations(settings) as ops:
        shown = await RecordLinkOps(ops.pool).show(args.entity, args.record_id)
    if args.json:
        print_json(shown)
        return EXIT_OK
    table(
        ["EMAIL", "ROLE", "HOLDS", "LINKED AT"],
        [[u["email"], u["role"], "yes" if u["holds"] else "no (dropped)", u["linked_at"] or "-"]
         for u in shown["users"]],
    )  # fmt: skip
    return EXIT_OK


def add_record_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    records = sub.add_parser(
        "records", help="shared (firm) records: link CRM users to a record, unlink, show"
    )
    rsub = records.add_subparsers(dest="records_command", required=True, metavar="COMMAND")
    entities = sorted(ENTITIES)
    for name, handler, what in (
        ("link", cmd_link, "link CRM users (by e-mail) to a record"),
        ("unlink", cmd_unlink, "unlink CRM users (by e-mail) from a record"),
    ):
        cmd = rsub.add_parser(
            name,
            help=f"{what}, or the rows of a CSV file",
            description="Each linked user's mailbox holds its own copy of the record from its "
            "next pass; an unlinked user's copy leaves their mailbox. --csv FILE: columns "
            "entity,record_id,email; invalid rows are reported by line and skipped (exit 1).",
        )
        cmd.add_argument("entity", nargs="?", metavar="ENTITY", help=", ".join(entities))
        cmd.add_argument("record_id", nargs="?", metavar="RECORD_ID", help="the CRM id")
        cmd.add_argument("email", nargs="*", metavar="EMAIL", help="CRM users' e-mail addresses")
        cmd.add_argument("--csv", metavar="FILE", help="CSV file, or - for standard input")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        cmd.set_defaults(handler=handler)
    show = rsub.add_parser("show", help="the users holding a record: its owner and linked users")
    show.add_argument("entity", metavar="ENTITY", help=", ".join(entities))
    show.add_argument("record_id", metavar="RECORD_ID")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)
