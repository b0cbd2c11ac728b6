"""The operator commands of `sync-service`: thin shells over `sync_service.operator.operations`.

They work directly on the database (SYNC_DATABASE_URL, or the embedded one), applying pending
migrations first as `run` does, so that a fresh installation can be set up before it runs.
"""

from __future__ import annotations

import argparse
import sys

from ews_client import ExchangeError
from sync_service.config import Settings
from sync_service.db.store import MAILBOX_STATES, Server
from sync_service.operator import probe
from sync_service.operator.cli_item_errors import add_item_error_commands, item_text
from sync_service.operator.cli_records import add_record_commands
from sync_service.operator.cli_sync import add_sync_commands
from sync_service.operator.connect import operations
from sync_service.operator.filters import (
    add_filter_options,
    describe_mailbox,
    filter_changes,
    filters_text,
    server_filters,
    set_mailbox_filters,
    set_server_filters,
    wants_filters,
)
from sync_service.operator.folder_link_views import folders_text
from sync_service.operator.folder_links import add_folder_link_commands
from sync_service.operator.operations import Conflict, InvalidInput, NotFound, mailbox_json
from sync_service.operator.output import print_json, read_input, table
from sync_service.operator.server_specs import AUTH_KINDS, ServerChanges, describe

EXIT_OK, EXIT_FAILED = 0, 1
MODE_CHOICES = ("two-way", "crm-to-exchange", "exchange-to-crm", "off")
# Where the service accepts secrets from (the deployment's policy, checked on add and use).
_ENV = "; its name starts with SYNC_SECRET_ENV_PREFIX (default EXCHANGE_)"
_DIR = ", an absolute path inside SYNC_SECRET_DIR (default /run/secrets)"


# servers
def _changes(args: argparse.Namespace) -> ServerChanges:
    return ServerChanges(
        backend=args.backend,
        url=args.url,
        auth_kind=args.auth,
        username=args.username,
        tenant=args.tenant,
        client_id=args.client_id,
        authority=args.authority,
        secret_env=args.secret_env,
        secret_file=args.secret_file,
        ca_file=args.ca_file,
        time_zone=args.timezone,
        express_interval=args.express_interval,
        complete_at=args.complete_at,
        max_concurrency=args.max_concurrency,
        rate_per_second=args.rate,
        scope=args.scope,
        certificate_file=args.certificate_file,
    )


def _print_server(args: argparse.Namespace, server: Server, verb: str) -> None:
    if args.json:
        print_json(describe(server))
    else:
        print(f"server {server.name} {verb}")


async def cmd_servers_add(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        server = await ops.add_server(args.name, _changes(args))
    _print_server(args, server, "added")
    return EXIT_OK


async def cmd_servers_update(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        server = await ops.update_server(args.name, _changes(args))
    _print_server(args, server, "updated")
    return EXIT_OK


async def cmd_servers_remove(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        await ops.remove_server(args.name)
    print(f"server {args.name} removed")
    return EXIT_OK


async def cmd_servers_list(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        servers = [describe(s) for s in await ops.servers()]
    if args.json:
        print_json(servers)
        return EXIT_OK
    columns = ["name", "backend", "url", "auth_kind", "time_zone", "express_interval"]
    rows = [[s[c] for c in columns] + [s["complete_at"], s["max_concurrency"]] for s in servers]
    table(
        ["NAME", "BACKEND", "URL", "AUTH", "TIMEZONE", "EXPRESS", "COMPLETE", "CONCURRENCY"], rows
    )
    return EXIT_OK


async def cmd_servers_show(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        described = describe(await ops.server(args.name))
        described["filters"] = await server_filters(ops.pool, args.name)
    if args.json:
        print_json(described)
        return EXIT_OK
    described["filters"] = filters_text(described["filters"])
    for key, value in described.items():
        print(f"{key + ':':18}{'-' if value is None else value}")
    return EXIT_OK


async def cmd_servers_set(settings: Settings, args: argparse.Namespace) -> int:
    """Change the sync filters of a server's mailboxes (the keys the flags name)."""
    async with operations(settings) as ops:
        setting = await set_server_filters(ops.pool, args.name, filter_changes(args))
    if args.json:
        print_json({"server": args.name, "filters": setting})
    else:
        print(f"server {args.name}: filters {filters_text(setting)}")
    return EXIT_OK


async def cmd_servers_test(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        server = await ops.server(args.name)
        mailbox = args.mailbox
        if mailbox is None:
            page = await ops.list_mailboxes(server=server.name, state="active", limit=1)
            if not page.mailboxes:
                raise InvalidInput(
                    "mailbox", f"server {server.name} has no active mailbox; give --mailbox"
                )
            mailbox = page.mailboxes[0]["email"]
        else:
            await ops.mailbox(mailbox)
    try:
        opener = probe.default_opener()
    except ImportError as exc:
        print(f"sync-service: backends are not available: {exc}", file=sys.stderr)
        return EXIT_FAILED
    steps = await probe.probe(server, mailbox, settings, opener)
    if args.json:
        print_json({"server": server.name, "mailbox": mailbox, "steps": steps})
    else:
        table(["STEP", "RESULT", "DETAIL"], [[s.name, s.status, s.detail] for s in steps])
    return EXIT_OK if all(s.status == "ok" for s in steps) else EXIT_FAILED


# mailboxes
async def cmd_mailboxes_import(settings: Settings, args: argparse.Namespace) -> int:
    text = read_input(args.file)
    async with operations(settings) as ops:
        report = await ops.import_mailboxes(text)
    for error in report.invalid:
        print(f"{args.file}:{error.line}: {error.message} (row skipped)", file=sys.stderr)
    if args.json:
        print_json(report)
    else:
        print(
            f"imported {report.inserted + report.updated} mailbox(es): {report.inserted} new, "
            f"{report.updated} updated, {len(report.invalid)} invalid row(s) skipped"
        )
    # Invalid rows fail the command (exit 1) so that scripts notice, though valid rows are in.
    return EXIT_FAILED if report.invalid else EXIT_OK


async def cmd_mailboxes_list(settings: Settings, args: argparse.Namespace) -> int:
    found: list[dict[str, object]] = []
    async with operations(settings) as ops:
        cursor = None
        while True:
            page = await ops.list_mailboxes(
                state=args.state, groups=args.group, server=args.server, cursor=cursor, limit=1000
            )
            found.extend(page.mailboxes)
            cursor = page.next_cursor
            if cursor is None:
                break
    if args.json:
        print_json(found)
        return EXIT_OK
    columns = ["email", "crm_user_id", "server", "group", "state", "contacts", "calendar", "tasks"]
    table(
        [c.upper() for c in columns] + ["REASON"],
        [[m[c] for c in columns] + [m["reason"]] for m in found],
    )
    return EXIT_OK


async def cmd_mailboxes_show(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        detail = await ops.show_mailbox(args.mailbox)
    if args.json:
        print_json(detail)
        return EXIT_OK
    for key in ("email", "crm_user_id", "server", "group", "state", "reason", "failure_count"):
        print(f"{key + ':':16}{detail[key] if detail[key] is not None else '-'}")
    modes = f"contacts {detail['contacts']}, calendar {detail['calendar']}, tasks {detail['tasks']}"
    print(f"{'sync:':16}{modes}")
    print(f"{'items:':16}" + ", ".join(f"{n} {e}(s)" for e, n in detail["items"].items()))
    print("\n".join(describe_mailbox(detail["filters"])))
    for line in folders_text(detail["folders"]):  # linked entities, their state and error
        print(line)
    jobs = ", ".join(_job_text(job) for job in detail["open_jobs"]) or "-"
    print(f"{'open jobs:':16}{jobs}")
    print("\nlast passes:")
    table(
        ["STARTED", "KIND", "OUTCOME", "REQUESTS", "THROTTLED", "ERROR"],
        [
            [r["started_at"], r["kind"], r["outcome"], r["requests"], r["throttled"], r["error"]]
            for r in detail["last_runs"]
        ],
    )
    print("\nrecent item errors (sync-service item-errors list --mailbox SMTP):")
    columns = ("id", "created_at", "entity", "kind", "status", "direction")
    table(
        ["ID", "WHEN", "ENTITY", "KIND", "STATUS", "DIRECTION", "ITEM", "REASON"],
        [[*(e[c] for c in columns), item_text(e), e["reason"]] for e in detail["item_errors"]],
    )
    return EXIT_OK


def _job_text(job: dict[str, object]) -> str:
    dry = " dry run" if job["dry_run"] else ""
    return f"{job['kind']}{dry} ({job['status']}, from {job['source']})"


async def cmd_mailboxes_state(settings: Settings, args: argparse.Namespace) -> int:
    enable = args.mailboxes_command == "enable"
    async with operations(settings) as ops:
        mailbox = await ops.set_state(args.mailbox, enable, getattr(args, "reason", None))
        server = (await ops.server_names())[mailbox.server_id]
    if args.json:
        print_json(mailbox_json(mailbox, server))
    else:
        print(f"mailbox {mailbox.email} is {mailbox.state}")
    return EXIT_OK


async def cmd_mailboxes_set(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        mailbox = await ops.set_options(
            args.mailbox,
            group=args.group,
            set_group=args.group is not None or args.no_group,
            contacts=args.contacts,
            calendar=args.calendar,
            tasks=args.tasks,
        )
        server = (await ops.server_names())[mailbox.server_id]
        if wants_filters(args):
            changes, again = filter_changes(args), args.inherit_filters
            filters = await set_mailbox_filters(ops.pool, args.mailbox, changes, replace=again)
    if args.json:
        print_json(mailbox_json(mailbox, server))
    else:
        group = mailbox.server_group or "-"
        print(
            f"mailbox {mailbox.email}: group {group}, contacts {mailbox.contacts_mode}, "
            f"calendar {mailbox.calendar_mode}, tasks {mailbox.tasks_mode}"
        )
        if wants_filters(args):
            print(f"filters {filters_text(filters['effective'])}")
    return EXIT_OK


async def cmd_mailboxes_move(settings: Settings, args: argparse.Namespace) -> int:
    """Carry mailboxes to another server, one after another; each one's outcome is printed."""
    # Imported here, as `servers test` does: only the commands that reach Exchange load it.
    from sync_service.operator.moves import MailboxMover, parse_move_csv
    from sync_service.runtime.backends import Backends

    if args.csv is not None:
        if args.mailbox is not None or args.to is not None:
            raise InvalidInput("csv", "give either SMTP --to SERVER or --csv FILE, not both")
        wanted = parse_move_csv(read_input(args.csv))
    elif args.mailbox is None or args.to is None:
        raise InvalidInput("to", "give SMTP --to SERVER, or --csv FILE")
    else:
        wanted = [(args.mailbox, args.to)]
    results: list[dict[str, object]] = []
    async with operations(settings) as ops, Backends(settings) as backends:
        mover = MailboxMover(ops.store, backends)
        for email, server in wanted:
            try:
                report = await mover.move(email, server)
            except (Conflict, NotFound, ExchangeError) as exc:
                text = exc.message if isinstance(exc, Conflict | NotFound) else str(exc)
                results.append({"email": email, "server": server, "moved": False, "error": text})
                continue
            results.append({"email": email, "server": server, "moved": True,
                            "from": report.source, "links": report.linked,
                            "requests": report.requests})  # fmt: skip
    if args.json:
        print_json(results)
    else:
        for one in results:
            if one["moved"]:
                print(f"{one['email']}: moved from {one['from']} to {one['server']}, links "
                      f"kept {one['links']} ({one['requests']} requests)")  # fmt: skip
            else:
                print(f"{one['email']}: not moved to {one['server']}: {one['error']}",
                      file=sys.stderr)  # fmt: skip
    return EXIT_OK if all(one["moved"] for one in results) else EXIT_FAILED


def _server_options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument("name", help="the server's name (letters, digits, . _ -)")
    parser.add_argument("--backend", choices=("ews", "graph"), required=adding)
    parser.add_argument("--url", required=adding, help="EWS endpoint or Graph base URL")
    parser.add_argument(
        "--auth",
        choices=AUTH_KINDS,
        help="default: implied; ntlm and negotiate are Exchange Server's Windows authentication "
        "(negotiate: Kerberos, else NTLM inside SPNEGO)",
    )
    parser.add_argument("--username", help="service account (basic / ntlm / negotiate)")
    secret = parser.add_mutually_exclusive_group()
    for flag, dest, what in (
        ("--password-env", "secret_env", f"environment variable holding the password{_ENV}"),
        ("--password-file", "secret_file", f"file holding the password{_DIR}"),
        ("--secret-env", "secret_env", f"environment variable holding the client secret{_ENV}"),
        ("--secret-file", "secret_file", f"file holding the client secret{_DIR}"),
        (
            "--certificate-file",
            "certificate_file",
            "oauth: PEM file with the client certificate and its private key (instead of a "
            f"secret){_DIR}",
        ),
    ):
        secret.add_argument(flag, dest=dest, metavar="VAR" if "env" in flag else "FILE", help=what)
    parser.add_argument("--tenant", help="Entra ID tenant (oauth)")
    parser.add_argument("--client-id", help="application (client) id (oauth)")
    parser.add_argument("--authority", help="token authority URL (oauth)")
    parser.add_argument(
        "--scope",
        help="oauth token scope, https://<resource>/.default (default: the backend's; national "
        "clouds e.g. https://graph.microsoft.us/.default)",
    )
    parser.add_argument(
        "--ca-file", help=f"CA bundle for the server's TLS certificate{_DIR}; '' removes it"
    )
    parser.add_argument("--timezone", help="IANA zone of the schedules (default UTC)")
    parser.add_argument("--express-interval", help="express sweep interval, e.g. 15m")
    parser.add_argument("--complete-at", help="local time of the daily complete pass, HH:MM")
    parser.add_argument("--max-concurrency", type=int, help="concurrent requests")
    parser.add_argument("--rate", type=float, help="requests per second (0 < rate <= 1000000)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    servers = sub.add_parser("servers", help="sync targets: add, list, show, update, remove, test")
    ssub = servers.add_subparsers(dest="servers_command", required=True, metavar="COMMAND")
    add = ssub.add_parser("add", help="register an Exchange server (EWS or Graph)")
    _server_options(add, adding=True)
    add.set_defaults(handler=cmd_servers_add)
    update = ssub.add_parser("update", help="change a server's settings")
    _server_options(update, adding=False)
    update.set_defaults(handler=cmd_servers_update)
    remove = ssub.add_parser("remove", help="remove a server that has no mailboxes")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_servers_remove)
    lst = ssub.add_parser("list", help="list servers")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_servers_list)
    show = ssub.add_parser("show", help="one server's settings (where its secret comes from)")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_servers_show)
    sset = ssub.add_parser("set", help="a server's sync filters (its mailboxes' defaults)")
    sset.add_argument("name")
    add_filter_options(sset, mailbox=False)
    sset.add_argument("--json", action="store_true", help="machine-readable output")
    sset.set_defaults(handler=cmd_servers_set)
    test = ssub.add_parser("test", help="connect, authenticate, impersonate, write a probe")
    test.add_argument("name")
    test.add_argument("--mailbox", metavar="SMTP", help="default: the server's first mailbox")
    test.add_argument("--json", action="store_true", help="machine-readable output")
    test.set_defaults(handler=cmd_servers_test)
    _mailbox_commands(sub)
    add_sync_commands(sub)
    add_item_error_commands(sub)


def _mailbox_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    boxes = sub.add_parser("mailboxes", help="mailboxes: import, list, show, enable, set, move")
    msub = boxes.add_subparsers(dest="mailboxes_command", required=True, metavar="COMMAND")
    imp = msub.add_parser(
        "import",
        help="upsert mailboxes from CSV",
        description="Columns crm_user_id,email,server and optional group,contacts,calendar,"
        "tasks. Invalid rows are reported with their line and skipped; the valid ones are "
        "imported in one transaction. Exit 1 when any row was invalid, 2 when the file is.",
    )
    imp.add_argument("file", help="CSV file, or - for standard input")
    imp.add_argument("--json", action="store_true", help="machine-readable output")
    imp.set_defaults(handler=cmd_mailboxes_import)
    add_folder_link_commands(msub)
    add_record_commands(sub)  # shared (firm) records: records link|unlink|show
    lst = msub.add_parser("list", help="list mailboxes")
    lst.add_argument(
        "--state",
        choices=MAILBOX_STATES,
        help="moved: Exchange moved it to another server (REASON names the command to run)",
    )
    lst.add_argument("--group", action="extend", nargs="+", help="server group(s)")
    lst.add_argument("--server", help="only this server's mailboxes")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_mailboxes_list)
    show = msub.add_parser("show", help="state, reason, last passes, item counts, errors")
    show.add_argument("mailbox", metavar="SMTP")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_mailboxes_show)
    for verb in ("enable", "disable"):
        state = msub.add_parser(verb, help=f"{verb} a mailbox")
        state.add_argument("mailbox", metavar="SMTP")
        if verb == "disable":
            state.add_argument("--reason", help="recorded as the state's reason")
        state.add_argument("--json", action="store_true", help="machine-readable output")
        state.set_defaults(handler=cmd_mailboxes_state)
    move = msub.add_parser(
        "move",
        help="carry mailboxes to another server (e.g. to Exchange Online), links kept",
        description="After Exchange moved a mailbox (Exchange Server to Exchange Online, or "
        "back), serve it from its new server without a new initial pass: every link is "
        "re-pointed at the item carrying its CRM id there, the marker is carried over and "
        "the first pass on the new server reads every folder in full. Exit 1 when any "
        "mailbox could not be moved (it stays on its old server).",
    )
    move.add_argument("mailbox", metavar="SMTP", nargs="?")
    move.add_argument("--to", metavar="SERVER", help="the server that holds the mailbox now")
    move.add_argument("--csv", metavar="FILE", help="columns email,server; - for standard input")
    move.add_argument("--json", action="store_true", help="machine-readable output")
    move.set_defaults(handler=cmd_mailboxes_move)
    opts = msub.add_parser("set", help="group, per-entity sync directions, sync filters")
    opts.add_argument("mailbox", metavar="SMTP")
    add_filter_options(opts, mailbox=True)
    group = opts.add_mutually_exclusive_group()
    group.add_argument("--group", help="server group")
    group.add_argument("--no-group", action="store_true", help="remove from its group")
    for entity in ("contacts", "calendar", "tasks"):
        opts.add_argument(f"--{entity}", choices=MODE_CHOICES)
    opts.add_argument("--json", action="store_true", help="machine-readable output")
    opts.set_defaults(handler=cmd_mailboxes_set)
