"""`sync-service`: one entry point with subcommands.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or input. Operator commands log
warnings and errors only (their result is their output) unless SYNC_LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import uvloop

from sync_service.config import ConfigError, Settings, load_settings
from sync_service.db.migrations import MigrationError
from sync_service.operator.cli_audit import add_audit_command
from sync_service.operator.cli_targets import add_operator_commands
from sync_service.operator.operations import Conflict, InvalidInput, NotFound
from sync_service.process.logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("sync_service")

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
URL_SCHEMES = ("postgresql", "postgres")  # the two libpq and asyncpg accept


def database_url_problem(url: str | None) -> str | None:
    """What makes `url` unusable as SYNC_DATABASE_URL, or None (None: the embedded database).

    Checked before the first connection, so that a typo is one line and exit 2 instead of a
    traceback from the driver. The message repeats no part of the URL: it may hold a password.
    """
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        return f"not a URL ({exc})"
    if parts.scheme not in URL_SCHEMES:
        return "must be a URL postgresql://user@host:port/database (postgres:// too)"
    hosts = parts.netloc.rpartition("@")[2]
    ports = [_port_of(host) for host in hosts.split(",") if host]
    ports += [p for value in parse_qs(parts.query).get("port", []) for p in value.split(",")]
    if any(p and not _valid_port(p) for p in ports):
        # Not echoed: a password holding "/" or "?" puts part of itself where a port stands.
        return "a port is not a number from 1 to 65535"
    return None


def _port_of(host: str) -> str:
    """The port of `host[:port]` or `[v6][:port]`; empty when none is given."""
    if host.startswith("["):
        return host.partition("]")[2].removeprefix(":")
    return host.rpartition(":")[2] if ":" in host else ""


def _valid_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


async def cmd_run(settings: Settings, _: argparse.Namespace) -> int:
    from sync_service.process.app import run_service

    await run_service(settings)
    return EXIT_OK


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sync_service.db.embedded import database_url
    from sync_service.db.migrations import run_migrations

    async with database_url(settings) as url:
        applied = await run_migrations(url)
    if args.json:
        import json

        print(json.dumps({"applied": applied}))
    elif applied:
        print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        print("database is up to date")
    return EXIT_OK


async def cmd_check_config(settings: Settings, args: argparse.Namespace) -> int:
    """The settings were read and checked before any command runs: say so, with the field map."""
    if args.json:
        import json

        print(json.dumps(settings.field_map.describe()))
        return EXIT_OK
    entities = settings.field_map.describe()["entities"]
    off = [
        f"{e}.{f}" for e, rules in entities.items() for f, r in rules.items() if not r["enabled"]
    ]
    shown = f" (off: {', '.join(off)})" if off else ""
    print(f"configuration ok; field map: {settings.field_map.source}{shown}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-service",
        description="Two-way sync of CRM contacts, appointments and tasks with Exchange mailboxes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="migrate, then run the service until SIGTERM")
    run.set_defaults(handler=cmd_run)
    migrate = sub.add_parser("migrate", help="apply pending database migrations and exit")
    migrate.add_argument("--json", action="store_true", help="machine-readable output")
    migrate.set_defaults(handler=cmd_migrate)
    check = sub.add_parser(
        "check-config",
        help="read and check every setting and the field map (SYNC_FIELD_MAP_FILE), then exit",
    )
    check.add_argument("--json", action="store_true", help="the field map in effect as JSON")
    check.set_defaults(handler=cmd_check_config)
    add_operator_commands(sub)
    add_audit_command(sub)
    for name, command in sub.choices.items():
        if name not in ("run", "migrate"):
            command.set_defaults(operator=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"sync-service: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = database_url_problem(settings.database.resolved_url())
    if problem is not None:
        print(f"sync-service: invalid configuration: SYNC_DATABASE_URL: {problem}", file=sys.stderr)
        return EXIT_USAGE
    level = settings.logging.log_level
    if getattr(args, "operator", False) and level != "DEBUG":
        # An operator command prints its own result; its INFO events would only repeat it.
        level = max(level, "WARNING", key=logging.getLevelName)
    setup_logging(level, settings.logging.log_format)
    handler: Command = args.handler
    try:
        return uvloop.run(handler(settings, args))
    except (InvalidInput, NotFound) as exc:
        print(f"sync-service: {exc.field}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except Conflict as exc:
        print(f"sync-service: {exc.field}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except asyncpg.ClientConfigurationError as exc:  # what the driver alone finds wrong in it
        print(f"sync-service: invalid configuration: SYNC_DATABASE_URL: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MigrationError, asyncpg.PostgresError) as exc:
        print(f"sync-service: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as exc:  # found only once the database answers (e.g. the pool size)
        print(f"sync-service: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except (TimeoutError, OSError) as exc:
        print(f"sync-service: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
