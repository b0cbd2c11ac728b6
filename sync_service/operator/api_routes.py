"""The operator endpoints of the admin API (/api/v1/): the CLI's operations as JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from sync_service.config import parse_duration
from sync_service.operator import probe
from sync_service.operator.api import OPERATIONS, SETTINGS, ok, problem
from sync_service.operator.operations import InvalidInput, Operations, mailbox_json
from sync_service.operator.server_specs import ServerChanges, describe

PREFIX = "/api/v1"
OPENER: web.AppKey[Any] = web.AppKey("opener")


def _ops(request: web.Request) -> Operations:
    ops = request.app[OPERATIONS]
    if ops is None:
        raise web.HTTPServiceUnavailable(text="this replica serves no operator API (no database)")
    return ops


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("body", f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    # bool is an int in Python, but `true` is no valid count and `1` no valid flag.
    bad = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    if value is not None and bad:
        raise InvalidInput(name, f"must be a {getattr(kind, '__name__', 'value')}")
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise InvalidInput(key, f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(name, f"{raw!r} is not an integer") from None


# servers
async def list_servers(request: web.Request) -> web.Response:
    return ok({"servers": [describe(s) for s in await _ops(request).servers()]})


async def add_server(request: web.Request) -> web.Response:
    body = await _json_body(request)
    name = _field(body, "name", str)
    if not name:
        raise InvalidInput("name", "required")
    server = await _ops(request).add_server(name, ServerChanges.from_json(body))
    return ok(describe(server), status=201)


async def get_server(request: web.Request) -> web.Response:
    return ok(describe(await _ops(request).server(request.match_info["name"])))


async def update_server(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if "name" in body:
        raise InvalidInput("name", "a server cannot be renamed")
    changes = ServerChanges.from_json(body)
    return ok(describe(await _ops(request).update_server(request.match_info["name"], changes)))


async def remove_server(request: web.Request) -> web.Response:
    await _ops(request).remove_server(request.match_info["name"])
    return web.Response(status=204)


async def test_server(request: web.Request) -> web.Response:
    body = await _json_body(request)
    _only(body, {"mailbox"})
    ops = _ops(request)
    server = await ops.server(request.match_info["name"])
    mailbox = _field(body, "mailbox", str)
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
    report = await _ops(request).import_mailboxes(text)
    return ok(report)


async def list_mailboxes(request: web.Request) -> web.Response:
    query = request.query
    page = await _ops(request).list_mailboxes(
        state=query.get("state"),
        groups=query.getall("group", []) or None,
        server=query.get("server"),
        cursor=query.get("cursor"),
        limit=_int_param(request, "limit", 100),
    )
    return ok({"mailboxes": page.mailboxes, "next_cursor": page.next_cursor})


async def show_mailbox(request: web.Request) -> web.Response:
    return ok(await _ops(request).show_mailbox(request.match_info["email"]))


async def set_mailbox(request: web.Request) -> web.Response:
    body = await _json_body(request)
    _only(body, {"group", "contacts", "calendar", "tasks"})
    ops = _ops(request)
    mailbox = await ops.set_options(
        request.match_info["email"],
        group=_field(body, "group", str),
        set_group="group" in body,
        contacts=_field(body, "contacts", str),
        calendar=_field(body, "calendar", str),
        tasks=_field(body, "tasks", str),
    )
    return ok(mailbox_json(mailbox, (await ops.server_names())[mailbox.server_id]))


async def enable_mailbox(request: web.Request) -> web.Response:
    return await _set_state(request, enabled=True)


async def disable_mailbox(request: web.Request) -> web.Response:
    return await _set_state(request, enabled=False)


async def _set_state(request: web.Request, *, enabled: bool) -> web.Response:
    body = await _json_body(request)
    _only(body, set() if enabled else {"reason"})
    ops = _ops(request)
    email = request.match_info["email"]
    mailbox = await ops.set_state(email, enabled, _field(body, "reason", str))
    return ok(mailbox_json(mailbox, (await ops.server_names())[mailbox.server_id]))


async def recover_mailbox(request: web.Request) -> web.Response:
    body = await _json_body(request)
    _only(body, {"dry_run"})
    dry_run = bool(_field(body, "dry_run", bool))
    return ok(await _ops(request).recover(request.match_info["email"], dry_run=dry_run), 202)


# passes and overview
async def request_sync(request: web.Request) -> web.Response:
    body = await _json_body(request)
    _only(body, {"mailbox", "groups", "server", "mode", "dry_run"})
    groups = _field(body, "groups", list)
    if groups is not None and not all(isinstance(g, str) and g for g in groups):
        raise InvalidInput("groups", "must be a list of group names")
    result = await _ops(request).request_sync(
        mailbox=_field(body, "mailbox", str),
        groups=groups,
        server=_field(body, "server", str),
        mode=_field(body, "mode", str) or "express",
        dry_run=bool(_field(body, "dry_run", bool)),
    )
    return ok(result, 202)


async def list_runs(request: web.Request) -> web.Response:
    since = request.query.get("since")
    try:
        window = timedelta(seconds=parse_duration(since)) if since else None
    except ValueError as exc:
        raise InvalidInput("since", str(exc)) from None
    runs = await _ops(request).runs(
        mailbox=request.query.get("mailbox"),
        since=window,
        limit=_int_param(request, "limit", 100),
    )
    return ok({"runs": runs})


async def job_states(request: web.Request) -> web.Response:
    raw = request.query.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput("ids", "a comma-separated list of job ids") from None
    if not ids:
        raise InvalidInput("ids", "required: a comma-separated list of job ids")
    states = await _ops(request).job_states(ids)
    return ok({"jobs": [{"id": i, "status": states.get(i)} for i in ids]})


async def status(request: web.Request) -> web.Response:
    return ok(await _ops(request).status())


ROUTES = (
    ("GET", "/servers", list_servers),
    ("POST", "/servers", add_server),
    ("GET", "/servers/{name}", get_server),
    ("PATCH", "/servers/{name}", update_server),
    ("DELETE", "/servers/{name}", remove_server),
    ("POST", "/servers/{name}/test", test_server),
    ("POST", "/mailboxes/import", import_mailboxes),
    ("GET", "/mailboxes", list_mailboxes),
    ("GET", "/mailboxes/{email}", show_mailbox),
    ("PATCH", "/mailboxes/{email}", set_mailbox),
    ("POST", "/mailboxes/{email}/enable", enable_mailbox),
    ("POST", "/mailboxes/{email}/disable", disable_mailbox),
    ("POST", "/mailboxes/{email}/recover", recover_mailbox),
    ("POST", "/sync", request_sync),
    ("GET", "/jobs", job_states),
    ("GET", "/runs", list_runs),
    ("GET", "/status", status),
)


def add_routes(app: web.Application, opener: Any) -> None:
    app[OPENER] = opener
    for method, path, handler in ROUTES:
        app.router.add_route(method, PREFIX + path, handler)
