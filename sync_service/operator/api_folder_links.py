"""Folder links in the admin API: `/api/v1/mailboxes/{email}/folder-links` (each entity's
folder, its state and error), `PUT` / `DELETE .../folder-links/{entity}` (link an entity to
a folder, or back to its default one) and `POST /api/v1/folder-links/import` (the CSV of
`mailboxes folder-link import`: email,entity,folder[,create], invalid rows by line)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from sync_service.operator.folder_links import VALUE_MAX, FolderLinks
from sync_service.operator.http import Doc, ok, operations_of, plain, with_body
from sync_service.operator.models import Answer, Input, RowError
from sync_service.operator.server_specs import InvalidInput

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module


class FolderLinkInput(Input):
    folder: Annotated[str, StringConstraints(min_length=1, max_length=VALUE_MAX)] = Field(
        description="a display path from the entity's default folder (Contacts/CRM), "
        "id:FOLDER_ID or well-known:NAME"
    )
    create: bool = Field(False, description="make a path's missing folders")


class FolderLinkAnswer(Answer):
    entity: str = Field(description="contacts, calendar or tasks")
    folder: str = Field(description="'default', or the choice (path:..., id:..., well_known:...)")
    state: str = Field(description="ok (default folder), pending, resolved or error")
    create: bool | None = None
    folder_id: str | None = None
    path: str | None = Field(None, description="the display path it resolved to")
    error: str | None = Field(None, description="why the link cannot be served")
    error_at: str | None = None
    rematch: bool | None = Field(None, description="the next pass matches the folder afresh")


class FolderLinkList(Answer):
    mailbox: str
    folders: list[FolderLinkAnswer]


class FolderLinkImport(Answer):
    changed: int = Field(description="links set or changed")
    unchanged: int = Field(description="rows that named the link already in place")
    invalid: list[RowError] = Field(description="rows skipped, by line")


def _links(request: web.Request) -> FolderLinks:
    ops = operations_of(request)
    return FolderLinks(ops)


async def list_links(request: web.Request) -> web.Response:
    email = request.match_info["email"]
    return ok({"mailbox": email, "folders": await _links(request).show(email)})


async def put_link(request: web.Request, body: FolderLinkInput) -> web.Response:
    info = request.match_info
    return ok(await _links(request).set(info["email"], info["entity"], body.folder, body.create))


async def delete_link(request: web.Request) -> web.Response:
    info = request.match_info
    return ok(await _links(request).clear(info["email"], info["entity"]))


async def import_links(request: web.Request) -> web.Response:
    try:
        text = (await request.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the CSV must be UTF-8 text") from None
    if not text.strip():
        raise InvalidInput("body", "empty body; send the CSV file (text/csv)")
    report: dict[str, Any] = asdict(await _links(request).import_csv(text))
    return ok(report)


LINKS = f"{PREFIX}/mailboxes/{{email}}/folder-links"
ONE = f"{LINKS}/{{entity}}"
ROUTES = (
    plain(
        "GET",
        LINKS,
        list_links,
        Doc("each entity's Exchange folder", "the folders", schema=FolderLinkList),
    ),
    with_body(
        "PUT",
        ONE,
        FolderLinkInput,
        put_link,
        Doc(
            "link an entity (contacts, calendar, tasks) to a folder; the next pass resolves "
            "it and matches it afresh",
            "the link",
            schema=FolderLinkAnswer,
        ),
    ),
    plain(
        "DELETE",
        ONE,
        delete_link,
        Doc("sync the entity's default folder again", "the link", schema=FolderLinkAnswer),
    ),
    plain(
        "POST",
        f"{PREFIX}/folder-links/import",
        import_links,
        Doc(
            "set folder links from CSV (email,entity,folder[,create])",
            "what was set",
            schema=FolderLinkImport,
            csv=True,
        ),
    ),
)
