"""Microsoft's published Graph v1.0 metadata (OData CSDL) as the judge of Graph JSON.

The simulator must not learn the wire format from the client it tests: this module reads
`graph-schema/v1.0-metadata.xml` from the shared folder next to the repository (as `xmlutil`
finds the EWS schema) into an index of types, once per process, and `check()` lists what a
JSON object says that the metadata does not allow: names its type and base types do not
declare, values of the wrong type, null where the property is not nullable.

Entity types such as `contact` and `extension` are declared open (`OpenType="true"`), which in
OData allows dynamic properties; Exchange stores none on an Outlook item, so an undeclared name
there is a mistake and is reported. Only `openTypeExtension`, whose whole purpose is dynamic
properties, is checked for its declared properties alone.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import SimulatorError

_SCHEMA_ENV = "GRAPH_SCHEMA_DIR"
_DEFAULT_DIRS = (
    Path(__file__).resolve().parents[4] / "shared" / "graph-schema",
    Path("/work/shared/graph-schema"),
)
_FILE = "v1.0-metadata.xml"
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
_GRAPH = "microsoft.graph"
# Types whose dynamic properties are their content, not a mistake.
_TRULY_OPEN = frozenset({f"{_GRAPH}.openTypeExtension"})


class MetadataMissing(SimulatorError):
    """The Graph metadata file is not where the simulator looks for it."""


@dataclass(frozen=True, slots=True)
class Prop:
    type: str  # qualified: "Edm.String", "microsoft.graph.emailAddress", "Collection(...)"
    nullable: bool = True


@dataclass(slots=True)
class StructType:
    name: str  # qualified
    base: str | None
    abstract: bool
    open: bool
    props: dict[str, Prop] = field(default_factory=dict)
    navigation: dict[str, Prop] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnumType:
    members: frozenset[str]
    flags: bool


@dataclass(slots=True)
class Metadata:
    types: dict[str, StructType] = field(default_factory=dict)
    enums: dict[str, EnumType] = field(default_factory=dict)

    def lineage(self, name: str) -> Iterator[StructType]:
        """The type and its base types, most derived first."""
        current: str | None = name
        while current is not None:
            found = self.types.get(current)
            if found is None:
                return
            yield found
            current = found.base

    def declared(self, name: str) -> dict[str, Prop]:
        """Every structural and navigation property of the type and its bases."""
        out: dict[str, Prop] = {}
        for one in reversed(list(self.lineage(name))):
            out.update(one.props)
            out.update(one.navigation)
        return out

    def derives(self, name: str, ancestor: str) -> bool:
        return any(t.name == ancestor for t in self.lineage(name))


def metadata_path() -> Path:
    env = os.environ.get(_SCHEMA_ENV)
    for directory in ((Path(env),) if env else ()) + _DEFAULT_DIRS:
        if (directory / _FILE).is_file():
            return directory / _FILE
    raise MetadataMissing(f"{_FILE} not found (set {_SCHEMA_ENV}); looked in {_DEFAULT_DIRS}")


@functools.cache
def metadata() -> Metadata:
    """Parse the 3.5 MB file once per process (iterparse: one type at a time, then freed)."""
    return _parse(metadata_path())


def _qualify(raw: str, aliases: Mapping[str, str]) -> str:
    inner = raw
    if raw.startswith("Collection(") and raw.endswith(")"):
        return f"Collection({_qualify(raw[11:-1], aliases)})"
    prefix, _, local = inner.rpartition(".")
    return f"{aliases.get(prefix, prefix)}.{local}" if prefix else inner


def _parse(path: Path) -> Metadata:
    meta = Metadata()
    aliases: dict[str, str] = {}
    namespace = _GRAPH
    wanted = {f"{_EDM}Schema", f"{_EDM}EntityType", f"{_EDM}ComplexType", f"{_EDM}EnumType"}
    for event, elem in etree.iterparse(str(path), events=("start", "end"), tag=list(wanted)):
        if elem.tag == f"{_EDM}Schema":
            if event == "start":
                namespace = elem.get("Namespace", _GRAPH)
                aliases[elem.get("Alias") or namespace] = namespace
            continue
        if event != "end":
            continue
        name = f"{namespace}.{elem.get('Name')}"
        if elem.tag == f"{_EDM}EnumType":
            members = frozenset(m.get("Name", "") for m in elem.iter(f"{_EDM}Member"))
            meta.enums[name] = EnumType(members, elem.get("IsFlags") == "true")
        else:
            meta.types[name] = _struct(elem, name, aliases)
        elem.clear()
    # Aliases may be declared after a type that uses them: qualify every reference at the end.
    for struct in meta.types.values():
        struct.base = _qualify(struct.base, aliases) if struct.base else None
        for table in (struct.props, struct.navigation):
            for key, prop in table.items():
                table[key] = Prop(_qualify(prop.type, aliases), prop.nullable)
    return meta


def _struct(elem: Any, name: str, aliases: Mapping[str, str]) -> StructType:
    struct = StructType(
        name, elem.get("BaseType"), elem.get("Abstract") == "true", elem.get("OpenType") == "true"
    )
    for child in elem:
        if child.tag == f"{_EDM}Property":
            nullable = child.get("Nullable") != "false"
            struct.props[child.get("Name")] = Prop(child.get("Type"), nullable)
        elif child.tag == f"{_EDM}NavigationProperty":
            struct.navigation[child.get("Name")] = Prop(child.get("Type"), True)
    return struct


# -- checking ------------------------------------------------------------------------------------
def qualified(type_name: str) -> str:
    """`contact`, `graph.contact` and `microsoft.graph.contact` all name the same type."""
    name = type_name.lstrip("#")
    if name.startswith("graph."):
        return f"{_GRAPH}.{name[6:]}"
    return name if "." in name else f"{_GRAPH}.{name}"


def check(type_name: str, obj: object) -> list[str]:
    """What `obj` (JSON, as parsed) says that the metadata's `type_name` does not allow."""
    meta = metadata()
    problems: list[str] = []
    _value(meta, qualified(type_name), obj, short(qualified(type_name)), problems)
    return problems


def short(name: str) -> str:
    return name.removeprefix(f"{_GRAPH}.")


def _value(meta: Metadata, type_: str, value: object, where: str, out: list[str]) -> None:
    if type_.startswith("Collection("):
        if not isinstance(value, list):
            out.append(f"{where}: expected a list ({short(type_)}), got {_kind(value)}")
            return
        inner = type_[11:-1]
        for i, one in enumerate(value):
            if one is None:
                out.append(f"{where}[{i}]: null in a collection")
            else:
                _value(meta, inner, one, f"{where}[{i}]", out)
        return
    if type_.startswith("Edm."):
        problem = _primitive(type_, value)
        if problem:
            out.append(f"{where}: {problem}")
    elif type_ in meta.enums:
        _enum(meta.enums[type_], type_, value, where, out)
    elif type_ in meta.types:
        _object(meta, type_, value, where, out)
    else:
        out.append(f"{where}: the metadata declares no type {type_}")


def _enum(enum: EnumType, type_: str, value: object, where: str, out: list[str]) -> None:
    if not isinstance(value, str):
        out.append(f"{where}: expected a member name of {short(type_)}, got {_kind(value)}")
        return
    names = [v.strip() for v in value.split(",")] if enum.flags else [value]
    for one in names:
        if one not in enum.members:
            out.append(f"{where}: {one!r} is not a member of {short(type_)}")


def _object(meta: Metadata, type_: str, value: object, where: str, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{where}: expected an object ({short(type_)}), got {_kind(value)}")
        return
    actual = type_
    named = value.get("@odata.type")
    if isinstance(named, str):
        actual = qualified(named)
        if actual not in meta.types:
            out.append(f"{where}: @odata.type {named!r} is not in the metadata")
            return
        if not meta.derives(actual, type_):
            out.append(f"{where}: @odata.type {named!r} is not a {short(type_)}")
            return
    declared = meta.declared(actual)
    for key, item in value.items():
        if _annotation(key):
            continue
        prop = declared.get(key)
        if prop is None:
            if actual not in _TRULY_OPEN:
                out.append(f"{where}.{key}: not declared by {short(actual)} or its base types")
            continue
        if item is None:
            if not prop.nullable or prop.type.startswith("Collection("):
                out.append(f"{where}.{key}: null, but {short(prop.type)} is not nullable")
            continue
        _value(meta, prop.type, item, f"{where}.{key}", out)


def _annotation(key: str) -> bool:
    # "@odata.etag", "@odata.type", a delta's "@removed", "name@odata.type" ...
    return key.startswith("@") or "@" in key


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


# -- primitives ----------------------------------------------------------------------------------
_OFFSET = re.compile(r"(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^-?P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_INT_RANGES = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}


def _primitive(type_: str, value: object) -> str | None:
    if type_ in ("Edm.Untyped", "Edm.Stream"):
        return None
    if type_ == "Edm.Boolean":
        return None if isinstance(value, bool) else f"expected a boolean, got {_kind(value)}"
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer ({type_}), got {_kind(value)}"
        return None if low <= value <= high else f"{value} is out of range for {type_}"
    if type_ in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        special = value in ("INF", "-INF", "NaN")  # OData's JSON spelling of the IEEE values
        return None if ok or special else f"expected a number ({type_}), got {_kind(value)}"
    if not isinstance(value, str):
        return f"expected a string ({type_}), got {_kind(value)}"
    checker = _STRING_FORMATS.get(type_)
    if checker is None:
        return None if type_ == "Edm.String" else f"unknown primitive type {type_}"
    return None if checker(value) else f"{value!r} is not a valid {type_}"


def _datetime_offset(text: str) -> bool:
    if "T" not in text or _OFFSET.search(text) is None:
        return False
    return _parses(lambda: datetime.fromisoformat(text.replace("Z", "+00:00")))


def _date(text: str) -> bool:
    return len(text) == 10 and _parses(lambda: date.fromisoformat(text))


def _time_of_day(text: str) -> bool:
    return _OFFSET.search(text) is None and _parses(lambda: time.fromisoformat(text))


def _guid(text: str) -> bool:
    return len(text) == 36 and _parses(lambda: uuid.UUID(text))


def _binary(text: str) -> bool:
    # OData JSON: base64url; Graph itself sends the standard alphabet too.
    standard = text.replace("-", "+").replace("_", "/")
    return _parses(lambda: base64.b64decode(standard, validate=True))


def _parses(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except (ValueError, TypeError):
        return False
    return True


_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "Edm.String": lambda text: True,
    "Edm.DateTimeOffset": _datetime_offset,
    "Edm.Date": _date,
    "Edm.TimeOfDay": _time_of_day,
    "Edm.Guid": _guid,
    "Edm.Binary": _binary,
    "Edm.Duration": lambda text: _DURATION.match(text) is not None,
}
