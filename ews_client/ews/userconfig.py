"""Create/Get/UpdateUserConfiguration: a named, hidden (folder-associated) object per mailbox.

We store a flat string dictionary (`t:Dictionary`, entries of Type String); the sync marker
lives there: hidden from the user, one per mailbox (ews_client/PROTOCOL_NOTES.md, "Writes").
"""

from __future__ import annotations

from collections.abc import Mapping

from ews_client.errors import ProtocolError
from ews_client.ews.ids import FolderRef, add_folder_id
from ews_client.ews.soap import envelope, single_message
from ews_client.ews.xml import Element, m, new, sub, t


def _add_name(parent: Element, tag: str, folder: FolderRef, name: str) -> None:
    el = sub(parent, tag, Name=name)
    add_folder_id(el, folder)


def _add_dictionary(parent: Element, entries: Mapping[str, str]) -> None:
    dic = sub(parent, t("Dictionary"))
    for key, value in sorted(entries.items()):
        entry = sub(dic, t("DictionaryEntry"))
        for tag, text in (("DictionaryKey", key), ("DictionaryValue", value)):
            obj = sub(entry, t(tag))
            sub(obj, t("Type"), "String")
            sub(obj, t("Value"), text)


def _build_write(op: str, mailbox: str, folder: FolderRef, name: str,
                 entries: Mapping[str, str]) -> bytes:  # fmt: skip
    req = new(m(op))
    cfg = sub(req, m("UserConfiguration"))
    _add_name(cfg, t("UserConfigurationName"), folder, name)
    _add_dictionary(cfg, entries)
    return envelope(req, mailbox)


def build_create_user_configuration(
    mailbox: str, folder: FolderRef, name: str, entries: Mapping[str, str]
) -> bytes:
    return _build_write("CreateUserConfiguration", mailbox, folder, name, entries)


def build_update_user_configuration(
    mailbox: str, folder: FolderRef, name: str, entries: Mapping[str, str]
) -> bytes:
    return _build_write("UpdateUserConfiguration", mailbox, folder, name, entries)


def build_get_user_configuration(mailbox: str, folder: FolderRef, name: str) -> bytes:
    req = new(m("GetUserConfiguration"))
    _add_name(req, m("UserConfigurationName"), folder, name)
    sub(req, m("UserConfigurationProperties"), "Dictionary")
    return envelope(req, mailbox)


def parse_create_user_configuration(data: bytes) -> None:
    single_message(data, "CreateUserConfiguration")


def parse_update_user_configuration(data: bytes) -> None:
    single_message(data, "UpdateUserConfiguration")


def _value(obj: Element | None) -> str | None:
    if obj is None:
        return None
    return obj.findtext(t("Value"))


def parse_get_user_configuration(data: bytes) -> dict[str, str]:
    """The dictionary; ErrorItemNotFound (no such configuration) is raised as mapped."""
    msg = single_message(data, "GetUserConfiguration")
    cfg = msg.find(m("UserConfiguration"))
    if cfg is None:
        raise ProtocolError("GetUserConfiguration response without UserConfiguration")
    out: dict[str, str] = {}
    dic = cfg.find(t("Dictionary"))
    for entry in [] if dic is None else dic.iterfind(t("DictionaryEntry")):
        key = _value(entry.find(t("DictionaryKey")))
        if key is not None:
            out[key] = _value(entry.find(t("DictionaryValue"))) or ""
    return out
