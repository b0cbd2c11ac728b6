"""`item-errors`: list item errors and findings across mailboxes, retry them, acknowledge them."""

from __future__ import annotations

import argparse
from typing import Any

from sync_service.config import Settings, parse_duration
from sync_service.operator.connect import operations
from sync_service.operator.operations import (
    ENTITIES,
    ERROR_KINDS,
    ERROR_STATUSES,
    ErrorQuery,
    InvalidInput,
)
from sync_service.operator.output import print_json, table

EXIT_OK = 0
ID_SHOWN = 16  # characters of an Exchange item id in a table (the JSON has all of it)


def _query(args: argparse.Namespace) -> ErrorQuery:
    from datetime import timedelta

    since = None
    if args.since:
        try:
            since = timedelta(seconds=parse_duration(args.since))
        except ValueError as exc:
            raise InvalidInput("since", str(exc)) from None
    return ErrorQuery(
        mailbox=args.mailbox,
        server=args.server,
        entity=args.entity,
        kind=args.kind,
        reason=args.reason,
        since=since,
        status=args.status,
    )


def _target(args: argparse.Namespace) -> tuple[list[int] | None, ErrorQuery | None]:
    """Ids, or --all with the filters: exactly one of the two."""
    if bool(args.ids) == bool(args.all):
        raise InvalidInput("ids", "give item error ids, or --all (with filters)")
    return (None, _query(args)) if args.all else (args.ids, None)


async def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        page = await ops.list_item_errors(_query(args), cursor=args.cursor, limit=args.limit)
    if args.json:
        print_json(page)
        return EXIT_OK
    rows = [
        [
            e["id"],
            e["created_at"],
            e["mailbox"],
            e["entity"],
            e["kind"],
            e["status"],
            e["direction"],
            item_text(e),
            e["reason"],
        ]
        for e in page.item_errors
    ]
    headers = ["ID", "WHEN", "MAILBOX", "ENTITY", "KIND", "STATUS", "DIRECTION", "ITEM", "REASON"]
    table(headers, rows)
    more = f"; more with --cursor {page.next_cursor}" if page.next_cursor else ""
    print(f"{len(rows)} item error(s){more}")
    return EXIT_OK


def item_text(error: dict[str, Any]) -> str:
    """The item(s) an error is about: its ids, or for an ambiguous match both sides' ids."""
    detail = error.get("detail") or {}
    if error["kind"] == "ambiguous_match":
        crm = ", ".join(detail.get("crm_ids", [])) or "-"
        exchange = ", ".join(_short(i) for i in detail.get("exchange_ids", [])) or "-"
        return f"crm {crm} <-> exchange {exchange}"
    parts = []
    if error["crm_id"]:
        parts.append(f"crm {error['crm_id']}")
    if error["exchange_id"]:
        parts.append(f"exchange {_short(error['exchange_id'])}")
    return ", ".join(parts) or "-"


def _short(item_id: str) -> str:
    return item_id if len(item_id) <= ID_SHOWN else item_id[:ID_SHOWN] + "..."


async def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    ids, query = _target(args)
    async with operations(settings) as ops:
        result = await ops.retry_item_errors(ids, query)
    if args.json:
        print_json(result)
        return EXIT_OK
    print(
        f"{len(result.retried)} item error(s) marked for a retry; "
        f"{len(result.jobs)} pass(es) queued to write them again"
    )
    for job in result.jobs:
        merged = " (merged into a pending job)" if job.coalesced else ""
        print(f"  {job.mailbox}: job {job.job_id}{merged}")
    return EXIT_OK


async def cmd_acknowledge(settings: Settings, args: argparse.Namespace) -> int:
    ids, query = _target(args)
    async with operations(settings) as ops:
        result = await ops.acknowledge_item_errors(ids, query)
    if args.json:
        print_json(result)
    else:
        print(f"{len(result.acknowledged)} item error(s) acknowledged")
    return EXIT_OK


def _filters(parser: argparse.ArgumentParser, *, status_help: str) -> None:
    parser.add_argument("--mailbox", metavar="SMTP", help="only this mailbox's")
    parser.add_argument("--server", metavar="NAME", help="only the mailboxes of this server")
    parser.add_argument("--entity", choices=ENTITIES)
    parser.add_argument("--kind", choices=ERROR_KINDS)
    parser.add_argument("--reason", metavar="TEXT", help="the reason contains TEXT (any case)")
    parser.add_argument("--since", help="recorded within, e.g. 1h, 30m, 2d")
    parser.add_argument("--status", choices=ERROR_STATUSES, help=status_help)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_item_error_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    errors = sub.add_parser(
        "item-errors",
        help="item errors and findings of every mailbox: list, retry, acknowledge",
        description="Kinds: refused (the other side refused a write; the item is skipped "
        "until it changes, or until a retry) and ambiguous_match (an initial match found "
        "several candidates; each item was created on the other side). Open ones count in "
        "sync_item_errors_open until acknowledged or retried.",
    )
    esub = errors.add_subparsers(dest="item_errors_command", required=True, metavar="COMMAND")
    lst = esub.add_parser("list", help="newest first, open ones unless --status says")
    _filters(lst, status_help="default: open")
    lst.add_argument("--limit", type=int, default=100, help="at most (1-1000, default 100)")
    lst.add_argument("--cursor", help="the cursor the previous listing printed")
    lst.set_defaults(handler=cmd_list)
    for name, handler, what, status in (
        (
            "retry",
            cmd_retry,
            "write refused items again: their mailboxes get a pass queued",
            "with --all (default: any not yet retried)",
        ),
        (
            "acknowledge",
            cmd_acknowledge,
            "keep and list, no longer count as open",
            "with --all (default: open)",
        ),
    ):
        action = esub.add_parser(name, help=what)
        action.add_argument("ids", nargs="*", type=int, metavar="ID", help="item error ids")
        action.add_argument("--all", action="store_true", help="every one the filters match")
        _filters(action, status_help=status)
        action.set_defaults(handler=handler)
