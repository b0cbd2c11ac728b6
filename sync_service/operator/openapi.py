"""The OpenAPI 3.1 document of the admin API, served at /openapi.json."""

from __future__ import annotations

from functools import cache
from typing import Any

from sync_service.db.store import ENTITY_MODES, MAILBOX_STATES

_MODE = {"type": "string", "enum": list(ENTITY_MODES)}
_OBJ = {"type": "object"}
_STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": _STR,
            "title": _STR,
            "status": {"type": "integer"},
            "detail": _STR,
            "field": {"type": "string", "description": "the offending input field"},
        },
        "required": ["type", "title", "status", "detail"],
    },
    "ServerInput": {
        "type": "object",
        "additionalProperties": False,
        "description": "Secrets are never sent: name the variable (secret_env) or file.",
        "properties": {
            "name": _STR,
            "backend": {"type": "string", "enum": ["ews", "graph"]},
            "url": {"type": "string", "format": "uri"},
            "auth_kind": {"type": "string", "enum": ["basic", "ntlm", "oauth"]},
            "username": _STR,
            "tenant": _STR,
            "client_id": _STR,
            "authority": {"type": "string", "format": "uri"},
            "secret_env": _STR,
            "secret_file": _STR,
            "ca_file": _STR,
            "time_zone": {"type": "string", "examples": ["Europe/Paris"]},
            "express_interval": {"type": "string", "examples": ["15m"]},
            "complete_at": {"type": "string", "pattern": "^\\d{1,2}:\\d{2}$"},
            "max_concurrency": {"type": "integer", "minimum": 1},
            "rate_per_second": {"type": "number", "exclusiveMinimum": 0},
        },
    },
    "Server": {"allOf": [_ref("ServerInput"), {"properties": {"id": {"type": "integer"}}}]},
    "Mailbox": {
        "type": "object",
        "properties": {
            "email": _STR,
            "crm_user_id": _STR,
            "server": _STR,
            "group": {"type": ["string", "null"]},
            "contacts": _MODE,
            "calendar": _MODE,
            "tasks": _MODE,
            "state": {"type": "string", "enum": list(MAILBOX_STATES)},
            "reason": {"type": ["string", "null"]},
            "failure_count": {"type": "integer"},
        },
    },
    "MailboxOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "group": {"type": ["string", "null"]},
            "contacts": _MODE,
            "calendar": _MODE,
            "tasks": _MODE,
        },
    },
    "ImportReport": {
        "type": "object",
        "properties": {
            "inserted": {"type": "integer"},
            "updated": {"type": "integer"},
            "invalid": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"line": {"type": "integer"}, "message": _STR},
                },
            },
        },
    },
    "SyncInput": {
        "type": "object",
        "additionalProperties": False,
        "description": "A mailbox, or groups and/or a server.",
        "properties": {
            "mailbox": _STR,
            "groups": {"type": "array", "items": _STR},
            "server": _STR,
            "mode": {"type": "string", "enum": ["express", "complete", "initial"]},
            "dry_run": {"type": "boolean"},
        },
    },
    "SyncRequest": {
        "type": "object",
        "properties": {
            "kind": _STR,
            "dry_run": {"type": "boolean"},
            "jobs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "mailbox": _STR,
                        "job_id": {"type": "integer"},
                        "coalesced": {"type": "boolean"},
                    },
                },
            },
            "skipped": {"type": "array", "items": _OBJ},
        },
    },
}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or _STR}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _op(
    summary: str,
    ok: dict[str, Any] | None = None,
    *,
    status: str = "200",
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    csv: bool = False,
) -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": _ref("Problem")}}}
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            status: {"description": "no content"}
            if status == "204"
            else {
                "description": "success",
                "content": {"application/json": {"schema": ok or _OBJ}},
            },
            "400": {"description": "invalid input (names the field)", **problem},
            "401": {"description": "missing or wrong bearer token", **problem},
            "404": {"description": "unknown server or mailbox", **problem},
            "409": {"description": "conflicts with the current state", **problem},
        },
    }
    if params:
        op["parameters"] = params
    if body is not None:
        kind = "text/csv" if csv else "application/json"
        op["requestBody"] = {"required": True, "content": {kind: {"schema": body}}}
    return op


def _paths() -> dict[str, Any]:
    email, name = _path("email"), _path("name")
    listing = [
        _query("state", "mailbox state", {"type": "string", "enum": list(MAILBOX_STATES)}),
        _query("group", "server group (repeatable)"),
        _query("server", "server name"),
        _query("limit", "page size (1-1000, default 100)", {"type": "integer"}),
        _query("cursor", "next_cursor of the previous page"),
    ]
    public: dict[str, Any] = {"security": []}
    text = {"200": {"description": "ok", "content": {"text/plain": {"schema": _STR}}}}
    return {
        "/healthz": {
            "get": {"summary": "alive", "responses": {"200": {"description": "ok"}}, **public}
        },
        "/readyz": {
            "get": {
                "summary": "ready: database, migrations, workers",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
                **public,
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": text, **public}},
        "/openapi.json": {"get": _op("this document")},
        "/api/v1/servers": {
            "get": _op("list servers"),
            "post": _op("add a server", _ref("Server"), status="201", body=_ref("ServerInput")),
        },
        "/api/v1/servers/{name}": {
            "parameters": [name],
            "get": _op("one server", _ref("Server")),
            "patch": _op("change a server's settings", _ref("Server"), body=_ref("ServerInput")),
            "delete": _op("remove a server that has no mailboxes", status="204"),
        },
        "/api/v1/servers/{name}/test": {
            "parameters": [name],
            "post": _op(
                "connect, authenticate, impersonate, write and remove a probe",
                body={"type": "object", "properties": {"mailbox": _STR}},
            ),
        },
        "/api/v1/mailboxes/import": {
            "post": _op("upsert mailboxes from CSV", _ref("ImportReport"), body=_STR, csv=True)
        },
        "/api/v1/mailboxes": {"get": _op("list mailboxes (paginated)", params=listing)},
        "/api/v1/mailboxes/{email}": {
            "parameters": [email],
            "get": _op("state, reason, last passes, item counts, errors"),
            "patch": _op("group and sync directions", _ref("Mailbox"), body=_ref("MailboxOptions")),
        },
        "/api/v1/mailboxes/{email}/enable": {
            "parameters": [email],
            "post": _op("enable a mailbox", _ref("Mailbox")),
        },
        "/api/v1/mailboxes/{email}/disable": {
            "parameters": [email],
            "post": _op(
                "disable a mailbox",
                _ref("Mailbox"),
                body={"type": "object", "properties": {"reason": _STR}},
            ),
        },
        "/api/v1/mailboxes/{email}/recover": {
            "parameters": [email],
            "post": _op(
                "queue a recover pass (deletes nothing)",
                _ref("SyncRequest"),
                status="202",
                body={"type": "object", "properties": {"dry_run": {"type": "boolean"}}},
            ),
        },
        "/api/v1/sync": {
            "post": _op("queue passes", _ref("SyncRequest"), status="202", body=_ref("SyncInput"))
        },
        "/api/v1/jobs": {
            "get": _op("job states", params=[_query("ids", "comma-separated job ids")])
        },
        "/api/v1/runs": {
            "get": _op(
                "recent passes",
                params=[
                    _query("mailbox", "SMTP address"),
                    _query("since", "e.g. 1h"),
                    _query("limit", "1-1000", {"type": "integer"}),
                ],
            )
        },
        "/api/v1/status": {"get": _op("overview: mailboxes, queue, last hour, engines, leader")},
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "sync-service admin API", "version": "1"},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": _paths(),
    }
