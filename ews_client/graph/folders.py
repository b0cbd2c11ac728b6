"""Graph requests for linked folders: contact folders (a tree under the default Contacts
folder, which Graph also names by its well-known name `contacts`), calendars and To Do lists
(both flat: a user's calendars and lists are listed side by side, each with its name)."""

from __future__ import annotations

from urllib.parse import quote

from ews_client.graph.requests import GraphRequest, user

# `contactFolders('contacts')`: the default Contacts folder by its well-known name.
DEFAULT_CONTACTS = "contacts"


def _folder(mailbox: str, folder_id: str) -> str:
    return f"{user(mailbox)}/contactFolders/{quote(folder_id, safe='')}"


def contact_folder(mailbox: str, folder_id: str) -> GraphRequest:
    return GraphRequest("GET", _folder(mailbox, folder_id))


def child_folders(mailbox: str, folder_id: str) -> GraphRequest:
    """The folders directly inside a contact folder (paged by `@odata.nextLink`)."""
    return GraphRequest("GET", f"{_folder(mailbox, folder_id)}/childFolders")


def create_child_folder(mailbox: str, parent_id: str, name: str) -> GraphRequest:
    body = {"displayName": name}
    return GraphRequest("POST", f"{_folder(mailbox, parent_id)}/childFolders", body)


def todo_list(mailbox: str, list_id: str) -> GraphRequest:
    return GraphRequest("GET", f"{user(mailbox)}/todo/lists/{quote(list_id, safe='')}")


def create_todo_list(mailbox: str, name: str) -> GraphRequest:
    return GraphRequest("POST", f"{user(mailbox)}/todo/lists", {"displayName": name})


def default_calendar(mailbox: str) -> GraphRequest:
    return GraphRequest("GET", f"{user(mailbox)}/calendar")


def calendar(mailbox: str, calendar_id: str) -> GraphRequest:
    return GraphRequest("GET", f"{user(mailbox)}/calendars/{quote(calendar_id, safe='')}")


def calendars(mailbox: str) -> GraphRequest:
    """The user's calendars (paged by `@odata.nextLink`); a calendar's name is `name`."""
    return GraphRequest("GET", f"{user(mailbox)}/calendars")


def create_calendar(mailbox: str, name: str) -> GraphRequest:
    return GraphRequest("POST", f"{user(mailbox)}/calendars", {"name": name})
