"""`schedules`: express schedules per entity, per server and per server groups."""

from __future__ import annotations

import argparse

from sync_service.config import Settings
from sync_service.operator.connect import operations
from sync_service.operator.entity_names import ENTITY_WORDS
from sync_service.operator.output import print_json, table
from sync_service.operator.schedules import Schedules, ScheduleSpec, ScheduleView, schedule_json

EXIT_OK = 0


async def cmd_schedules_set(settings: Settings, args: argparse.Namespace) -> int:
    spec = ScheduleSpec(args.server, args.group, args.entity, args.every)
    async with operations(settings) as ops:
        schedule, new = await Schedules(ops).set(args.name, spec)
    if args.json:
        print_json(schedule_json(schedule))
    else:
        print(f"schedule {schedule.name} {'added' if new else 'replaced'}: {_summary(schedule)}")
    return EXIT_OK


async def cmd_schedules_list(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        schedules = await Schedules(ops).list(args.server)
    if args.json:
        print_json([schedule_json(s) for s in schedules])
        return EXIT_OK
    rows = [
        [s.name, s.server or "(every)", _words(s.groups), _words(s.entities), s.every]
        for s in schedules
    ]
    table(["NAME", "SERVER", "GROUPS", "ENTITIES", "EVERY"], rows)
    return EXIT_OK


async def cmd_schedules_remove(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        await Schedules(ops).remove(args.name)
    print(f"schedule {args.name} removed")
    return EXIT_OK


def _words(values: list[str] | None) -> str:
    return "(every)" if values is None else ",".join(values)


def _summary(s: ScheduleView) -> str:
    where = f"server {s.server}" if s.server else "every server"
    if s.groups is not None:
        where += f", groups {','.join(s.groups)}"
    what = "every entity" if s.entities is None else ", ".join(s.entities)
    when = "no express sweep" if s.every == "off" else f"express every {s.every}"
    return f"{what} of {where}: {when}"


def add_schedule_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedules = sub.add_parser(
        "schedules", help="express schedules per entity, server and server groups"
    )
    ssub = schedules.add_subparsers(dest="schedules_command", required=True, metavar="COMMAND")
    put = ssub.add_parser(
        "set",
        help="add or replace a schedule",
        description="The most specific schedule covering a mailbox's entity decides (groups, "
        "then entities, then server); without one, the server's express interval.",
    )
    put.add_argument("name")
    put.add_argument("--server", metavar="NAME", help="this server's mailboxes (default: every)")
    put.add_argument(
        "--group", action="extend", nargs="+", metavar="G", help="only these groups' mailboxes"
    )
    put.add_argument(
        "--entity",
        action="append",
        metavar="E",
        help=f"only these entities ({', '.join(ENTITY_WORDS)}): repeat or comma-separate",
    )
    put.add_argument(
        "--every", required=True, help="express interval (e.g. 5m, 1h), or off: no express sweep"
    )
    put.add_argument("--json", action="store_true", help="machine-readable output")
    put.set_defaults(handler=cmd_schedules_set)
    lst = ssub.add_parser("list", help="list schedules")
    lst.add_argument("--server", metavar="NAME", help="those covering this server")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_schedules_list)
    remove = ssub.add_parser("remove", help="remove a schedule")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_schedules_remove)
