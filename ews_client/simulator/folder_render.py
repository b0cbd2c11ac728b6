"""Folders as EWS XML in the requested FolderShape: a base shape plus AdditionalProperties.

`Default` returns what Exchange's BaseShape reference lists per folder kind (FolderId,
DisplayName, TotalCount, ChildFolderCount; UnreadCount for mail folders; a calendar folder no
TotalCount); `AllProperties` everything the simulator keeps; `IdOnly` the id alone.
Additional properties are added to any base. A property the folder's schema type has no place
for (UnreadCount on a contacts folder), or that the simulator does not keep (PermissionSet,
ManagedFolderInformation, retention tags), is left out, as Exchange leaves out what a folder
does not have (ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from .context import OpError
from .store import FOLDER_LAYOUT, Folder, Mailbox
from .xmlutil import child_order, kids, local, sub, t

_ELEMENTS = {
    "IPF.Contact": ("ContactsFolder", "ContactsFolderType"),
    "IPF.Appointment": ("CalendarFolder", "CalendarFolderType"),
    "IPF.Task": ("TasksFolder", "TasksFolderType"),
}
_GENERIC = ("Folder", "FolderType")
_DEFAULT = {
    "ContactsFolder": ("FolderId", "DisplayName", "TotalCount", "ChildFolderCount"),
    "CalendarFolder": ("FolderId", "DisplayName", "ChildFolderCount"),
    "TasksFolder": ("FolderId", "DisplayName", "TotalCount", "ChildFolderCount"),
    "Folder": ("FolderId", "DisplayName", "UnreadCount", "TotalCount", "ChildFolderCount"),
}
# The service account may do everything in a mailbox it impersonates.
_RIGHTS = ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete", "Modify", "Read",
           "ViewPrivateItems")  # fmt: skip


@dataclass(frozen=True, slots=True)
class FolderShape:
    base: str  # IdOnly | Default | AllProperties
    extra: frozenset[str] = frozenset()  # local names from folder:* FieldURIs


def parse_folder_shape(element: etree._Element | None) -> FolderShape:
    """The m:FolderShape of a GetFolder / FindFolder request (the schema requires it)."""
    if element is None:
        return FolderShape("Default")
    base = element.findtext(t("BaseShape")) or "Default"
    names = set()
    for path in kids(element, t("AdditionalProperties")):
        if local(path.tag) == "ExtendedFieldURI":
            continue  # folders here carry no extended properties: none to return
        uri = path.get("FieldURI", "")
        if local(path.tag) != "FieldURI" or not uri.startswith("folder:"):
            raise OpError("ErrorInvalidPropertyRequest", f"not a folder property: {uri}")
        names.add(uri.split(":", 1)[1])
    return FolderShape(base, frozenset(names))


def render_folder(box: Mailbox, folder: Folder, shape: FolderShape) -> etree._Element:
    """The folder element for `folder` in `shape`, children in schema order."""
    tag, type_name = _ELEMENTS.get(folder.folder_class, _GENERIC)
    wanted = _wanted(tag, shape)
    out = etree.Element(t(tag))
    for name in child_order(type_name):
        value = _VALUES.get(name)
        if value is not None and (wanted is None or name in wanted):
            value(out, box, folder)
    return out


def _wanted(tag: str, shape: FolderShape) -> frozenset[str] | None:
    if shape.base == "AllProperties":
        return None
    base = {"FolderId"} if shape.base == "IdOnly" else set(_DEFAULT[tag])
    return frozenset(base | shape.extra)


def folder_ck(box: Mailbox) -> str:
    return f"AQAAAB{box.epoch}"


def _folder_id(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    sub(out, t("FolderId"), Id=folder.id, ChangeKey=folder_ck(box))


def _parent_id(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    if folder.parent_id:
        sub(out, t("ParentFolderId"), Id=folder.parent_id, ChangeKey=folder_ck(box))


def _folder_class(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    if folder.folder_class:
        sub(out, t("FolderClass"), folder.folder_class)


def _display_name(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    sub(out, t("DisplayName"), folder.display_name)


def _total_count(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    sub(out, t("TotalCount"), str(len(folder.items)))


def _child_count(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    children = sum(1 for f in box.folders.values() if f.parent_id == folder.id)
    sub(out, t("ChildFolderCount"), str(children))


def _effective_rights(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    rights = sub(out, t("EffectiveRights"))
    for name in _RIGHTS:
        sub(rights, t(name), "true")


def _distinguished_id(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    if folder.name in FOLDER_LAYOUT:
        sub(out, t("DistinguishedFolderId"), folder.name)


def _unread_count(out: etree._Element, box: Mailbox, folder: Folder) -> None:
    # Contacts, calendar items and tasks are never unread (no IsRead property).
    sub(out, t("UnreadCount"), "0")


_VALUES: dict[str, Callable[[etree._Element, Mailbox, Folder], None]] = {
    "FolderId": _folder_id,
    "ParentFolderId": _parent_id,
    "FolderClass": _folder_class,
    "DisplayName": _display_name,
    "TotalCount": _total_count,
    "ChildFolderCount": _child_count,
    "EffectiveRights": _effective_rights,
    "DistinguishedFolderId": _distinguished_id,
    "UnreadCount": _unread_count,
}
