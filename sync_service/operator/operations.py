"""What an operator can do, shared by the CLI and the admin API (both are thin shells over it).

Errors: `InvalidInput` (bad input, names the field: exit 2 / HTTP 400), `NotFound` (a named
server or mailbox does not exist: exit 2 / HTTP 404), `Conflict` (the request contradicts the
current state: exit 1 / HTTP 409).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ews_client import EntityKind
from sync_service import metrics
from sync_service.config import OutboundSettings, ScheduleSettings
from sync_service.db.engines import Engines
from sync_service.db.filters import FilterStore
from sync_service.db.item_errors import KINDS, STATUSES, ErrorFilter, ItemErrors
from sync_service.db.operator_views import OperatorViews
from sync_service.db.queue import JobQueue, JobRequest, PassKind, Priority
from sync_service.db.store import (
    ENTITY_MODES,
    MAILBOX_STATES,
    Mailbox,
    MailboxState,
    Server,
    Store,
)
from sync_service.errors import FieldError
from sync_service.operator.csv_import import RowError, parse_csv, valid_email
from sync_service.operator.entity_names import entity_words, parse_entities
from sync_service.operator.folder_link_views import error_count as folder_link_errors
from sync_service.operator.folder_link_views import folders_of
from sync_service.operator.jsonable import decode_cursor, encode_cursor, to_jsonable
from sync_service.operator.server_specs import (
    InvalidInput,
    ServerChanges,
    new_server,
    updated_server,
)

log = logging.getLogger("sync_service.operator.operations")
SYNC_MODES = ("express", "complete", "initial")
# The leader heartbeats every second or so; after this long without one it is not leading.
LEADER_STALE_AFTER = timedelta(seconds=30)
MAX_PAGE = 1000
ENTITIES: tuple[str, ...] = tuple(e.value for e in EntityKind)
ERROR_KINDS = KINDS
# Which item errors a listing shows: by status, or "all"; the default is the open ones.
ERROR_STATUSES: tuple[str, ...] = (*STATUSES, "all")
__all__ = ["Conflict", "InvalidInput", "NotFound", "Operations", "to_jsonable"]


class NotFound(FieldError):
    """A named server or mailbox does not exist."""


class Conflict(FieldError):
    """The request contradicts the current state."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    inserted: int
    updated: int
    invalid: list[RowError]


@dataclass(frozen=True, slots=True)
class MailboxPage:
    mailboxes: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class QueuedJob:
    mailbox: str
    job_id: int
    coalesced: bool


@dataclass(frozen=True, slots=True)
class ErrorQuery:
    """Which item errors an operator means, as the CLI and the API give it (None: any)."""

    mailbox: str | None = None
    server: str | None = None
    entity: str | None = None
    kind: str | None = None
    reason: str | None = None
    since: timedelta | None = None
    status: str | None = None  # one of ERROR_STATUSES; None: open


@dataclass(frozen=True, slots=True)
class ItemErrorPage:
    item_errors: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RetryResult:
    """Item errors marked for a retry and the passes queued to retry them."""

    retried: list[int]
    jobs: list[QueuedJob]


@dataclass(frozen=True, slots=True)
class AcknowledgeResult:
    acknowledged: list[int]


@dataclass(frozen=True, slots=True)
class SyncRequest:
    kind: str
    dry_run: bool
    jobs: list[QueuedJob]
    skipped: list[dict[str, str]] = field(default_factory=list)
    requested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    entities: list[str] | None = None  # what the passes cover (None: every entity)


def mailbox_json(mailbox: Mailbox, server: str) -> dict[str, Any]:
    return {
        "email": mailbox.email,
        "crm_user_id": mailbox.crm_user_id,
        "server": server,
        "group": mailbox.server_group,
        "contacts": mailbox.contacts_mode,
        "calendar": mailbox.calendar_mode,
        "tasks": mailbox.tasks_mode,
        "state": mailbox.state,
        "reason": mailbox.state_reason,
        "failure_count": mailbox.failure_count,
        "last_error": mailbox.last_error,
        "initial_done": mailbox.initial_done,
        "last_express_at": mailbox.last_express_at,
        "last_complete_at": mailbox.last_complete_at,
    }


def check_choice(field_name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidInput(field_name, f"{value!r} is not one of {', '.join(choices)}")


class Operations:
    """Operator actions over the `sync` schema; every method is one transaction or less."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        lease: timedelta = timedelta(seconds=60),
        schedule_defaults: ScheduleSettings | None = None,
        outbound: OutboundSettings | None = None,
    ) -> None:
        self.pool = pool
        self.schedule_defaults = schedule_defaults
        self.outbound = outbound  # where secrets may come from (None: the environment's)
        self.store = Store(pool)
        self.queue = JobQueue(pool, lease)
        self.views = OperatorViews(pool)
        self.engines = Engines(pool)
        self.item_errors = ItemErrors(pool)

    # servers
    async def add_server(self, name: str, changes: ServerChanges) -> Server:
        spec = new_server(name, changes, self.schedule_defaults, self.outbound)
        if await self.store.server_by_name(name) is not None:
            raise Conflict("name", f"server {name!r} already exists; use `servers update`")
        try:
            server = await self.store.add_server(spec)
        except asyncpg.UniqueViolationError:
            raise Conflict("name", f"server {name!r} already exists") from None
        log.info("server added", extra={"server": name})
        return server

    async def update_server(self, name: str, changes: ServerChanges) -> Server:
        spec = updated_server(await self.server(name), changes, self.outbound)
        if not await self.store.replace_server(name, spec):
            raise NotFound("name", f"no server named {name!r}")
        log.info("server updated", extra={"server": name})
        return await self.server(name)

    async def remove_server(self, name: str) -> None:
        """Delete a server that no mailbox uses any more."""
        await self.server(name)
        if not await self.store.remove_server(name):
            count = await self.store.server_mailbox_count(name)
            raise Conflict(
                "name", f"server {name!r} still has {count} mailbox(es); move them first"
            )
        log.info("server removed", extra={"server": name})

    async def server(self, name: str) -> Server:
        server = await self.store.server_by_name(name)
        if server is None:
            raise NotFound("server", f"no server named {name!r}; see `servers list`")
        return server

    async def servers(self) -> list[Server]:
        return await self.store.servers()

    # mailboxes
    async def import_mailboxes(self, text: str) -> ImportReport:
        """Upsert the valid rows in one transaction; invalid rows are reported and skipped."""
        parsed = parse_csv(text)
        servers = {s.name: s.id for s in await self.store.servers()}
        owners = await self.store.mailbox_owners([r.email for r in parsed.rows])
        invalid = list(parsed.errors)
        inserted = updated = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for row in parsed.rows:
                problem = _row_problem(row.server, row.crm_user_id, owners.get(row.email), servers)
                if problem:
                    invalid.append(RowError(row.line, problem[1], problem[0]))
                    continue
                try:  # a savepoint: a row that collides is skipped, not the whole file
                    async with conn.transaction():
                        _, new = await self.store.upsert_mailbox(
                            conn,
                            row.crm_user_id,
                            row.email,
                            servers[row.server],
                            row.group,
                            row.modes,
                        )
                except asyncpg.UniqueViolationError:
                    # e.g. two users swap addresses: the other row still holds this one.
                    held = "address is held by another CRM user"
                    invalid.append(RowError(row.line, held, "email"))
                    continue
                except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
                    # Not expected after parse_csv's checks; still one row, not the file.
                    refused = f"the database refused the row ({exc.sqlstate})"
                    invalid.append(RowError(row.line, refused))
                    continue
                inserted, updated = inserted + new, updated + (not new)
        invalid.sort(key=lambda e: e.line)
        log.info(
            "mailboxes imported",
            extra={"counts": {"inserted": inserted, "updated": updated, "invalid": len(invalid)}},
        )
        return ImportReport(inserted, updated, invalid)

    async def list_mailboxes(
        self,
        *,
        state: str | None = None,
        groups: list[str] | None = None,
        server: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> MailboxPage:
        check_choice("state", state, MAILBOX_STATES)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
        server_id = (await self.server(server)).id if server else None
        names = await self.server_names()
        rows = await self.store.mailboxes(
            state=state,
            groups=groups or None,
            server_id=server_id,
            after_id=decode_cursor(cursor),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [mailbox_json(m, names[m.server_id]) for m in rows]
        return MailboxPage(items, encode_cursor(rows[-1].id) if more else None)

    async def server_names(self) -> dict[int, str]:
        return {s.id: s.name for s in await self.store.servers()}

    async def mailbox(self, email: str) -> Mailbox:
        if not valid_email(email):
            raise InvalidInput("mailbox", f"malformed address {email!r}")
        mailbox = await self.store.mailbox_by_email(email)
        if mailbox is None:
            raise NotFound("mailbox", f"no mailbox {email!r}; see `mailboxes list`")
        return mailbox

    async def show_mailbox(self, email: str, *, runs: int = 5, errors: int = 10) -> dict[str, Any]:
        mailbox = await self.mailbox(email)
        names = await self.server_names()
        counts = await self.views.item_counts(mailbox.id)
        recent = await self.views.runs(mailbox.id, None, runs)
        item_errors = await self.views.item_errors(mailbox.id, errors)
        jobs = await self.views.open_jobs(mailbox.id)
        detail = mailbox_json(mailbox, names[mailbox.server_id])
        detail["items"] = {e: 0 for e in ENTITIES} | counts
        detail["marker"] = {"generation": mailbox.marker_generation, "at": mailbox.marker_at}
        # A dry run waits apart from a real pass: both may be open. open_job: the real one.
        detail["open_job"] = jobs[0] if jobs else None
        detail["open_jobs"] = jobs
        detail["last_runs"] = recent
        detail["item_errors"] = item_errors
        detail["filters"] = await FilterStore(self.pool).mailbox_detail(email)  # sync filters
        detail["folders"] = await folders_of(self.pool, mailbox.id)  # folder links
        return detail

    async def set_state(self, email: str, enabled: bool, reason: str | None = None) -> Mailbox:
        mailbox = await self.mailbox(email)
        state = MailboxState.ACTIVE if enabled else MailboxState.DISABLED
        why = None if enabled else (reason or "disabled by an operator")
        await self.store.set_mailbox_state(mailbox.id, state, why)
        log.info(f"mailbox {'enabled' if enabled else 'disabled'}", extra={"mailbox": email})
        return await self.mailbox(email)

    async def set_options(
        self,
        email: str,
        *,
        group: str | None = None,
        set_group: bool = False,
        contacts: str | None = None,
        calendar: str | None = None,
        tasks: str | None = None,
    ) -> Mailbox:
        for name, value in (("contacts", contacts), ("calendar", calendar), ("tasks", tasks)):
            check_choice(name, value, ENTITY_MODES)
        await self.mailbox(email)
        updated = await self.store.set_mailbox_options(
            email,
            group=group or None,
            set_group=set_group,
            contacts=contacts,
            calendar=calendar,
            tasks=tasks,
        )
        assert updated is not None
        log.info("mailbox options set", extra={"mailbox": email})
        return updated

    # passes
    async def request_sync(
        self,
        *,
        mailbox: str | None = None,
        groups: list[str] | None = None,
        server: str | None = None,
        mode: str = "express",
        dry_run: bool = False,
        entities: list[str] | None = None,
    ) -> SyncRequest:
        """Queue an operator pass for one mailbox, some server groups, or a whole server;
        `entities` (e.g. ["contacts"]): the pass covers those only (None: every entity)."""
        check_choice("mode", mode, SYNC_MODES)
        scope = parse_entities(entities)
        if bool(mailbox) == bool(groups or server):
            raise InvalidInput("target", "give a mailbox, or groups and/or a server")
        if mailbox:
            target = await self.mailbox(mailbox)
            if target.state != MailboxState.ACTIVE:
                raise _not_runnable(target)
            targets = [target]
        else:
            targets = await self._targets(groups, server)
        now = await self._now()
        active = [box for box in targets if box.state == MailboxState.ACTIVE]
        skipped = [
            {"mailbox": box.email, "state": box.state.value}
            for box in targets
            if box.state != MailboxState.ACTIVE
        ]
        queued = await self.queue.enqueue_for(
            [
                JobRequest(
                    box.id,
                    PassKind(mode),
                    Priority.OPERATOR,
                    "operator",
                    dry_run=dry_run,
                    entities=scope,
                )
                for box in active
            ]
        )
        jobs = [
            QueuedJob(box.email, job_id, not new)
            for box, (job_id, new) in zip(active, queued, strict=True)
        ]
        request = SyncRequest(mode, dry_run, jobs, skipped, now, entity_words(scope))
        log.info("sync requested", extra={"pass_kind": mode, "counts": {"jobs": len(request.jobs)}})
        return request

    async def _targets(self, groups: list[str] | None, server: str | None) -> list[Mailbox]:
        server_id = (await self.server(server)).id if server else None
        found: list[Mailbox] = []
        after = 0
        while True:
            page = await self.store.mailboxes(
                groups=groups or None, server_id=server_id, after_id=after, limit=MAX_PAGE
            )
            found.extend(page)
            if len(page) < MAX_PAGE:
                return found
            after = page[-1].id

    async def _enqueue(self, box: Mailbox, kind: PassKind, dry_run: bool) -> QueuedJob:
        job_id, new = await self.queue.enqueue(
            box.id, kind, priority=Priority.OPERATOR, source="operator", dry_run=dry_run
        )
        return QueuedJob(box.email, job_id, not new)

    async def recover(self, email: str, *, dry_run: bool = False) -> SyncRequest:
        """Queue a recover pass (merge both sides, delete nothing) for one mailbox."""
        box = await self.mailbox(email)
        if box.state not in (MailboxState.ACTIVE, MailboxState.NEEDS_RECOVERY):
            raise _not_runnable(box)
        now = await self._now()
        job = await self._enqueue(box, PassKind.RECOVER, dry_run)
        request = SyncRequest("recover", dry_run, [job], [], now)
        log.info("recover requested", extra={"mailbox": box.email})
        return request

    async def _now(self) -> datetime:
        """Database time: runs are compared with it, not with this host's clock."""
        return await self.views.now()

    async def job_states(self, job_ids: list[int]) -> dict[int, str]:
        return await self.views.job_states(job_ids)

    async def runs_of(self, request: SyncRequest) -> list[dict[str, Any]]:
        ids = [j.job_id for j in request.jobs]
        return await self.views.runs_of_jobs(ids, request.requested_at)

    async def runs(
        self, *, mailbox: str | None = None, since: timedelta | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
        mailbox_id = (await self.mailbox(mailbox)).id if mailbox else None
        start = datetime.now(UTC) - since if since else None
        return await self.views.runs(mailbox_id, start, limit)

    async def run(self, run_id: int) -> dict[str, Any]:
        """One run with its plan: `plan` item by item for a dry run, `plan_text` as rendered."""
        if not 1 <= run_id < 2**63:
            raise InvalidInput("run", f"{run_id} is not a run id (a positive integer)")
        row = await self.views.run(run_id)
        if row is None:
            raise NotFound("run", f"no run {run_id}; see `runs`")
        row["plan_text"] = row.pop("plan")
        row["plan"] = row.pop("plan_items")
        return row

    # item errors
    async def list_item_errors(
        self, query: ErrorQuery, *, cursor: str | None = None, limit: int = 100
    ) -> ItemErrorPage:
        """Item errors and findings across mailboxes, newest first, a page at a time."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
        where = await self._error_filter(query)
        rows = await self.item_errors.matching(
            where, after_id=decode_cursor(cursor), limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return ItemErrorPage(rows, encode_cursor(rows[-1]["id"]) if more else None)

    async def retry_item_errors(
        self, ids: list[int] | None = None, query: ErrorQuery | None = None
    ) -> RetryResult:
        """Have the next pass write refused items again: the errors `ids`, or every refused
        one `query` matches. Each mailbox concerned gets a pass queued: a complete one (an
        express pass reads only what changed, and a refused update's content has not), or
        its first pass if it has not had one."""
        if query is not None and query.kind == "ambiguous_match":
            raise InvalidInput("kind", "an ambiguous match has nothing to retry; acknowledge it")
        chosen = await self._chosen(ids, query, default_status="all", kind="refused")
        kinds = await self.item_errors.kinds(chosen)
        matched = [i for i in chosen if kinds.get(i) == "ambiguous_match"]
        if ids is not None and matched:
            raise Conflict(
                "ids",
                f"item error {matched[0]} is an ambiguous match: there is nothing to retry "
                "(both sides were created); acknowledge it",
            )
        retried = await self.item_errors.retry(chosen)
        requests = [
            JobRequest(
                box.id,
                PassKind.COMPLETE if box.initial_done else PassKind.EXPRESS,
                Priority.OPERATOR,
                "retry",
            )
            for box in retried.mailboxes
        ]
        queued = await self.queue.enqueue_for(requests)
        jobs = [
            QueuedJob(box.email, job_id, not new)
            for box, (job_id, new) in zip(retried.mailboxes, queued, strict=True)
        ]
        log.info("item errors retried", extra={"counts": {"errors": len(retried.ids)}})
        return RetryResult(retried.ids, jobs)

    async def acknowledge_item_errors(
        self, ids: list[int] | None = None, query: ErrorQuery | None = None
    ) -> AcknowledgeResult:
        """Acknowledge item errors (`ids`, or the open ones `query` matches): kept and listed,
        no longer counted as open (sync_item_errors_open, the alert)."""
        chosen = await self._chosen(ids, query, default_status="open")
        done = await self.item_errors.acknowledge(chosen)
        log.info("item errors acknowledged", extra={"counts": {"errors": len(done)}})
        return AcknowledgeResult(done)

    async def _chosen(
        self,
        ids: list[int] | None,
        query: ErrorQuery | None,
        *,
        default_status: str,
        kind: str | None = None,
    ) -> list[int]:
        """The ids an action covers: `ids` (each must exist), or those `query` matches."""
        if (ids is None) == (query is None):
            raise InvalidInput("ids", "give item error ids, or all (with filters)")
        if ids is not None:
            if not ids:
                raise InvalidInput("ids", "give at least one item error id")
            found = await self.item_errors.kinds(ids)
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound("ids", f"no item error {missing[0]}; see `item-errors list`")
            return sorted(set(ids))
        assert query is not None
        given = replace(query, status=query.status or default_status, kind=query.kind or kind)
        rows = await self.item_errors.matching(await self._error_filter(given))
        return [int(r["id"]) for r in rows]

    async def _error_filter(self, query: ErrorQuery) -> ErrorFilter:
        check_choice("entity", query.entity, ENTITIES)
        check_choice("kind", query.kind, ERROR_KINDS)
        check_choice("status", query.status, ERROR_STATUSES)
        status = query.status or "open"
        return ErrorFilter(
            mailbox_id=(await self.mailbox(query.mailbox)).id if query.mailbox else None,
            server_id=(await self.server(query.server)).id if query.server else None,
            entity=query.entity,
            kind=query.kind,
            reason=query.reason or None,
            since=datetime.now(UTC) - query.since if query.since else None,
            status=None if status == "all" else status,
        )

    # overview
    async def status(self, engine_max_age: timedelta = timedelta(seconds=60)) -> dict[str, Any]:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        by_state = await self.store.mailbox_counts_by_state()
        depth = await self.queue.depth()
        passes = await self.views.runs_summary(hour_ago)
        items = await self.views.items_summary(hour_ago)
        engines = await self.engines.live(engine_max_age)
        open_errors = await self.item_errors.open_counts()
        return {
            "mailboxes": {s: by_state.get(s, 0) for s in MAILBOX_STATES},
            "queue": asdict(depth),
            "last_hour": {
                "passes": {r["outcome"]: int(r["passes"]) for r in passes},
                "requests": sum(int(r["requests"]) for r in passes),
                "throttled": sum(int(r["throttled"]) for r in passes),
                "items": [dict(r) | {"n": int(r["n"])} for r in items],
            },
            "item_errors": {
                "open": {
                    kind: sum(n for (_, k), n in open_errors.items() if k == kind)
                    for kind in ERROR_KINDS
                }
            },
            "folder_links": {"errors": await folder_link_errors(self.pool)},
            "engines": engines,
            "dispatchers": [r["name"] for r in engines if "dispatcher" in r["roles"].split(",")],
            "leader": await self._leader(),
        }

    async def _leader(self) -> dict[str, Any]:
        """The active dispatcher as recorded by it (sync.dispatcher), if its heartbeat is recent.

        "unknown" before the dispatcher's migration exists; "none" when no replica leads.
        """
        if not await self.views.has_leader_table():
            return {"name": "unknown", "since": None, "heartbeat_at": None}
        row = await self.views.leader(LEADER_STALE_AFTER)
        if row is None or not row["leader"] or not row["fresh"]:
            last = row["leader"] if row else None
            return {"name": "none", "since": None, "heartbeat_at": None, "last": last}
        return {
            "name": row["leader"],
            "since": row["leader_since"],
            "heartbeat_at": row["heartbeat_at"],
        }

    async def refresh_gauges(self) -> None:
        """Queue and mailbox gauges from the database, for a scrape of /metrics."""
        depth = await self.queue.depth()
        metrics.JOBS_QUEUED.set(depth.queued)
        metrics.JOBS_RUNNING.set(depth.running)
        metrics.JOB_AGE.set(depth.oldest_queued_seconds)
        by_state = await self.store.mailbox_counts_by_state()
        for state in MAILBOX_STATES:
            metrics.MAILBOXES.labels(state=state).set(by_state.get(state, 0))
        open_errors = await self.item_errors.open_counts()
        for entity in ENTITIES:
            for kind in ERROR_KINDS:
                count = open_errors.get((entity, kind), 0)
                metrics.ITEM_ERRORS_OPEN.labels(entity=entity, kind=kind).set(count)


def _row_problem(
    server: str, crm_user_id: str, owner: str | None, servers: dict[str, int]
) -> tuple[str, str] | None:
    """(field, message) of a row the database would refuse, or None."""
    if server not in servers:
        return "server", f"unknown server {server!r}"
    if owner is not None and owner != crm_user_id:
        return "email", f"address already belongs to CRM user {owner!r}"
    return None


def _not_runnable(box: Mailbox) -> Conflict:
    """Why no pass can be asked for `box`: a moved mailbox's reason names its command."""
    if box.state == MailboxState.MOVED:
        return Conflict("mailbox", f"{box.email} is moved: {box.state_reason}")
    return Conflict("mailbox", f"{box.email} is {box.state}; enable it first")
