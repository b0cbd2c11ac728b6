"""Sync filters for operators: what both the CLI (`servers set`, `mailboxes set --filter-…`)
and the API (`/api/v1/servers/{name}/filters`, `/api/v1/mailboxes/{email}/filters`) call.

A server's setting is the default of its mailboxes; a mailbox's setting overrides it key by key
(sync_service/planning/filters.py says what each key keeps out). The CLI's flags change the
keys they name and leave the others as they are.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import asyncpg

from sync_service.db.filters import FilterStore, Setting
from sync_service.operator.operations import NotFound
from sync_service.operator.server_specs import InvalidInput
from sync_service.planning.filters import FilterError

RANGE_WORD = r"^-\d+d:"  # the start of a calendar range on the command line


async def server_filters(pool: asyncpg.Pool, name: str) -> Setting:
    found = await FilterStore(pool).server_setting(name)
    if found is None:
        raise NotFound("name", f"no server named {name!r}")
    return found


async def set_server_filters(
    pool: asyncpg.Pool, name: str, changes: Mapping[str, object], *, replace: bool = False
) -> Setting:
    """Change the keys `changes` gives (`replace`: the setting becomes `changes`)."""
    current = {} if replace else await server_filters(pool, name)
    with _as_input():
        stored = await FilterStore(pool).set_server_setting(name, {**current, **changes})
    if stored is None:
        raise NotFound("name", f"no server named {name!r}")
    return stored


async def mailbox_filters(pool: asyncpg.Pool, email: str) -> dict[str, Any]:
    """A mailbox's own setting, its server's, the filter in effect and its parked pairs."""
    found = await FilterStore(pool).mailbox_detail(email)
    if found is None:
        raise NotFound("mailbox", f"no mailbox {email!r}")
    return found


async def set_mailbox_filters(
    pool: asyncpg.Pool,
    email: str,
    changes: Mapping[str, object],
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """Override the keys `changes` gives (`replace`: the mailbox's setting becomes `changes`,
    `{}` inheriting everything from its server)."""
    store = FilterStore(pool)
    found = await store.mailbox_setting(email)
    if found is None:
        raise NotFound("mailbox", f"no mailbox {email!r}")
    current = {} if replace else found[0]
    with _as_input():
        await store.set_mailbox_setting(email, {**current, **changes})
    return await mailbox_filters(pool, email)


@contextmanager
def _as_input() -> Iterator[None]:
    """A setting refused by the filter's rules, as the operator's bad input (exit code 2,
    a problem naming the key)."""
    try:
        yield
    except FilterError as exc:
        raise InvalidInput(exc.field, exc.message) from None


def filters_text(setting: Mapping[str, object]) -> str:
    """One line for humans: what a setting keeps in or out."""
    parts = []
    if isinstance(categories := setting.get("categories"), list):
        parts.append(f"categories {', '.join(map(str, categories)) or 'any'}")
    if "exclude_private" in setting:
        parts.append("private excluded" if setting["exclude_private"] else "private included")
    if "calendar_range" in setting:
        parts.append(f"calendar {setting['calendar_range'] or 'any time'}")
    if isinstance(block := setting.get("block"), list):
        parts.append(f"blocked {', '.join(map(str, block)) or 'none'}")
    return "; ".join(parts) or "-"


# -- the CLI ---------------------------------------------------------------------------------


def add_filter_options(parser: argparse.ArgumentParser, *, mailbox: bool) -> None:
    """The filter flags of `servers set` and `mailboxes set`."""
    which = "this mailbox (overrides its server's)" if mailbox else "the server's mailboxes"
    # A range starts with '-' ("-30d:+365d"): argparse takes such a word for an option unless
    # it looks like a negative number, so ranges are made to look like one. No option of
    # these commands looks like a number, so nothing else changes.
    matcher = getattr(parser, "_negative_number_matcher", None)
    if isinstance(matcher, re.Pattern):
        parser._negative_number_matcher = re.compile(f"{RANGE_WORD}|{matcher.pattern}")
    group = parser.add_argument_group(
        f"sync filters of {which}",
        "An item out of a filter is left as it is on both sides, never deleted because of it. "
        "A change applies to each item as it next changes, and to every item at the next "
        "complete pass (sync --mode complete applies it at once).",
    )
    group.add_argument(
        "--filter-categories",
        metavar="LIST",
        help="sync only items with one of these categories (comma-separated; '' for any)",
    )
    private = group.add_mutually_exclusive_group()
    private.add_argument(
        "--exclude-private",
        dest="exclude_private",
        action="store_const",
        const=True,
        help="keep private appointments out of the sync",
    )
    private.add_argument(
        "--include-private",
        dest="exclude_private",
        action="store_const",
        const=False,
        help="sync private appointments too",
    )
    group.add_argument(
        "--calendar-range",
        metavar="RANGE",
        help="sync appointments from N days back to M days ahead, e.g. -30d:+365d; none: any",
    )
    for flag, what, note in (
        ("--block-domain", "DOMAIN", "this domain or a subdomain of it"),
        ("--block-email", "ADDRESS", "this address"),
    ):
        group.add_argument(
            flag,
            metavar=what,
            action="append",
            help=f"keep contacts with an address of {note} out (repeatable; together they "
            "replace the block list)",
        )
    group.add_argument("--no-block", action="store_true", help="block no address or domain")
    if mailbox:
        group.add_argument(
            "--inherit-filters",
            action="store_true",
            help="drop this mailbox's own filter setting first (every key from its server)",
        )


def filter_changes(args: argparse.Namespace) -> dict[str, object]:
    """The filter keys the command line names, as a partial setting."""
    changes: dict[str, object] = {}
    if args.filter_categories is not None:
        changes["categories"] = args.filter_categories
    if args.exclude_private is not None:
        changes["exclude_private"] = args.exclude_private
    if args.calendar_range is not None:
        span = args.calendar_range.strip()
        changes["calendar_range"] = None if span.lower() in ("", "none") else span
    blocked = [*(args.block_domain or ()), *(args.block_email or ())]
    if blocked and args.no_block:
        raise InvalidInput("block", "give --no-block or addresses and domains to block, not both")
    if blocked or args.no_block:
        changes["block"] = blocked
    return changes


def wants_filters(args: argparse.Namespace) -> bool:
    return bool(filter_changes(args)) or bool(getattr(args, "inherit_filters", False))


def describe_mailbox(detail: Mapping[str, Any]) -> list[str]:
    """`mailboxes show`'s lines about filters."""
    parked = ", ".join(f"{n} {e}(s)" for e, n in sorted(detail["set_aside"].items())) or "none"
    return [
        f"{'filters:':16}{filters_text(detail['effective'])}",
        f"{'  own:':16}{filters_text(detail['own'])}",
        f"{'  set aside:':16}{parked} (pairs that left the filter, left as they are)",
    ]
