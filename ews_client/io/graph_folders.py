"""A folder choice (id, well-known name, display path) resolved to a folder of a Graph mailbox.

Contacts: contact folders, a tree whose root is the default Contacts folder
(`contactFolders('contacts')`), walked through `childFolders`. Tasks: To Do lists, which do
not nest: a path is the default list's name and one list's ("Tasks/CRM"). Calendars other
than the default one are not linked over Graph (refused by name).
"""

from __future__ import annotations

from typing import Protocol

from ews_client.errors import ExchangeError, FolderNotFoundError, ItemNotFoundError
from ews_client.ews.folders import split_path
from ews_client.graph import folders as rq_folders
from ews_client.graph import requests as rq
from ews_client.graph.responses import Page
from ews_client.graph.wire import Json
from ews_client.models import EntityKind, FolderChoice, LinkedFolder

TASK = EntityKind.TASK
DEFAULT_NAMES = {EntityKind.CONTACT: "contacts", EntityKind.TASK: "tasks"}


class GraphFolderCalls(Protocol):
    """What resolution needs of GraphClient (which composes it, so no import back)."""

    async def call(self, mailbox: str, req: rq.GraphRequest, *, idempotent: bool = False) -> Json:
        """One request; the JSON body of a 2xx answer."""

    async def pages(self, mailbox: str, first: rq.GraphRequest, kind: EntityKind) -> list[Page]:
        """Every page from `first`."""

    async def list_id(self, mailbox: str) -> str:
        """The default To Do list's id."""


async def resolve(
    client: GraphFolderCalls,
    mailbox: str,
    entity: EntityKind,
    choice: FolderChoice,
    create: bool,
) -> LinkedFolder:
    if entity is EntityKind.APPOINTMENT:
        raise FolderNotFoundError(
            "a calendar other than the default one cannot be linked on a Graph server",
            code="Unsupported",
        )
    if choice.by == "well_known":
        if choice.value.lower() not in (DEFAULT_NAMES[entity], "defaultlist"):
            raise FolderNotFoundError(
                f"well-known name {choice.value!r} is not a {entity.value} folder on Graph "
                f"(only {DEFAULT_NAMES[entity]!r})",
                code="ErrorFolderNotFound",
            )
        obj = await _default(client, mailbox, entity)
        return LinkedFolder(str(obj["id"]), str(obj.get("displayName", "")))
    if choice.by == "id":
        obj = await _get(client, mailbox, entity, choice.value)
        return LinkedFolder(str(obj["id"]), str(obj.get("displayName", "")))
    if entity is TASK:
        return await _list_path(client, mailbox, choice.value, create)
    return await _contact_path(client, mailbox, choice.value, create)


async def _get(client: GraphFolderCalls, mailbox: str, entity: EntityKind, fid: str) -> Json:
    req = rq_folders.todo_list(mailbox, fid) if entity is TASK else (
        rq_folders.contact_folder(mailbox, fid))  # fmt: skip
    try:
        return await client.call(mailbox, req, idempotent=True)
    except ItemNotFoundError as exc:
        message = f"folder id {fid!r} is not in the mailbox"
        raise FolderNotFoundError(message, code=exc.code) from exc
    except ExchangeError as exc:
        if exc.code not in ("ErrorInvalidIdMalformed", "HTTP400"):
            raise
        raise FolderNotFoundError(f"folder id {fid!r} is malformed", code=exc.code) from exc


async def _default(client: GraphFolderCalls, mailbox: str, entity: EntityKind) -> Json:
    if entity is TASK:
        return await _get(client, mailbox, TASK, await client.list_id(mailbox))
    return await _get(client, mailbox, entity, rq_folders.DEFAULT_CONTACTS)


def _check_first(path: str, parts: list[str], default: Json, entity: EntityKind) -> str:
    name = str(default.get("displayName", ""))
    if name.casefold() != parts[0].casefold():
        raise FolderNotFoundError(
            f"path {path!r} must start at the {entity.value} folder {name!r}, not {parts[0]!r}",
            code="ErrorFolderNotFound",
        )
    return name


def _named(pages: list[Page], name: str) -> Json | None:
    for page in pages:
        for obj in page.values:
            if str(obj.get("displayName", "")).casefold() == name.casefold():
                return obj
    return None


async def _contact_path(
    client: GraphFolderCalls, mailbox: str, path: str, create: bool
) -> LinkedFolder:
    parts = split_path(path)
    current = await _default(client, mailbox, EntityKind.CONTACT)
    shown, made = [_check_first(path, parts, current, EntityKind.CONTACT)], False
    for part in parts[1:]:
        fid = str(current["id"])
        children = await client.pages(
            mailbox, rq_folders.child_folders(mailbox, fid), EntityKind.CONTACT
        )
        found = _named(children, part)
        if found is None and not create:
            raise _missing(part, shown, path)
        if found is None:
            found = await client.call(mailbox, rq_folders.create_child_folder(mailbox, fid, part))
            made = True
        current = found
        shown.append(str(found.get("displayName", part)))
    return LinkedFolder(str(current["id"]), "/".join(shown), made)


async def _list_path(
    client: GraphFolderCalls, mailbox: str, path: str, create: bool
) -> LinkedFolder:
    parts = split_path(path)
    default = await _default(client, mailbox, TASK)
    first = _check_first(path, parts, default, TASK)
    if len(parts) == 1:
        return LinkedFolder(str(default["id"]), first)
    if len(parts) > 2:
        raise FolderNotFoundError(
            f"path {path!r}: To Do lists do not nest (give {first!r} and one list's name)",
            code="ErrorFolderNotFound",
        )
    lists = await client.pages(mailbox, rq.todo_lists(mailbox), TASK)
    found, made = _named(lists, parts[1]), False
    if found is None and not create:
        raise _missing(parts[1], [first], path)
    if found is None:
        made = True
        found = await client.call(mailbox, rq_folders.create_todo_list(mailbox, parts[1]))
    return LinkedFolder(str(found["id"]), f"{first}/{found.get('displayName', parts[1])}", made)


def _missing(part: str, shown: list[str], path: str) -> FolderNotFoundError:
    return FolderNotFoundError(
        f"no folder {part!r} in {'/'.join(shown)!r} (path {path!r}; --create makes it)",
        code="ErrorFolderNotFound",
    )
