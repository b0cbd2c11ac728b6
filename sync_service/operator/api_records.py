"""Record links in the admin API: `GET /api/v1/records/{entity}/{record_id}/users` (who holds
a shared record), `PUT` / `DELETE .../users/{email}` (link or unlink one CRM user) and
`POST /api/v1/records/link` / `POST /api/v1/records/unlink` (the CSV of `records link --csv`:
entity,record_id,email; invalid rows by line)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from pydantic import Field

from sync_service.operator.http import Doc, ok, operations_of, plain
from sync_service.operator.models import Answer, RowError
from sync_service.operator.records import RecordLinkOps
from sync_service.operator.server_specs import InvalidInput

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module


class Holder(Answer):
    email: str
    role: str = Field(description="owner or linked")
    holds: bool = Field(description="false: an owner whose Outlook delete dropped their copy")
    linked_at: str | None = None


class RecordUsers(Answer):
    entity: str
    record_id: str
    users: list[Holder]


class LinkResult(Answer):
    changed: int = Field(description="links made (or removed)")
    unchanged: int = Field(description="valid rows that named what was already so")
    invalid: list[RowError] = Field(description="rows skipped, by line")


def _records(request: web.Request) -> RecordLinkOps:
    ops = operations_of(request)
    return RecordLinkOps(ops.pool)


async def list_users(request: web.Request) -> web.Response:
    info = request.match_info
    return ok(await _records(request).show(info["entity"], info["record_id"]))


async def _one(request: web.Request, unlink: bool) -> web.Response:
    info = request.match_info
    records = _records(request)
    await records.change_one(unlink, info["entity"], info["record_id"], info["email"])
    return ok(await records.show(info["entity"], info["record_id"]))


async def put_user(request: web.Request) -> web.Response:
    return await _one(request, unlink=False)


async def delete_user(request: web.Request) -> web.Response:
    return await _one(request, unlink=True)


async def _csv(request: web.Request, unlink: bool) -> web.Response:
    try:
        text = (await request.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the CSV must be UTF-8 text") from None
    if not text.strip():
        raise InvalidInput("body", "empty body; send the CSV file (text/csv)")
    return ok(asdict(await _records(request).import_csv(text, unlink=unlink)))


async def link_csv(request: web.Request) -> web.Response:
    return await _csv(request, unlink=False)


async def unlink_csv(request: web.Request) -> web.Response:
    return await _csv(request, unlink=True)


USERS = f"{PREFIX}/records/{{entity}}/{{record_id}}/users"
ONE = f"{USERS}/{{email}}"
ROUTES = (
    plain("GET", USERS, list_users, Doc("who holds a record", "its users", schema=RecordUsers)),
    plain(
        "PUT",
        ONE,
        put_user,
        Doc("link a CRM user to a record: their mailbox gets a copy", "its users",
            schema=RecordUsers),
    ),
    plain(
        "DELETE",
        ONE,
        delete_user,
        Doc("unlink a CRM user: their copy leaves their mailbox", "its users",
            schema=RecordUsers),
    ),
    plain(
        "POST",
        f"{PREFIX}/records/link",
        link_csv,
        Doc("link users to records from CSV (entity,record_id,email)", "what was linked",
            schema=LinkResult, csv=True),
    ),
    plain(
        "POST",
        f"{PREFIX}/records/unlink",
        unlink_csv,
        Doc("unlink users from records from CSV (entity,record_id,email)", "what was unlinked",
            schema=LinkResult, csv=True),
    ),
)  # fmt: skip
