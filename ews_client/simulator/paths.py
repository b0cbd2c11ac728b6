"""Property paths (FieldURI / IndexedFieldURI / ExtendedFieldURI) and item shapes."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .errors import SimulatorError
from .xmlutil import local, t

# IndexedFieldURI base name -> dictionary element on the contact.
INDEXED_CONTAINERS = {
    "EmailAddress": "EmailAddresses",
    "PhoneNumber": "PhoneNumbers",
    "ImAddress": "ImAddresses",
    "PhysicalAddress": "PhysicalAddresses",
}
_EXT_ATTRS = (
    "DistinguishedPropertySetId",
    "PropertySetId",
    "PropertyTag",
    "PropertyName",
    "PropertyId",
    "PropertyType",
)


class PathError(SimulatorError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Path:
    """One property path. kind: field | indexed | ext."""

    kind: str
    name: str  # element name, dictionary element name, or extended-property key
    index: str = ""  # FieldIndex of an indexed path
    sub: str = ""  # sub-field of a physical address
    attrs: tuple[tuple[str, str], ...] = ()  # ExtendedFieldURI attributes, schema order


@dataclass(frozen=True, slots=True)
class Shape:
    base: str  # IdOnly | Default | AllProperties
    extra: tuple[Path, ...] = ()
    body_type: str = "Best"  # Best | HTML | Text (bodies.py)


def ext_key(attrs: dict[str, str]) -> str:
    """Identity of an extended property: property set + name/id, or the tag."""
    set_id = attrs.get("PropertySetId", "").strip("{}").lower()
    set_id = set_id or attrs.get("DistinguishedPropertySetId", "")
    tag = attrs.get("PropertyTag", "")
    if tag:
        tag = str(int(tag, 16) if tag.lower().startswith("0x") else int(tag))
    return "|".join((set_id, attrs.get("PropertyName", ""), attrs.get("PropertyId", ""), tag))


def parse_path(element: etree._Element) -> Path:
    name = local(element.tag)
    uri = element.get("FieldURI", "")
    if name == "FieldURI":
        return Path("field", uri.split(":", 1)[-1])
    if name == "IndexedFieldURI":
        parts = uri.split(":")
        container = INDEXED_CONTAINERS.get(parts[1] if len(parts) > 1 else "")
        if container is None:
            raise PathError("ErrorInvalidPropertyRequest", f"unsupported indexed field {uri}")
        sub = parts[2] if len(parts) > 2 else ""
        return Path("indexed", container, element.get("FieldIndex", ""), sub)
    if name == "ExtendedFieldURI":
        attrs = {k: element.get(k, "") for k in _EXT_ATTRS if element.get(k) is not None}
        _check_ext(attrs)
        return Path("ext", ext_key(attrs), attrs=tuple(attrs.items()))
    raise PathError("ErrorInvalidPropertyRequest", f"unsupported path {name}")


def _check_ext(attrs: dict[str, str]) -> None:
    # Exchange: a tag stands alone; a named property needs a set plus a name or an id.
    has_set = "PropertySetId" in attrs or "DistinguishedPropertySetId" in attrs
    has_name = "PropertyName" in attrs or "PropertyId" in attrs
    if "PropertyTag" in attrs:
        if has_set or has_name:
            raise PathError("ErrorInvalidExtendedProperty", "PropertyTag with a property set")
    elif not (has_set and has_name):
        raise PathError("ErrorInvalidExtendedProperty", "a named property needs set and name")


def parse_shape(element: etree._Element | None) -> Shape:
    if element is None:
        return Shape("Default")
    base = element.findtext(t("BaseShape")) or "Default"
    extra = element.find(t("AdditionalProperties"))
    paths = tuple(parse_path(p) for p in extra) if extra is not None else ()
    return Shape(base, paths, element.findtext(t("BodyType")) or "Best")


def ext_uri_element(attrs: tuple[tuple[str, str], ...] | dict[str, str]) -> etree._Element:
    pairs = attrs.items() if isinstance(attrs, dict) else attrs
    return etree.Element(t("ExtendedFieldURI"), dict(pairs))
