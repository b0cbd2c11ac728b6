"""FindItem by CRM id, GetFolder and FindFolder: pure builders and parsers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ews_client.errors import ProtocolError
from ews_client.ews.ids import (
    CRM_ID_PATH,
    FieldURI,
    FolderId,
    FolderRef,
    add_folder_id,
    add_item_shape,
    add_path,
    read_item_ref,
)
from ews_client.ews.soap import envelope, message_error, response_messages, single_message
from ews_client.ews.xml import Element, m, new, sub, t
from ews_client.models import ItemRef


def build_find_by_crm_id(mailbox: str, folder: FolderRef, crm_id: str) -> bytes:
    """FindItem (Shallow) with an IsEqualTo restriction on the CRM-id extended property."""
    req = new(m("FindItem"), Traversal="Shallow")
    add_item_shape(req, m("ItemShape"), [CRM_ID_PATH])
    sub(req, m("IndexedPageItemView"), MaxEntriesReturned="10", Offset="0", BasePoint="Beginning")
    eq = sub(sub(req, m("Restriction")), t("IsEqualTo"))
    add_path(eq, CRM_ID_PATH)
    sub(sub(eq, t("FieldURIOrConstant")), t("Constant"), Value=crm_id)
    add_folder_id(sub(req, m("ParentFolderIds")), folder)
    return envelope(req, mailbox)


def parse_find_item(data: bytes) -> list[ItemRef]:
    """The ids of the items found (empty when none)."""
    msg = single_message(data, "FindItem")
    root = msg.find(m("RootFolder"))
    if root is None:
        raise ProtocolError("FindItem response without RootFolder")
    items = root.find(t("Items"))
    if items is None:
        return []
    return [read_item_ref(el.find(t("ItemId"))) for el in items]


@dataclass(frozen=True, slots=True)
class FolderInfo:
    folder: FolderId
    display_name: str | None = None
    folder_class: str | None = None
    total_count: int | None = None


_FOLDER_PROPS = (FieldURI("folder:DisplayName"), FieldURI("folder:FolderClass"),
                 FieldURI("folder:TotalCount"))  # fmt: skip


def _folder_shape(req: Element) -> None:
    shape = sub(req, m("FolderShape"))
    sub(shape, t("BaseShape"), "IdOnly")
    extra = sub(shape, t("AdditionalProperties"))
    for path in _FOLDER_PROPS:
        add_path(extra, path)


def build_get_folder(mailbox: str, folders: Sequence[FolderRef]) -> bytes:
    """GetFolder for distinguished ids (with mailbox) or folder ids."""
    req = new(m("GetFolder"))
    _folder_shape(req)
    arr = sub(req, m("FolderIds"))
    for folder in folders:
        add_folder_id(arr, folder)
    return envelope(req, mailbox)


def parse_folder_element(el: Element) -> FolderInfo:
    """A folder element of a GetFolder, FindFolder or CreateFolder answer."""
    fid = el.find(t("FolderId"))
    if fid is None or not fid.get("Id"):
        raise ProtocolError("folder without FolderId")
    count = el.findtext(t("TotalCount"))
    return FolderInfo(
        folder=FolderId(fid.get("Id", ""), fid.get("ChangeKey", "")),
        display_name=el.findtext(t("DisplayName")),
        folder_class=el.findtext(t("FolderClass")),
        total_count=int(count) if count and count.isdigit() else None,
    )


def parse_get_folder(data: bytes) -> list[FolderInfo]:
    """One folder per requested id; the first per-message error is raised."""
    out: list[FolderInfo] = []
    for msg in response_messages(data, "GetFolder"):
        err = message_error(msg)
        if err is not None:
            raise err
        folders = msg.find(m("Folders"))
        out.extend(parse_folder_element(el) for el in ([] if folders is None else folders))
    return out


def build_find_folder(mailbox: str, parent: FolderRef, display_name: str | None) -> bytes:
    """FindFolder (Shallow) under `parent` with DisplayName IsEqualTo `display_name` (None:
    every folder directly inside `parent`)."""
    req = new(m("FindFolder"), Traversal="Shallow")
    _folder_shape(req)
    if display_name is not None:
        eq = sub(sub(req, m("Restriction")), t("IsEqualTo"))
        add_path(eq, FieldURI("folder:DisplayName"))
        sub(sub(eq, t("FieldURIOrConstant")), t("Constant"), Value=display_name)
    add_folder_id(sub(req, m("ParentFolderIds")), parent)
    return envelope(req, mailbox)


def parse_find_folder(data: bytes) -> list[FolderInfo]:
    msg = single_message(data, "FindFolder")
    root = msg.find(m("RootFolder"))
    if root is None:
        raise ProtocolError("FindFolder response without RootFolder")
    folders = root.find(t("Folders"))
    return [] if folders is None else [parse_folder_element(el) for el in folders]
