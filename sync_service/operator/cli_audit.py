"""`sync-service audit`: the writes the sync made, newest first, by mailbox, record and time."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from sync_service.config import Settings
from sync_service.operator.audit import AuditPage, AuditRequest, audit_page
from sync_service.operator.connect import operations
from sync_service.operator.output import print_json, table

EXIT_OK = 0
SHOWN_MAX = 40  # characters of one value in the table; --json gives the stored value
# json.dumps escapes C0 controls; DEL and C1 controls would reach the terminal raw.
_UNPRINTABLE = re.compile(r"[\x7f-\x9f]")


async def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    asked = AuditRequest(args.mailbox, args.record, args.since, args.until, args.limit, args.cursor)
    async with operations(settings) as ops:
        page = await audit_page(ops, asked)
    if args.json:
        print_json({"entries": page.entries, "next_cursor": page.next_cursor})
    else:
        _print_page(page)
    return EXIT_OK


def _print_page(page: AuditPage) -> None:
    rows = [
        [
            e["at"],
            e["mailbox"],
            e["entity"],
            e["crm_id"],
            e["side"],
            e["operation"],
            changes_text(e["changes"]),
            why_text(e),
        ]
        for e in page.entries
    ]
    table(["AT", "MAILBOX", "ENTITY", "CRM ID", "SIDE", "OP", "CHANGES", "WHY"], rows)
    if page.next_cursor:
        print(f"more: the same command with --cursor {page.next_cursor}")


def changes_text(changes: dict[str, dict[str, Any]]) -> str:
    """`field: before -> after; ...` (a create's fields, which have no before: `field: value`)."""
    parts = []
    for name, change in changes.items():
        after = shown(change.get("after"))
        if "before" in change:
            parts.append(f"{name}: {shown(change['before'])} -> {after}")
        else:
            parts.append(f"{name}: {after}")
    return "; ".join(parts) or "-"


def why_text(entry: dict[str, Any]) -> str:
    conflict = entry["conflict"]
    if not conflict or not conflict["losing"]:
        return str(entry["reason"])
    lost = ", ".join(f"{k}={shown(v)}" for k, v in conflict["losing"].items())
    return f"{entry['reason']} (lost: {lost})"


def shown(value: Any) -> str:
    """A value as JSON text, escaped (no control character reaches the terminal) and cut."""
    text = json.dumps(value, ensure_ascii=False)
    text = _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def add_audit_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser(
        "audit",
        help="the writes the sync made: side, fields before -> after, why",
        description="The audit trail, newest first. TIME is ISO 8601 (2026-12-01, "
        "2026-12-01T10:00:00Z; UTC unless it names an offset) or a duration back from now "
        "(90m, 2h, 7d). Rows older than SYNC_RETENTION_DAYS are purged.",
    )
    audit.add_argument("--mailbox", metavar="SMTP", help="one mailbox's writes")
    audit.add_argument("--record", metavar="ID", help="one record's: its CRM or Exchange id")
    audit.add_argument("--since", metavar="TIME", help="from this time on")
    audit.add_argument("--until", metavar="TIME", help="before this time")
    audit.add_argument("--limit", type=int, default=100, help="page size (default 100)")
    audit.add_argument("--cursor", metavar="C", help="where the previous page said to go on")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(handler=cmd_audit)
