"""Sync filters in the admin API: `/api/v1/servers/{name}/filters` (a server's setting, the
default of its mailboxes) and `/api/v1/mailboxes/{email}/filters` (a mailbox's own setting,
overriding its server's key by key), read with GET and changed with PATCH (the keys given)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from sync_service.operator.filters import (
    mailbox_filters,
    server_filters,
    set_mailbox_filters,
    set_server_filters,
)
from sync_service.operator.http import Doc, ok, operations_of, plain, with_body
from sync_service.operator.models import Answer, Input
from sync_service.operator.server_specs import InvalidInput
from sync_service.planning.filter_settings import KEYS, MAX_ENTRIES

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module
Entry = Annotated[str, StringConstraints(max_length=320)]
Entries = Annotated[list[Entry], Field(max_length=MAX_ENTRIES)]


class FilterInput(Input):
    """Filter keys to set; a key not given keeps its value, a key given as null (or an empty
    list) means no filter of that kind."""

    categories: Entries | None = Field(None, description="only items with one of these")
    exclude_private: bool | None = Field(None, description="keep private appointments out")
    calendar_range: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        None, description="appointments from N days back to M days ahead: -30d:+365d"
    )
    block: Entries | None = Field(
        None, description="contacts with one of these addresses or domains (subdomains too)"
    )

    def changes(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in KEYS if key in self.model_fields_set}


class MailboxFilterInput(FilterInput):
    inherit: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(
        None, description=f"keys ({', '.join(KEYS)}) the mailbox takes from its server again"
    )


class FilterSetting(Answer):
    categories: list[str] | None = None
    exclude_private: bool | None = None
    calendar_range: str | None = None
    block: list[str] | None = None


class ServerFilters(Answer):
    server: str
    filters: FilterSetting = Field(description="the keys the server sets")


class MailboxFilters(Answer):
    own: FilterSetting = Field(description="the keys the mailbox sets itself")
    server: FilterSetting = Field(description="its server's setting")
    effective: FilterSetting = Field(description="the filter in effect")
    set_aside: dict[str, int] = Field(
        description="entity -> item pairs that left the filter (left as they are on both sides)"
    )


def _pool(request: web.Request) -> Any:
    ops = operations_of(request)
    return ops.pool


async def get_server_filters(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return ok({"server": name, "filters": await server_filters(_pool(request), name)})


async def patch_server_filters(request: web.Request, body: FilterInput) -> web.Response:
    name = request.match_info["name"]
    setting = await set_server_filters(_pool(request), name, body.changes())
    return ok({"server": name, "filters": setting})


async def get_mailbox_filters(request: web.Request) -> web.Response:
    return ok(await mailbox_filters(_pool(request), request.match_info["email"]))


async def patch_mailbox_filters(request: web.Request, body: MailboxFilterInput) -> web.Response:
    pool, email = _pool(request), request.match_info["email"]
    unknown = sorted(set(body.inherit or ()) - set(KEYS))
    if unknown:
        raise InvalidInput("inherit", f"{unknown[0]!r} is not a filter key ({', '.join(KEYS)})")
    current = (await mailbox_filters(pool, email))["own"]
    kept = {k: v for k, v in current.items() if k not in (body.inherit or ())}
    setting = {**kept, **body.changes()}
    return ok(await set_mailbox_filters(pool, email, setting, replace=True))


SERVER = f"{PREFIX}/servers/{{name}}/filters"
MAILBOX = f"{PREFIX}/mailboxes/{{email}}/filters"
ROUTES = (
    plain(
        "GET",
        SERVER,
        get_server_filters,
        Doc("a server's sync filters", "the setting", schema=ServerFilters),
    ),
    with_body(
        "PATCH",
        SERVER,
        FilterInput,
        patch_server_filters,
        Doc("change a server's sync filters (the keys given)", "the setting", schema=ServerFilters),
    ),
    plain(
        "GET",
        MAILBOX,
        get_mailbox_filters,
        Doc(
            "a mailbox's sync filters",
            "its setting, its server's, in effect",
            schema=MailboxFilters,
        ),
    ),
    with_body(
        "PATCH",
        MAILBOX,
        MailboxFilterInput,
        patch_mailbox_filters,
        Doc(
            "override a server's sync filters for one mailbox (the keys given)",
            "its setting, its server's, in effect",
            schema=MailboxFilters,
        ),
    ),
)
