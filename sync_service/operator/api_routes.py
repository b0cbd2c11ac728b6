"""The operator endpoints of the admin API (/api/v1/): the CLI's operations as JSON.

`ROUTES` is the table of these endpoints: `api.build_app` registers it and the OpenAPI
document describes it; each entry names the model that validates its input.
"""

from __future__ import annotations

from aiohttp import web

from sync_service.operator import (
    api_audit,
    api_field_map,
    api_records,
    api_schedules,
    models,
    probe,
)
from sync_service.operator.api_filters import ROUTES as FILTER_ROUTES
from sync_service.operator.api_folder_links import ROUTES as FOLDER_LINK_ROUTES
from sync_service.operator.csv_import import NAME_MAX, text_problem
from sync_service.operator.http import (
    OPENER,
    SETTINGS,
    Doc,
    ok,
    operations_of,
    plain,
    problem,
    with_body,
    with_query,
)
from sync_service.operator.models import (
    DisableInput,
    ItemErrorAction,
    ItemErrorFilter,
    JobQuery,
    MailboxFilter,
    MailboxOptions,
    MoveInput,
    NewServerInput,
    NoInput,
    ProbeInput,
    RecoverInput,
    RunFilter,
    ServerSettings,
    ServerUpdate,
    SyncInput,
)
from sync_service.operator.operations import ErrorQuery, InvalidInput, mailbox_json
from sync_service.operator.server_specs import ServerChanges, describe

PREFIX = "/api/v1"


def _server_name(request: web.Request) -> str:
    """The {name} of the path, refused before any lookup when it cannot be a server's name."""
    name = request.match_info["name"]
    problem = text_problem(name, NAME_MAX)
    if problem is not None:
        raise InvalidInput("name", problem)
    return name


def _changes(body: ServerSettings) -> ServerChanges:
    given = body.model_dump(exclude_none=True, exclude={"name"})
    return ServerChanges(**given)


# servers
async def list_servers(request: web.Request) -> web.Response:
    return ok({"servers": [describe(s) for s in await operations_of(request).servers()]})


async def add_server(request: web.Request, body: NewServerInput) -> web.Response:
    server = await operations_of(request).add_server(body.name, _changes(body))
    return ok(describe(server), status=201)


async def get_server(request: web.Request) -> web.Response:
    return ok(describe(await operations_of(request).server(_server_name(request))))


async def update_server(request: web.Request, body: ServerUpdate) -> web.Response:
    changes = _changes(body)
    return ok(describe(await operations_of(request).update_server(_server_name(request), changes)))


async def remove_server(request: web.Request) -> web.Response:
    await operations_of(request).remove_server(_server_name(request))
    return web.Response(status=204)


async def test_server(request: web.Request, body: ProbeInput) -> web.Response:
    ops = operations_of(request)
    server = await ops.server(_server_name(request))
    mailbox = body.mailbox
    if mailbox:
        await ops.mailbox(mailbox)
    else:
        page = await ops.list_mailboxes(server=server.name, state="active", limit=1)
        if not page.mailboxes:
            raise InvalidInput("mailbox", f"server {server.name} has no active mailbox; give one")
        mailbox = page.mailboxes[0]["email"]
    opener = request.app[OPENER]
    if opener is None:
        try:
            opener = probe.default_opener()
        except ImportError as exc:
            return problem(501, f"backends are not available: {exc}")
    settings = request.app[SETTINGS]
    assert settings is not None
    steps = await probe.probe(server, mailbox, settings, opener)
    passed = all(s.status == "ok" for s in steps)
    return ok({"server": server.name, "mailbox": mailbox, "ok": passed, "steps": steps})


# mailboxes
async def import_mailboxes(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the CSV must be UTF-8 text") from None
    if not text.strip():
        raise InvalidInput("body", "empty body; send the CSV file (text/csv)")
    report = await operations_of(request).import_mailboxes(text)
    return ok(report)


async def list_mailboxes(request: web.Request, query: MailboxFilter) -> web.Response:
    page = await operations_of(request).list_mailboxes(
        state=query.state,
        groups=query.group or None,
        server=query.server,
        cursor=query.cursor,
        limit=query.limit,
    )
    return ok({"mailboxes": page.mailboxes, "next_cursor": page.next_cursor})


async def show_mailbox(request: web.Request) -> web.Response:
    return ok(await operations_of(request).show_mailbox(request.match_info["email"]))


async def set_mailbox(request: web.Request, body: MailboxOptions) -> web.Response:
    ops = operations_of(request)
    mailbox = await ops.set_options(
        request.match_info["email"],
        group=body.group,
        set_group="group" in body.model_fields_set,
        contacts=body.contacts,
        calendar=body.calendar,
        tasks=body.tasks,
    )
    return ok(mailbox_json(mailbox, (await ops.server_names())[mailbox.server_id]))


async def enable_mailbox(request: web.Request, _: NoInput) -> web.Response:
    return await _set_state(request, True, None)


async def disable_mailbox(request: web.Request, body: DisableInput) -> web.Response:
    return await _set_state(request, False, body.reason)


async def _set_state(request: web.Request, enabled: bool, reason: str | None) -> web.Response:
    ops = operations_of(request)
    mailbox = await ops.set_state(request.match_info["email"], enabled, reason)
    return ok(mailbox_json(mailbox, (await ops.server_names())[mailbox.server_id]))


async def recover_mailbox(request: web.Request, body: RecoverInput) -> web.Response:
    email = request.match_info["email"]
    return ok(await operations_of(request).recover(email, dry_run=bool(body.dry_run)), 202)


async def move_mailbox(request: web.Request, body: MoveInput) -> web.Response:
    """Carry the mailbox to the server Exchange moved it to, its links kept."""
    # Imported here, as the probe's opener is: only the requests that reach Exchange load it.
    from ews_client import ExchangeError
    from sync_service.operator.moves import MailboxMover
    from sync_service.runtime.backends import Backends

    ops, settings = operations_of(request), request.app[SETTINGS]
    assert settings is not None
    async with Backends(settings) as backends:
        try:
            report = await MailboxMover(ops.store, backends).move(
                request.match_info["email"], body.server
            )
        except ExchangeError as exc:
            return problem(502, f"the new server answered: {exc}")
    return ok(report)


# passes and overview
async def request_sync(request: web.Request, body: SyncInput) -> web.Response:
    result = await operations_of(request).request_sync(
        mailbox=body.mailbox,
        groups=body.groups,
        server=body.server,
        mode=body.mode or "express",
        dry_run=bool(body.dry_run),
        entities=body.entities,
    )
    return ok(result, 202)


async def list_runs(request: web.Request, query: RunFilter) -> web.Response:
    runs = await operations_of(request).runs(
        mailbox=query.mailbox, since=query.since, limit=query.limit
    )
    return ok({"runs": runs})


async def show_run(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    # ASCII digits only: int() would also take " 7", "+7" or other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) < 2**63:
        raise InvalidInput("id", "a run id is a positive integer (see /api/v1/runs)")
    return ok(await operations_of(request).run(int(raw)))


# item errors
async def list_item_errors(request: web.Request, query: ItemErrorFilter) -> web.Response:
    wanted = ErrorQuery(
        query.mailbox,
        query.server,
        query.entity,
        query.kind,
        query.reason,
        query.since,
        query.status,
    )
    page = await operations_of(request).list_item_errors(
        wanted, cursor=query.cursor, limit=query.limit
    )
    return ok(page)


def _error_target(body: ItemErrorAction) -> tuple[list[int] | None, ErrorQuery | None]:
    """The ids, or with `all` the filters; anything else names what is wrong."""
    filters = body.model_fields_set - {"ids", "all"}
    if body.ids is not None and (body.all or filters):
        field = "all" if body.all else sorted(filters)[0]
        raise InvalidInput(field, "give ids, or all with filters, not both")
    if body.ids is not None:
        return body.ids, None
    if not body.all:
        raise InvalidInput("ids", "give item error ids, or all: true (with filters)")
    since = models.duration_value("since", body.since)
    query = ErrorQuery(
        body.mailbox, body.server, body.entity, body.kind, body.reason, since, body.status
    )
    return None, query


async def retry_item_errors(request: web.Request, body: ItemErrorAction) -> web.Response:
    return ok(await operations_of(request).retry_item_errors(*_error_target(body)))


async def acknowledge_item_errors(request: web.Request, body: ItemErrorAction) -> web.Response:
    return ok(await operations_of(request).acknowledge_item_errors(*_error_target(body)))


async def job_states(request: web.Request, query: JobQuery) -> web.Response:
    states = await operations_of(request).job_states(query.ids)
    return ok({"jobs": [{"id": i, "status": states.get(i)} for i in query.ids]})


async def status(request: web.Request) -> web.Response:
    return ok(await operations_of(request).status())


SERVERS, SERVER = f"{PREFIX}/servers", f"{PREFIX}/servers/{{name}}"
MAILBOXES, MAILBOX = f"{PREFIX}/mailboxes", f"{PREFIX}/mailboxes/{{email}}"
ITEM_ERRORS = f"{PREFIX}/item-errors"
ROUTES = (
    plain("GET", SERVERS, list_servers, Doc("list servers", "the servers")),
    with_body(
        "POST",
        SERVERS,
        NewServerInput,
        add_server,
        Doc("add a server", "the server added", 201, models.Server),
    ),
    plain("GET", SERVER, get_server, Doc("one server", "the server", schema=models.Server)),
    with_body(
        "PATCH",
        SERVER,
        ServerUpdate,
        update_server,
        Doc("change a server's settings", "the server changed", schema=models.Server),
    ),
    plain(
        "DELETE", SERVER, remove_server, Doc("remove a server that has no mailboxes", status=204)
    ),
    with_body(
        "POST",
        f"{SERVER}/test",
        ProbeInput,
        test_server,
        Doc("connect, authenticate, impersonate, write and remove a probe", "the probe's steps"),
    ),
    plain(
        "POST",
        f"{MAILBOXES}/import",
        import_mailboxes,
        Doc("upsert mailboxes from CSV", "what was imported", schema=models.ImportReport, csv=True),
    ),
    with_query(
        MAILBOXES,
        MailboxFilter,
        list_mailboxes,
        Doc("list mailboxes (paginated)", "a page of mailboxes and the next cursor"),
    ),
    plain(
        "GET",
        MAILBOX,
        show_mailbox,
        Doc("state, reason, last passes, item counts, errors", "the mailbox in detail"),
    ),
    with_body(
        "PATCH",
        MAILBOX,
        MailboxOptions,
        set_mailbox,
        Doc("group and sync directions", "the mailbox changed", schema=models.Mailbox),
    ),
    with_body(
        "POST",
        f"{MAILBOX}/enable",
        NoInput,
        enable_mailbox,
        Doc("enable a mailbox", "the mailbox enabled", schema=models.Mailbox),
    ),
    with_body(
        "POST",
        f"{MAILBOX}/disable",
        DisableInput,
        disable_mailbox,
        Doc("disable a mailbox", "the mailbox disabled", schema=models.Mailbox),
    ),
    with_body(
        "POST",
        f"{MAILBOX}/recover",
        RecoverInput,
        recover_mailbox,
        Doc("queue a recover pass (deletes nothing)", "the job queued", 202, models.SyncRequest),
    ),
    with_body(
        "POST",
        f"{MAILBOX}/move",
        MoveInput,
        move_mailbox,
        Doc("carry the mailbox to the server it moved to, links kept", "what the move did"),
    ),
    with_body(
        "POST",
        f"{PREFIX}/sync",
        SyncInput,
        request_sync,
        Doc("queue passes", "the jobs queued", 202, models.SyncRequest),
    ),
    with_query(f"{PREFIX}/jobs", JobQuery, job_states, Doc("job states", "each job's status")),
    with_query(f"{PREFIX}/runs", RunFilter, list_runs, Doc("recent passes", "the passes")),
    plain(
        "GET",
        f"{PREFIX}/runs/{{id}}",
        show_run,
        Doc(
            "one pass; a dry run with its plan item by item (before -> after)",
            "the run",
            schema=models.RunDetail,
        ),
    ),
    with_query(
        ITEM_ERRORS,
        ItemErrorFilter,
        list_item_errors,
        Doc(
            "item errors and findings of every mailbox (paginated, open ones by default)",
            "a page of item errors and the next cursor",
            schema=models.ItemErrorPage,
        ),
    ),
    with_body(
        "POST",
        f"{ITEM_ERRORS}/retry",
        ItemErrorAction,
        retry_item_errors,
        Doc(
            "write refused items again: each mailbox concerned gets a pass queued",
            "the item errors retried and the jobs queued",
            schema=models.RetryResult,
        ),
    ),
    with_body(
        "POST",
        f"{ITEM_ERRORS}/acknowledge",
        ItemErrorAction,
        acknowledge_item_errors,
        Doc(
            "acknowledge item errors: kept and listed, no longer counted as open",
            "the item errors acknowledged",
            schema=models.AcknowledgeResult,
        ),
    ),
    plain(
        "GET",
        f"{PREFIX}/status",
        status,
        Doc("overview: mailboxes, queue, last hour, engines, leader", "the overview"),
    ),
    # the audit trail (operator/api_audit.py)
    *api_audit.ROUTES,
    # the field map in effect (operator/api_field_map.py)
    *api_field_map.ROUTES,
    # sync filters of servers and mailboxes (operator/api_filters.py)
    *FILTER_ROUTES,
    # folder links of mailboxes (operator/api_folder_links.py)
    *FOLDER_LINK_ROUTES,
    # express schedules (operator/api_schedules.py)
    *api_schedules.ROUTES,
    # record links of shared (firm) records (operator/api_records.py)
    *api_records.ROUTES,
)
