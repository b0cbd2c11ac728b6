"""A folder choice (id, well-known name, display path) resolved to a folder of a Graph mailbox.

Contacts: contact folders, a tree whose root is the default Contacts folder
(`contactFolders('contacts')`), walked through `childFolders`. Tasks and calendars: To Do
lists and calendars, which Graph lists side by side: a path is the default one's name and one
other's ("Tasks/CRM", "Calendar/CRM"). A calendar's name is `name`, a list's `displayName`.
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
EVENT = EntityKind.APPOINTMENT
DEFAULT_NAMES = {EntityKind.CONTACT: "contacts", EntityKind.TASK: "tasks", EVENT: "calendar"}


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
    if choice.by == "well_known":
        if choice.value.lower() not in (DEFAULT_NAMES[entity], "defaultlist"):
            raise FolderNotFoundError(
                f"well-known name {choice.value!r} is not a {entity.value} folder on Graph "
                f"(only {DEFAULT_NAMES[entity]!r})",
                code="ErrorFolderNotFound",
            )
        obj = await _default(client, mailbox, entity)
        return LinkedFolder(str(obj["id"]), _name(obj))
    if choice.by == "id":
        obj = await _get(client, mailbox, entity, choice.value)
        return LinkedFolder(str(obj["id"]), _name(obj))
    if entity is EntityKind.CONTACT:
        return await _contact_path(client, mailbox, choice.value, create)
    return await _flat_path(client, mailbox, entity, choice.value, create)


def _name(obj: Json) -> str:
    return str(obj.get("displayName", obj.get("name", "")))


async def _get(client: GraphFolderCalls, mailbox: str, entity: EntityKind, fid: str) -> Json:
    if entity is TASK:
        req = rq_folders.todo_list(mailbox, fid)
    elif entity is EVENT:
        req = rq_folders.calendar(mailbox, fid)
    else:
        req = rq_folders.contact_folder(mailbox, fid)
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
    if entity is EVENT:
        return await client.call(mailbox, rq_folders.default_calendar(mailbox), idempotent=True)
    return await _get(client, mailbox, entity, rq_folders.DEFAULT_CONTACTS)


def _check_first(path: str, parts: list[str], default: Json, entity: EntityKind) -> str:
    name = _name(default)
    if name.casefold() != parts[0].casefold():
        raise FolderNotFoundError(
            f"path {path!r} must start at the {entity.value} folder {name!r}, not {parts[0]!r}",
            code="ErrorFolderNotFound",
        )
    return name


def _named(pages: list[Page], name: str) -> Json | None:
    for page in pages:
        for obj in page.values:
            if _name(obj).casefold() == name.casefold():
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
        shown.append(_name(found) or part)
    return LinkedFolder(str(current["id"]), "/".join(shown), made)


async def _flat_path(
    client: GraphFolderCalls, mailbox: str, entity: EntityKind, path: str, create: bool
) -> LinkedFolder:
    """A To Do list or a calendar by path: the default one's name, then one other's."""
    parts = split_path(path)
    default = await _default(client, mailbox, entity)
    first = _check_first(path, parts, default, entity)
    if len(parts) == 1:
        return LinkedFolder(str(default["id"]), first)
    if len(parts) > 2:
        raise FolderNotFoundError(
            f"path {path!r}: {entity.value} folders do not nest on Graph "
            f"(give {first!r} and one name)",
            code="ErrorFolderNotFound",
        )
    listing = rq.todo_lists(mailbox) if entity is TASK else rq_folders.calendars(mailbox)
    found, made = _named(await client.pages(mailbox, listing, entity), parts[1]), False
    if found is None and not create:
        raise _missing(parts[1], [first], path)
    if found is None:
        made = True
        req = (
            rq_folders.create_todo_list(mailbox, parts[1])
            if entity is TASK
            else rq_folders.create_calendar(mailbox, parts[1])
        )
        found = await client.call(mailbox, req)
    return LinkedFolder(str(found["id"]), f"{first}/{_name(found) or parts[1]}", made)


def _missing(part: str, shown: list[str], path: str) -> FolderNotFoundError:
    return FolderNotFoundError(
        f"no folder {part!r} in {'/'.join(shown)!r} (path {path!r}; --create makes it)",
        code="ErrorFolderNotFound",
    )
