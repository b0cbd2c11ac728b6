"""Create/Get/UpdateUserConfiguration: hidden (folder-associated) per-mailbox data.

User configurations live beside a folder's items, never among them: FindItem and
SyncFolderItems do not show them.
"""

from __future__ import annotations

import copy

from lxml import etree

from . import soap
from .context import Ctx, OpError, resolve_folder
from .store import UserConfig, encode_id
from .xmlutil import m, sub, t


def _key(ctx: Ctx, name_el: etree._Element) -> tuple[str, str]:
    folder = resolve_folder(ctx, name_el[0])
    return folder.id, name_el.get("Name", "")


def _fill(config: UserConfig, element: etree._Element) -> None:
    dictionary = element.find(t("Dictionary"))
    config.dictionary = copy.deepcopy(dictionary) if dictionary is not None else None
    config.xml_data = element.findtext(t("XmlData"))
    config.binary_data = element.findtext(t("BinaryData"))


def create_user_configuration(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("CreateUserConfiguration")
    element = req.find(m("UserConfiguration"))
    assert element is not None  # schema-validated
    try:
        key = _key(ctx, element[0])
        if key in ctx.box.configs:
            raise OpError("ErrorItemSave", "A configuration object with that name exists.")
    except OpError as exc:
        soap.error(messages, "CreateUserConfiguration", exc.code, str(exc))
        return root
    item_id = encode_id("AAMkCfg", ctx.box.number, ctx.box.next_seq())
    config = UserConfig(key[1], item_id, None, None, None, ctx.box.seq)
    _fill(config, element)
    ctx.box.configs[key] = config
    soap.success(messages, "CreateUserConfiguration")
    return root


def update_user_configuration(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("UpdateUserConfiguration")
    element = req.find(m("UserConfiguration"))
    assert element is not None
    try:
        config = ctx.box.configs.get(_key(ctx, element[0]))
        if config is None:
            raise OpError("ErrorItemNotFound", "The specified object was not found in the store.")
    except OpError as exc:
        soap.error(messages, "UpdateUserConfiguration", exc.code, str(exc))
        return root
    _fill(config, element)
    config.last_seq = ctx.box.next_seq()
    soap.success(messages, "UpdateUserConfiguration")
    return root


def get_user_configuration(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("GetUserConfiguration")
    name_el = req.find(m("UserConfigurationName"))
    assert name_el is not None
    wanted = set((req.findtext(m("UserConfigurationProperties")) or "All").split())
    try:
        key = _key(ctx, name_el)
        config = ctx.box.configs.get(key)
        if config is None:
            raise OpError("ErrorItemNotFound", "The specified object was not found in the store.")
    except OpError as exc:
        soap.error(messages, "GetUserConfiguration", exc.code, str(exc))
        return root
    out = sub(soap.success(messages, "GetUserConfiguration"), m("UserConfiguration"))
    name = sub(out, t("UserConfigurationName"), Name=config.name)
    sub(name, t("FolderId"), Id=key[0])
    everything = "All" in wanted
    if everything or "Id" in wanted:
        sub(out, t("ItemId"), Id=config.item_id, ChangeKey=encode_id("CQAAAB", config.last_seq))
    if (everything or "Dictionary" in wanted) and config.dictionary is not None:
        out.append(copy.deepcopy(config.dictionary))
    if (everything or "XmlData" in wanted) and config.xml_data is not None:
        sub(out, t("XmlData"), config.xml_data)
    if (everything or "BinaryData" in wanted) and config.binary_data is not None:
        sub(out, t("BinaryData"), config.binary_data)
    return root
