"""`sync`, `recover`, `runs` and `status`: request passes, follow them, and look at the service."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from sync_service.config import Settings, parse_duration
from sync_service.operator.connect import operations
from sync_service.operator.operations import InvalidInput, Operations, SyncRequest
from sync_service.operator.output import Progress, cell, items_written, print_json, table

EXIT_OK, EXIT_FAILED = 0, 1
POLL_SECONDS = 0.5
FAILED_OUTCOMES = ("failed", "guarded")


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
        if unfinished:
            print(f"{len(unfinished)} pass(es) still unfinished after {args.timeout}")
    return EXIT_FAILED if failed or unfinished else EXIT_OK


def _print_queued(request: SyncRequest) -> None:
    new = sum(not j.coalesced for j in request.jobs)
    dry = " (dry run)" if request.dry_run else ""
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


def _print_runs(runs: list[dict[str, Any]]) -> None:
    rows = [
        [
            r["mailbox"],
            r["kind"] + (" (dry run)" if r["dry_run"] else ""),
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
    print(f"{len(runs)} pass(es): {summary or 'none'}; {items} item(s) written")


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


async def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    async with operations(settings) as ops:
        status = await ops.status()
    if args.json:
        print_json(status)
        return EXIT_OK
    boxes = status["mailboxes"]
    print("mailboxes:   " + ", ".join(f"{n} {s}" for s, n in boxes.items()))
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
    _follow_options(sync)
    sync.set_defaults(handler=cmd_sync)
    recover = sub.add_parser("recover", help="merge both sides of a mailbox, deleting nothing")
    recover.add_argument("mailbox", metavar="SMTP")
    _follow_options(recover)
    recover.set_defaults(handler=cmd_recover)
    runs = sub.add_parser("runs", help="recent passes")
    runs.add_argument("--mailbox", metavar="SMTP")
    runs.add_argument("--since", help="e.g. 1h, 30m, 2d")
    runs.add_argument("--limit", type=int, default=100)
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=cmd_runs)
    status = sub.add_parser("status", help="mailboxes, queue, last hour, engines, leader")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    parser.add_argument("--wait", action="store_true", help="follow the passes to their end")
    parser.add_argument("--timeout", default="1h", help="with --wait: give up after (default 1h)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
