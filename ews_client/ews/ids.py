"""Folder ids, item ids, property paths and response shapes (the pieces every request shares)."""

from __future__ import annotations

from collections.abc import Iterable
from copy import copy
from dataclasses import dataclass
from functools import cache

from ews_client.errors import ProtocolError
from ews_client.ews.xml import Element, fragment, sub, t
from ews_client.models import CRM_ID_PROPERTY, CRM_PROPERTY_SET_ID, ItemRef


@dataclass(frozen=True, slots=True)
class DistinguishedFolder:
    """A well-known folder (`contacts`, `calendar`, `tasks`, `root`, ...) of a mailbox."""

    name: str
    mailbox: str | None = None


@dataclass(frozen=True, slots=True)
class FolderId:
    id: str
    change_key: str = ""


FolderRef = DistinguishedFolder | FolderId


@dataclass(frozen=True, slots=True)
class OccurrenceRef:
    """One occurrence of a recurring series: master id + 1-based instance index (+ the
    change key of the version seen, which AutoResolve updates require)."""

    master_id: str
    index: int
    change_key: str = ""


@dataclass(frozen=True, slots=True)
class FieldURI:
    uri: str


@dataclass(frozen=True, slots=True)
class IndexedFieldURI:
    uri: str
    index: str


@dataclass(frozen=True, slots=True)
class ExtendedFieldURI:
    """A MAPI named property in one fixed property set (quota: never derive names from data)."""

    name: str = CRM_ID_PROPERTY
    property_set: str = CRM_PROPERTY_SET_ID
    property_type: str = "String"


@dataclass(frozen=True, slots=True)
class TaggedFieldURI:
    """A MAPI property named by its tag (a fixed, documented property; read only here)."""

    tag: str
    property_type: str


PropertyPath = FieldURI | IndexedFieldURI | ExtendedFieldURI | TaggedFieldURI
CRM_ID_PATH = ExtendedFieldURI()


def add_folder_id(parent: Element, folder: FolderRef) -> Element:
    if isinstance(folder, DistinguishedFolder):
        el = sub(parent, t("DistinguishedFolderId"), Id=folder.name)
        if folder.mailbox:
            mbx = sub(el, t("Mailbox"))
            sub(mbx, t("EmailAddress"), folder.mailbox)
        return el
    attrs = {"Id": folder.id}
    if folder.change_key:
        attrs["ChangeKey"] = folder.change_key
    return sub(parent, t("FolderId"), **attrs)


def add_item_id(parent: Element, ref: ItemRef | OccurrenceRef) -> Element:
    if isinstance(ref, OccurrenceRef):
        attrs = {"RecurringMasterId": ref.master_id, "InstanceIndex": str(ref.index)}
        if ref.change_key:
            attrs["ChangeKey"] = ref.change_key
        return sub(parent, t("OccurrenceItemId"), **attrs)
    attrs = {"Id": ref.id}
    if ref.change_key:
        attrs["ChangeKey"] = ref.change_key
    return sub(parent, t("ItemId"), **attrs)


def add_path(parent: Element, path: PropertyPath) -> Element:
    # A copy of the path's element, built once: copying is cheaper than setting attributes,
    # and requests name the same few paths over and over (the CRM id twice per stamp).
    child = copy(_path_element(path))
    parent.append(child)
    return child


@cache  # the paths are the fixed set the code names (never derived from data)
def _path_element(path: PropertyPath) -> Element:
    if isinstance(path, FieldURI):
        return fragment(t("FieldURI"), FieldURI=path.uri)
    if isinstance(path, IndexedFieldURI):
        return fragment(t("IndexedFieldURI"), FieldURI=path.uri, FieldIndex=path.index)
    if isinstance(path, TaggedFieldURI):
        return fragment(
            t("ExtendedFieldURI"), PropertyTag=path.tag, PropertyType=path.property_type
        )
    return fragment(
        t("ExtendedFieldURI"),
        PropertySetId=path.property_set,
        PropertyName=path.name,
        PropertyType=path.property_type,
    )


def add_item_shape(
    parent: Element, tag: str, props: Iterable[PropertyPath], *, text_body: bool = False
) -> Element:
    """`IdOnly` + explicit AdditionalProperties: the server returns exactly what we name."""
    shape = sub(parent, tag)
    sub(shape, t("BaseShape"), "IdOnly")
    if text_body:
        sub(shape, t("BodyType"), "Text")
    paths = list(props)
    if paths:
        extra = sub(shape, t("AdditionalProperties"))
        for path in paths:
            add_path(extra, path)
    return shape


def read_item_ref(el: Element | None) -> ItemRef:
    if el is None or not el.get("Id"):
        raise ProtocolError("item without an ItemId")
    return ItemRef(id=el.get("Id", ""), change_key=el.get("ChangeKey", ""))
