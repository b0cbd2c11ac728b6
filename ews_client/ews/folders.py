"""Folders of linked entities: CreateFolder (pure builder and parser), folder display paths,
and which folder class holds which entity."""

from __future__ import annotations

from ews_client.errors import ProtocolError
from ews_client.ews.find import FolderInfo, parse_folder_element
from ews_client.ews.ids import FolderRef, add_folder_id
from ews_client.ews.soap import envelope, single_message
from ews_client.ews.xml import m, new, sub, t
from ews_client.models import EntityKind

# The folder class of each entity's folders; a subclass ("IPF.Contact.MOC.QuickContacts")
# holds the same items.
FOLDER_CLASS: dict[EntityKind, str] = {
    EntityKind.CONTACT: "IPF.Contact",
    EntityKind.APPOINTMENT: "IPF.Appointment",
    EntityKind.TASK: "IPF.Task",
}
# The typed folder element CreateFolder makes for each entity (it sets the folder class).
_FOLDER_ELEMENT: dict[EntityKind, str] = {
    EntityKind.CONTACT: "ContactsFolder",
    EntityKind.APPOINTMENT: "CalendarFolder",
    EntityKind.TASK: "TasksFolder",
}
PATH_SEPARATOR = "/"
# Exchange: a folder's display name is at most 255 characters.
NAME_MAX = 255


def split_path(path: str) -> list[str]:
    """The parts of a display path ("Contacts/CRM" -> ["Contacts", "CRM"]); ValueError for an
    empty part or one over Exchange's 255 characters."""
    parts = [part.strip() for part in path.strip().strip(PATH_SEPARATOR).split(PATH_SEPARATOR)]
    if not parts or any(not part for part in parts):
        raise ValueError(f"a folder path has no empty part: {path!r}")
    too_long = [part for part in parts if len(part) > NAME_MAX]
    if too_long:
        raise ValueError(f"a folder name is at most {NAME_MAX} characters")
    return parts


def holds(entity: EntityKind, folder_class: str | None) -> bool:
    """Whether a folder of `folder_class` holds the entity's items."""
    wanted = FOLDER_CLASS[entity]
    return folder_class is not None and (
        folder_class == wanted or folder_class.startswith(wanted + ".")
    )


def build_create_folder(mailbox: str, parent: FolderRef, entity: EntityKind, name: str) -> bytes:
    """CreateFolder of one folder for the entity's items under `parent`."""
    req = new(m("CreateFolder"))
    add_folder_id(sub(req, m("ParentFolderId")), parent)
    folder = sub(sub(req, m("Folders")), t(_FOLDER_ELEMENT[entity]))
    sub(folder, t("DisplayName"), name)
    return envelope(req, mailbox)


def parse_create_folder(data: bytes) -> FolderInfo:
    """The folder made (its id); the message's error is raised (ErrorFolderExists: a folder
    of that name is already there)."""
    msg = single_message(data, "CreateFolder")
    folders = msg.find(m("Folders"))
    if folders is None or len(folders) != 1:
        raise ProtocolError("CreateFolder response without its folder")
    return parse_folder_element(folders[0])
