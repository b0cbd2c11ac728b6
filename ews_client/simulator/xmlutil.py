"""XML plumbing of the simulator: namespaces, a hardened parser, the EWS schema.

The schema is loaded once (lazily) from the shared XSD directory; it validates incoming request
children (Exchange answers `ErrorSchemaValidation` for anything invalid) and, in tests, every
response child we send. Element order of item types is read from the same XSD, so that stored
properties are always emitted in schema order.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxml import etree

from .errors import SimulatorError

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
XS = "{http://www.w3.org/2001/XMLSchema}"

_SCHEMA_ENV = "EWS_SCHEMA_DIR"
_DEFAULT_SCHEMA_DIRS = (
    Path(__file__).resolve().parents[3] / "shared" / "ews-schema",
    Path("/work/shared/ews-schema"),
)

# No DTDs, no entities, no network: a hostile body cannot expand or fetch anything.
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)


class XmlError(SimulatorError):
    """The body is not well-formed XML, or carries a DTD."""


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, tag, attrs or None)
    if text is not None:
        child.text = text
    return child


def parse(body: bytes) -> etree._Element:
    """Parse a request body; refuse DTDs (hence entities) outright."""
    try:
        root = etree.fromstring(body, PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlError(str(exc)) from exc
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise XmlError("DTDs are not allowed")
    return root


def schema_dir() -> Path:
    override = os.environ.get(_SCHEMA_ENV)
    if override:
        return Path(override)
    for candidate in _DEFAULT_SCHEMA_DIRS:
        if (candidate / "messages.xsd").exists():
            return candidate
    raise FileNotFoundError("EWS schema not found; set EWS_SCHEMA_DIR")


@functools.cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / "messages.xsd")))


def validation_error(element: etree._Element) -> str | None:
    """None when `element` is valid against the EWS schema, else the first error."""
    s = schema()
    if s.validate(element):
        return None
    return str(s.error_log.last_error)  # type: ignore[attr-defined]


@functools.cache
def _types_doc() -> dict[str, etree._Element]:
    root = etree.parse(str(schema_dir() / "types.xsd")).getroot()
    return {e.get("name", ""): e for e in root.iter(f"{XS}complexType") if e.get("name")}


@functools.cache
def child_order(type_name: str) -> tuple[str, ...]:
    """Local names of a complex type's child elements in schema order (bases first)."""
    ct = _types_doc()[type_name]
    names: list[str] = []
    ext = ct.find(f"{XS}complexContent/{XS}extension")
    body = ct
    if ext is not None:
        names.extend(child_order(ext.get("base", "").split(":")[-1]))
        body = ext
    for el in body.iter(f"{XS}element"):
        names.append(str(el.get("name") or el.get("ref") or "").split(":")[-1])
    return tuple(names)


@functools.cache
def order_index(type_name: str) -> dict[str, int]:
    return {name: i for i, name in enumerate(child_order(type_name))}


def insert_ordered(parent: etree._Element, child: etree._Element, type_name: str) -> None:
    """Insert `child` into `parent` at its schema position (replacing a same-named child)."""
    index = order_index(type_name)
    rank = index[local(child.tag)]
    for position, existing in enumerate(parent):
        other = index.get(local(existing.tag), -1)
        if other == rank and local(child.tag) != "ExtendedProperty":
            parent.replace(existing, child)
            return
        if other > rank:
            parent.insert(position, child)
            return
    parent.append(child)


def kids(parent: etree._Element, path: str) -> list[etree._Element]:
    """Children of the element at `path` under `parent` (none when it is absent)."""
    node = parent.find(path)
    return list(node) if node is not None else []
