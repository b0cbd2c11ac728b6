"""A folder choice (id, well-known name, display path) resolved to a folder of an EWS mailbox:
GetFolder and FindFolder one level at a time, CreateFolder for a missing part when asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ews_client.errors import ExchangeError, FolderNotFoundError, ItemNotFoundError
from ews_client.ews import folders
from ews_client.ews.convert import FOLDER_OF
from ews_client.ews.find import FolderInfo
from ews_client.ews.ids import DistinguishedFolder, FolderId, FolderRef
from ews_client.models import EntityKind, FolderChoice, LinkedFolder

# The codes of a folder that is not there: a GetFolder or FindFolder on a deleted folder
# answers ErrorFolderNotFound, a SyncFolderItems ErrorSyncFolderNotFound.
FOLDER_GONE_CODES = frozenset({"ErrorFolderNotFound", "ErrorSyncFolderNotFound",
                               "ErrorParentFolderNotFound"})  # fmt: skip


class FolderCalls(Protocol):
    """What resolution needs of EwsClient (which composes it, so no import back)."""

    async def get_folder(self, mailbox: str, refs: Sequence[FolderRef]) -> list[FolderInfo]: ...

    async def find_folder(
        self, mailbox: str, parent: FolderRef, name: str | None
    ) -> list[FolderInfo]: ...

    async def create_folder(
        self, mailbox: str, parent: FolderRef, entity: EntityKind, name: str
    ) -> FolderInfo: ...


def gone(exc: ExchangeError, choice: str) -> FolderNotFoundError:
    return FolderNotFoundError(f"folder {choice} is not in the mailbox: {exc}", code=exc.code)


async def resolve(
    client: FolderCalls, mailbox: str, entity: EntityKind, choice: FolderChoice, create: bool
) -> LinkedFolder:
    if choice.by == "path":
        return await _by_path(client, mailbox, entity, choice.value, create)
    ref: FolderRef = (
        FolderId(choice.value)
        if choice.by == "id"
        else DistinguishedFolder(choice.value.lower(), mailbox)
    )
    info = await _one(client, mailbox, ref, f"{choice.by} {choice.value!r}")
    _check_class(entity, info, choice.value)
    return LinkedFolder(info.folder.id, info.display_name or "")


async def _one(client: FolderCalls, mailbox: str, ref: FolderRef, shown: str) -> FolderInfo:
    try:
        found = await client.get_folder(mailbox, [ref])
    except ItemNotFoundError as exc:
        raise gone(exc, shown) from exc
    except ExchangeError as exc:
        # A well-known name Exchange does not know, or a malformed id, is no such folder.
        if exc.code not in ("ErrorInvalidIdMalformed", "ErrorSchemaValidation"):
            raise
        raise gone(exc, shown) from exc
    return found[0]


def _check_class(entity: EntityKind, info: FolderInfo, shown: str) -> None:
    if not folders.holds(entity, info.folder_class):
        raise FolderNotFoundError(
            f"folder {shown!r} holds {info.folder_class or 'other'} items, not {entity.value}s",
            code="FolderClass",
        )


async def _by_path(
    client: FolderCalls, mailbox: str, entity: EntityKind, path: str, create: bool
) -> LinkedFolder:
    parts = folders.split_path(path)
    default = DistinguishedFolder(FOLDER_OF[entity], mailbox)
    current = await _one(client, mailbox, default, f"well_known {FOLDER_OF[entity]!r}")
    if (current.display_name or "").casefold() != parts[0].casefold():
        raise FolderNotFoundError(
            f"path {path!r} must start at the {entity.value} folder "
            f"{current.display_name!r}, not {parts[0]!r}",
            code="ErrorFolderNotFound",
        )
    shown, made = [current.display_name or parts[0]], False
    for part in parts[1:]:
        # Every folder inside, matched here: Outlook's folder names ignore case.
        inside = await client.find_folder(mailbox, current.folder, None)
        found = [f for f in inside if (f.display_name or "").casefold() == part.casefold()]
        if found:
            current = found[0]
        elif create:
            current = await client.create_folder(mailbox, current.folder, entity, part)
            made = True
        else:
            raise FolderNotFoundError(
                f"no folder {part!r} in {'/'.join(shown)!r} (path {path!r}; --create makes it)",
                code="ErrorFolderNotFound",
            )
        shown.append(current.display_name or part)
    if not made:
        _check_class(entity, current, path)
    return LinkedFolder(current.folder.id, "/".join(shown), made)
