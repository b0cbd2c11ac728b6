"""`sync`, `recover`, `runs` and `status`: request passes, follow them, and look at the service."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from sync_service.config import Settings, parse_duration
from sync_service.operator.cli_schedules import add_schedule_commands
from sync_service.operator.connect import operations
from sync_service.operator.entity_names import ENTITY_WORDS
from sync_service.operator.operations import InvalidInput, Operations, SyncRequest
from sync_service.operator.output import Progress, cell, items_written, print_json, table

EXIT_OK, EXIT_FAILED = 0, 1
POLL_SECONDS = 0.5
FAILED_OUTCOMES = ("failed", "guarded", "moved")


def _seconds(field: str, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


async def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    timeout = _seconds("timeout", args.timeout)
    async with operations(settings) as ops:
        request = await ops.request_sync(
            mailbox=args.mailbox,
            groups=args.group,
            server=args.server,
            mode=args.mode,
            dry_run=args.dry_run,
            entities=args.entity,
        )
        return await _follow(ops, request, args, timeout)


async def cmd_recover(settings: Settings, args: argparse.Namespace) -> int:
    timeout = _seconds("timeout", args.timeout)
    async with operations(settings) as ops:
        request = await ops.recover(args.mailbox, dry_run=args.dry_run)
        return await _follow(ops, request, args, timeout)


async def _follow(
    ops: Operations, request: SyncRequest, args: argparse.Namespace, timeout: float
) -> int:
    if not args.wait:
        if args.json:
            print_json(request)
        else:
            _print_queued(request)
        return EXIT_OK
    states = await _wait(ops, request, timeout, quiet=args.json)
    runs = await ops.runs_of(request)
    failed = any(s == "failed" for s in states.values()) or any(
        r["outcome"] in FAILED_OUTCOMES for r in runs
    )
    unfinished = [i for i, s in states.items() if s in ("queued", "running")]
    if args.json:
        print_json({"request": request, "jobs": states, "runs": runs})
    else:
        _print_runs(runs)
        _print_plans(runs)
        if unfinished:
            print(f"{len(unfinished)} pass(es) still unfinished after {args.timeout}")
    return EXIT_FAILED if failed or unfinished else EXIT_OK


def _print_queued(request: SyncRequest) -> None:
    new = sum(not j.coalesced for j in request.jobs)
    dry = " (dry run)" if request.dry_run else ""
    if request.entities is not None:
        dry += f" of {', '.join(request.entities)}"
    print(
        f"queued {request.kind}{dry} for {len(request.jobs)} mailbox(es): {new} new job(s), "
        f"{len(request.jobs) - new} merged into pending ones"
    )
    for skipped in request.skipped:
        print(f"skipped {skipped['mailbox']}: {skipped['state']}")


async def _wait(
    ops: Operations, request: SyncRequest, timeout: float, *, quiet: bool
) -> dict[int, str]:
    """Poll the jobs until every one is done or failed, or the timeout passes."""
    ids = sorted({j.job_id for j in request.jobs})
    progress = None if quiet else Progress(len(ids), f"{request.kind} pass(es) finished")
    deadline = time.monotonic() + timeout
    states: dict[int, str] = {}
    while True:
        found = await ops.job_states(ids)
        # A job row purged by retention has ended too.
        states = {i: found.get(i, "done") for i in ids}
        finished = sum(s in ("done", "failed") for s in states.values())
        if progress:
            progress.update(finished)
        if finished == len(ids) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    if progress:
        progress.close()
    return states


def _scope(run: dict[str, Any]) -> str:
    """The KIND column's note of a run of some entities: ' of contact,task'."""
    entities = run.get("entities")
    return f" of {','.join(entities)}" if entities else ""


def _print_runs(runs: list[dict[str, Any]]) -> None:
    rows = [
        [
            r["mailbox"],
            r["kind"] + _scope(r) + (" (dry run)" if r["dry_run"] else ""),
            r["outcome"] or "running",
            _duration(r),
            items_written(r["counts"]),
            r["requests"],
            r["throttled"],
            r["error"],
        ]
        for r in runs
    ]
    table(
        ["MAILBOX", "KIND", "OUTCOME", "DURATION", "ITEMS", "REQUESTS", "THROTTLED", "ERROR"], rows
    )
    outcomes: dict[str, int] = {}
    for r in runs:
        outcomes[r["outcome"] or "running"] = outcomes.get(r["outcome"] or "running", 0) + 1
    summary = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    items = sum(items_written(r["counts"]) for r in runs)
    dry = [r for r in runs if r["dry_run"]]
    planned = f", {sum(_planned(r) for r in dry)} action(s) planned by dry runs" if dry else ""
    print(f"{len(runs)} pass(es): {summary or 'none'}; {items} item(s) written{planned}")


def _planned(run: dict[str, Any]) -> int:
    """Actions a dry run planned, over its entities (0 before its plan is recorded)."""
    return sum(sum(e["planned"].values()) for e in run.get("planned") or [])


def _print_plans(runs: list[dict[str, Any]]) -> None:
    """What each dry run would do, and the command that shows it item by item."""
    for run in runs:
        if not run["dry_run"] or run["outcome"] is None:
            continue
        entities = run.get("planned") or []
        summary = "; ".join(e["summary"] for e in entities) or "no plan recorded"
        print(f"dry run {run['id']} of {run['mailbox']}: {summary}")
        print(f"  the plan item by item: sync-service runs show {run['id']}")


def _duration(run: dict[str, Any]) -> str:
    if run["finished_at"] is None:
        return "-"
    return f"{(run['finished_at'] - run['started_at']).total_seconds():.1f}s"


async def cmd_runs(settings: Settings, args: argparse.Namespace) -> int:
    since = _seconds("since", args.since) if args.since else None
    from datetime import timedelta

    async with operations(settings) as ops:
        runs = await ops.runs(
            mailbox=args.mailbox,
            since=timedelta(seconds=since) if since else None,
            limit=args.limit,
        )
    if args.json:
        print_json(runs)
    else:
        _print_runs(runs)
    return EXIT_OK


async def cmd_runs_show(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        run = await ops.run(args.run)
    if args.json:
        print_json(run)
        return EXIT_OK
    kind = run["kind"] + (" (dry run)" if run["dry_run"] else "")
    for key, value in (
        ("run", run["id"]),
        ("mailbox", run["mailbox"]),
        ("kind", kind),
        ("outcome", run["outcome"] or "running"),
        ("started", cell(run["started_at"])),
        ("finished", cell(run["finished_at"])),
        ("duration", _duration(run)),
        ("written", f"{items_written(run['counts'])} item(s)"),
        ("requests", f"{run['requests']} ({run['throttled']} throttled)"),
        ("error", cell(run["error"])),
    ):
        print(f"{key + ':':11}{value}")
    _print_plan(run)
    return EXIT_OK


def _print_plan(run: dict[str, Any]) -> None:
    plan = run["plan"]
    if plan is None:
        # A dry run recorded before plans were kept as data has its text only.
        text = run["plan_text"]
        print("\nplan:\n" + text if text else "\nplan: - (only a dry run keeps its plan)")
        return
    print()
    for entity in plan["entities"]:
        print(f"plan: {entity['summary']}")
    rows = [
        [item["entity"], item["action"], item["direction"], item["crm_id"], item["title"], *change]
        for item in plan["items"]
        for change in _change_rows(item)
    ]
    table(["ENTITY", "ACTION", "DIRECTION", "CRM ID", "TITLE", "FIELD", "BEFORE", "AFTER"], rows)
    if plan["omitted"]:
        print(f"... and {plan['omitted']} more item(s) not kept (the counts above cover them)")
    for found in plan["ambiguities"]:
        crm, exchange = ", ".join(found["crm_ids"]), ", ".join(found["exchange_ids"])
        print(
            f"ambiguous {found['entity']} match by {found['key']}: crm {crm} <-> exchange "
            f"{exchange}: {found['decision']}"
        )


def _change_rows(item: dict[str, Any]) -> list[list[str]]:
    """One row per field an item changes (before, after), or one for an item that changes
    none (a link, a deletion: its reason)."""
    changes = item["changes"]
    if not changes:
        return [["-", "-", cell(item["reason"])]]
    return [[f"{c['side']}.{c['field']}", _value(c["before"]), _value(c["after"])] for c in changes]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value.replace("\n", "\\n")  # one table row per change
    return json.dumps(value, ensure_ascii=False)


async def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        status = await ops.status()
    if args.json:
        print_json(status)
        return EXIT_OK
    boxes = status["mailboxes"]
    print("mailboxes:   " + ", ".join(f"{n} {s}" for s, n in boxes.items()))
    if boxes.get("moved"):
        print(
            f"moved:       {boxes['moved']} mailbox(es) Exchange moved away: "
            "sync-service mailboxes list --state moved shows the command for each"
        )
    folder_errors = (status.get("folder_links") or {}).get("errors")
    if folder_errors:
        print(
            f"folders:     {folder_errors} entity link(s) cannot be read "
            "(sync-service mailboxes folder-link show SMTP)"
        )
    queue = status["queue"]
    print(
        f"queue:       {queue['queued']} queued, {queue['running']} running, "
        f"oldest {queue['oldest_queued_seconds']:.0f}s"
    )
    hour = status["last_hour"]
    passes = ", ".join(f"{n} {o}" for o, n in hour["passes"].items()) or "none"
    items = sum(row["n"] for row in hour["items"])
    print(f"last hour:   passes {passes}; {items} item(s) written; {hour['requests']} request(s)")
    print(f"throttling:  {hour['throttled']} throttled answer(s) in the last hour")
    errors = status["item_errors"]["open"]
    kinds = ", ".join(f"{n} {k}" for k, n in errors.items() if n) or "none"
    print(f"item errors: {kinds} open (sync-service item-errors list)")
    engines = ", ".join(f"{e['name']} [{e['roles']}]" for e in status["engines"]) or "none"
    print(f"engines:     {engines}")
    leader = status["leader"]
    since = f" (since {cell(leader['since'])})" if leader["since"] else ""
    print(f"leader:      {leader['name']}{since}")
    return EXIT_OK


def add_sync_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = sub.add_parser("sync", help="request a pass for a mailbox, groups or a server")
    target = sync.add_argument_group("target (a mailbox, or groups and/or a server)")
    target.add_argument("--mailbox", metavar="SMTP")
    target.add_argument("--group", action="extend", nargs="+", metavar="G", help="one or more")
    target.add_argument("--server", metavar="NAME")
    sync.add_argument("--mode", choices=("express", "complete", "initial"), default="express")
    sync.add_argument(
        "--entity",
        action="append",
        metavar="E",
        help=f"only these entities ({', '.join(ENTITY_WORDS)}): repeat or comma-separate; "
        "default every entity",
    )
    _follow_options(sync)
    sync.set_defaults(handler=cmd_sync)
    recover = sub.add_parser("recover", help="merge both sides of a mailbox, deleting nothing")
    recover.add_argument("mailbox", metavar="SMTP")
    _follow_options(recover)
    recover.set_defaults(handler=cmd_recover)
    runs = sub.add_parser("runs", help="recent passes; `runs show RUN`: one with its plan")
    runs.add_argument("--mailbox", metavar="SMTP")
    runs.add_argument("--since", help="e.g. 1h, 30m, 2d")
    runs.add_argument("--limit", type=int, default=100)
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=cmd_runs)
    rsub = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    show = rsub.add_parser(
        "show", help="one run; a dry run with its plan item by item (before -> after)"
    )
    show.add_argument("run", type=int, metavar="RUN", help="the run's id (see `runs`)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_runs_show)
    status = sub.add_parser("status", help="mailboxes, queue, last hour, engines, leader")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)
    add_schedule_commands(sub)


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    parser.add_argument("--wait", action="store_true", help="follow the passes to their end")
    parser.add_argument("--timeout", default="1h", help="with --wait: give up after (default 1h)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
