"""The console's pages (GET): overview, mailboxes, one mailbox, runs, one run, servers, one
server. Each reads through `Operations` what the CLI and the API read, plus the console's own
read models (`queries.py`), and renders a template."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sync_service.console.base import ops, render
from sync_service.console.queries import ConsoleQueries, MailboxSearch
from sync_service.db.enums import MailboxState
from sync_service.db.store import MAILBOX_STATES
from sync_service.operator.audit import AuditRequest, audit_page
from sync_service.operator.operations import ErrorQuery, InvalidInput, Operations
from sync_service.operator.probe import Step
from sync_service.operator.server_specs import describe

HOURS = 24  # the overview's chart


async def overview(request: web.Request) -> web.Response:
    operations = ops(request)
    queries = ConsoleQueries(operations.pool)
    now = await operations.views.now()
    status = await operations.status()
    servers = {s.id: s.name for s in await operations.servers()}
    throttling = await queries.throttling(now - timedelta(hours=1))
    activity = _hourly(await queries.activity(now - timedelta(hours=HOURS - 1)), now)
    errors = await operations.list_item_errors(ErrorQuery(), limit=10)
    return render(
        request,
        "overview.html",
        status=status,
        throttling=[(name, throttling.get(i)) for i, name in sorted(servers.items())],
        activity=activity,
        chart=json.dumps(_chart(activity)),
        errors=errors.item_errors,
        more_errors=errors.next_cursor is not None,
    )


def _hourly(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """One entry per hour of the last HOURS, zeros where nothing ran."""
    top = now.replace(minute=0, second=0, microsecond=0)
    found = {r["hour"]: r for r in rows}
    hours = [top - timedelta(hours=n) for n in range(HOURS - 1, -1, -1)]
    empty = {"passes": 0, "failed": 0, "writes": 0}
    return [{"hour": h, **{k: int(found.get(h, empty)[k]) for k in empty}} for h in hours]


def _chart(activity: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "labels": [a["hour"].strftime("%H:00") for a in activity],
        "passes": [a["passes"] for a in activity],
        "failed": [a["failed"] for a in activity],
        "writes": [a["writes"] for a in activity],
    }


async def mailboxes(request: web.Request) -> web.Response:
    operations = ops(request)
    queries = ConsoleQueries(operations.pool)
    asked = request.query
    state = asked.get("state") or None
    if state is not None and state not in MAILBOX_STATES:
        raise InvalidInput("state", f"{state!r} is not one of {', '.join(MAILBOX_STATES)}")
    server = asked.get("server") or None
    server_id = (await operations.server(server)).id if server else None
    text = (asked.get("q") or "").strip()[:200] or None
    search = MailboxSearch(text, state, server_id, asked.get("group") or None)
    page = await queries.mailboxes(search, after=asked.get("after", ""))
    return render(
        request,
        "mailboxes.html",
        page=page,
        search=search,
        server=server,
        states=MAILBOX_STATES,
        servers=[s.name for s in await operations.servers()],
        groups=await queries.groups(),
        next_query=None if page.next_after is None else _query(asked, after=page.next_after),
        first_query=_query(asked) if asked.get("after") else None,
    )


def _query(asked: Any, **changed: str) -> str:
    """The list's query string with `changed` (the page's start) instead of its own."""
    kept = {k: v for k, v in asked.items() if k != "after" and v}
    return urlencode({**kept, **changed})


async def mailbox(request: web.Request) -> web.Response:
    operations = ops(request)
    email = request.match_info["email"]
    detail = await operations.show_mailbox(email, runs=10, errors=20)
    box = await operations.mailbox(email)
    folders = await ConsoleQueries(operations.pool).folder_links(box.id)
    audit = await audit_page(operations, AuditRequest(mailbox=email, limit=20))
    return render(
        request,
        "mailbox.html",
        box=detail,
        folders={f["entity"]: f for f in folders},
        audit=audit.entries,
        more_audit=audit.next_cursor is not None,
        recover_plan=await _recover_plan(operations, email),
        can_pass=box.state == MailboxState.ACTIVE,
        can_recover=box.state in (MailboxState.ACTIVE, MailboxState.NEEDS_RECOVERY),
    )


async def _recover_plan(operations: Operations, email: str) -> dict[str, Any] | None:
    """The newest recover dry run of the mailbox with its plan, if one ran lately."""
    for run in await operations.runs(mailbox=email, limit=50):
        if run["kind"] == "recover" and run["dry_run"]:
            return await operations.run(int(run["id"]))
    return None


async def runs(request: web.Request) -> web.Response:
    operations = ops(request)
    email = request.query.get("mailbox") or None
    found = await operations.runs(mailbox=email, limit=100)
    return render(request, "runs.html", runs=found, mailbox=email)


async def run(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise InvalidInput("id", "a run id is a positive integer")
    found = await ops(request).run(int(raw))
    return render(request, "run.html", run=found)


async def servers(request: web.Request) -> web.Response:
    operations = ops(request)
    counts = await ConsoleQueries(operations.pool).server_mailboxes()
    rows = [(describe(s), counts.get(s.id, {})) for s in await operations.servers()]
    return render(request, "servers.html", servers=rows)


async def server(
    request: web.Request, tested: str | None = None, steps: list[Step] | None = None
) -> web.Response:
    """One server's settings (secrets as where they come from), and a probe's steps."""
    operations = ops(request)
    found = await operations.server(request.match_info["name"])
    counts = (await ConsoleQueries(operations.pool).server_mailboxes()).get(found.id, {})
    return render(
        request, "server.html", server=describe(found), counts=counts, tested=tested, steps=steps
    )
