"""Open extensions on contacts and events, and the `$filter` a list of items accepts.

Exchange keeps an Outlook item's open extension in a MAPI named property of the item (which
is why Graph counts them against the named-property quota): the simulator stores each one as
a string extended property of its own property set, the free properties as JSON. That set is
Graph's business only, so `$expand=singleValueExtendedProperties` does not list it.

Filters: Graph finds items by an extended property only when the filter names the property's
id as well as its value (`singleValueExtendedProperties/any(ep: ep/id eq '..' and ep/value eq
'..')`; the id's name is compared as written, the value without regard to case), and To Do
tasks by a linked resource (`linkedResources/any(r: r/applicationName eq '..' and
r/externalId eq '..')`). Any other filter is one the simulator cannot apply: 400, as Graph
answers a filter it does not support.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from ews_client.models import EntityKind

from ..paths import ext_key
from ..store import Mailbox, StoredItem
from ..writes import Quota, WriteError
from .errors import GraphError, bad_request, not_found
from .ids import ews_id
from .wire import CRM_KEY, LINK_APPLICATION, BadValue, prop_attrs

Json = dict[str, Any]
Match = Callable[[StoredItem], bool]
# What a route answers: status and body (`routes.py` makes the response of it).
Answer = tuple[int, Json | None]
# The simulator's own property set for open extensions (any fixed GUID no client uses).
EXTENSION_SET = "5c1f3e2a-9b7d-4e61-a0c8-3d2b6f4e8a17"
# Outlook resources name an open extension's id after the OutlookServices type.
_ID_PREFIX = "Microsoft.OutlookServices.OpenTypeExtension."
_TYPE = "#microsoft.graph.openTypeExtension"
ITEM_EXTENSIONS = r"(?P<coll>contacts|events)/(?P<id>[^/]+)/extensions"
_FOLDERS = {"contacts": "contacts", "events": "calendar"}


# -- $filter on a list ----------------------------------------------------------------------------
_LITERAL = r"'((?:[^']|'')*)'"
_CLAUSE = rf"(\w+)/(\w+)\s+eq\s+{_LITERAL}"
_ANY = re.compile(rf"^\s*(\w+)/any\(\s*(\w+)\s*:\s*{_CLAUSE}\s+and\s+{_CLAUSE}\s*\)\s*$", re.I)
_FIELDS = {
    "singlevalueextendedproperties": frozenset({"id", "value"}),
    "linkedresources": frozenset({"applicationname", "externalid"}),
}


def list_filter(flt: str, kind: EntityKind) -> Match:
    """The test an item of a `kind` list must pass for `$filter=flt` (400 when unsupported)."""
    clauses = _clauses(flt)
    if kind is EntityKind.TASK and clauses.keys() == _FIELDS["linkedresources"]:
        return _link_match(clauses["applicationname"], clauses["externalid"])
    if kind is not EntityKind.TASK and clauses.keys() == _FIELDS["singlevalueextendedproperties"]:
        return _property_match(clauses["id"], clauses["value"])
    raise _unsupported(flt)


def _clauses(flt: str) -> dict[str, str]:
    """`coll/any(v: v/a eq 'x' and v/b eq 'y')` as {a: x, b: y} (names lower-cased)."""
    found = _ANY.match(flt)
    if found is None:
        raise _unsupported(flt)
    coll, var, v1, f1, x1, v2, f2, x2 = found.groups()
    fields = _FIELDS.get(coll.lower())
    out = {f1.lower(): _unquote(x1), f2.lower(): _unquote(x2)}
    if fields is None or {v1, v2} != {var} or out.keys() != fields:
        raise _unsupported(flt)
    return out


def _unquote(literal: str) -> str:
    return literal.replace("''", "'")


def _unsupported(flt: str) -> GraphError:
    return bad_request(f"unsupported $filter: {flt}", "ErrorInvalidUrlQueryFilter")


def _property_match(prop: str, value: str) -> Match:
    try:
        key = ext_key(prop_attrs(prop))
    except BadValue as exc:
        raise bad_request(str(exc), "ErrorInvalidProperty") from exc
    wanted = value.casefold()

    def match(item: StoredItem) -> bool:
        found = item.ext.get(key)
        return found is not None and isinstance(found[1], str) and found[1].casefold() == wanted

    return match


def _link_match(application: str, external: str) -> Match:
    # Only this application's links are stored (as the CRM extended property).
    def match(item: StoredItem) -> bool:
        found = item.ext.get(CRM_KEY)
        return application == LINK_APPLICATION and found is not None and found[1] == external

    return match


# -- open extensions on an item -------------------------------------------------------------------
def is_extension(attrs: Mapping[str, str]) -> bool:
    """The extended property holds an open extension (not listed as an extended property)."""
    return attrs.get("PropertySetId", "").strip("{}").lower() == EXTENSION_SET


def _attrs(name: str) -> dict[str, str]:
    return {"PropertySetId": EXTENSION_SET, "PropertyName": name, "PropertyType": "String"}


def _name(raw: str) -> str:
    """The extension name from a URL segment or filter: its name or Outlook's full id."""
    name = unquote(raw)
    return name[len(_ID_PREFIX) :] if name.startswith(_ID_PREFIX) else name


def _extension_json(name: str, values: Json) -> Json:
    return {**values, "@odata.type": _TYPE, "id": _ID_PREFIX + name, "extensionName": name}


def _stored(item: StoredItem, name: str) -> Json | None:
    found = item.ext.get(ext_key(_attrs(name)))
    if found is None or not isinstance(found[1], str):
        return None
    values: Json = json.loads(found[1])
    return values


def _free(body: Json) -> Json:
    """The body's own data: annotations, id and extensionName are Graph's."""
    return {k: v for k, v in body.items() if "@" not in k and k not in ("id", "extensionName")}


def _write(quota: Quota, box: Mailbox, item: StoredItem, name: str, values: Json) -> None:
    attrs = _attrs(name)
    try:
        quota.define(box, attrs)  # each extension is one more named property
    except WriteError as exc:
        raise GraphError(507, exc.code, str(exc)) from exc
    item.ext[ext_key(attrs)] = (attrs, json.dumps(values))
    box.touch(item)


def _target(box: Mailbox, coll: str, raw_id: str) -> StoredItem:
    folder = box.folder(_FOLDERS[coll.lower()])
    value = ews_id(unquote(raw_id))
    if value not in folder.items:
        raise not_found()
    return box.items[value]


def create(quota: Quota, box: Mailbox, body: Any, coll: str, raw_id: str) -> Answer:
    item = _target(box, coll, raw_id)
    body = body if isinstance(body, dict) else {}
    name = str(body.get("extensionName") or "")
    if not name:
        raise bad_request("extensionName is required")
    if str(body.get("@odata.type", "")).lstrip("#") != _TYPE.lstrip("#"):
        raise bad_request("@odata.type must be microsoft.graph.openTypeExtension")
    if _stored(item, name) is not None:
        raise GraphError(409, "NameAlreadyExists", "The extension exists.")
    _write(quota, box, item, name, _free(body))
    return 201, _extension_json(name, _free(body))


def get(quota: Quota, box: Mailbox, body: Any, coll: str, raw_id: str, raw_name: str) -> Answer:
    name = _name(raw_name)
    values = _stored(_target(box, coll, raw_id), name)
    if values is None:
        raise not_found("extension")
    return 200, _extension_json(name, values)


def patch(quota: Quota, box: Mailbox, body: Any, coll: str, raw_id: str, raw_name: str) -> Answer:
    """Graph merges: a property the body names is replaced or added, the others stay."""
    item, name = _target(box, coll, raw_id), _name(raw_name)
    values = _stored(item, name)
    if values is None:
        raise not_found("extension")
    merged = {**values, **_free(body if isinstance(body, dict) else {})}
    _write(quota, box, item, name, merged)
    return 200, _extension_json(name, merged)


def delete(quota: Quota, box: Mailbox, body: Any, coll: str, raw_id: str, raw_name: str) -> Answer:
    item, name = _target(box, coll, raw_id), _name(raw_name)
    if item.ext.pop(ext_key(_attrs(name)), None) is None:
        raise not_found("extension")
    box.touch(item)
    return 204, None


_EXPAND = re.compile(r"extensions(?:\(\s*\$filter=\s*id\s+eq\s+" + _LITERAL + r"\s*\))?", re.I)


def expanded(item: StoredItem, query: Mapping[str, str]) -> list[Json] | None:
    """`$expand=extensions` (every one) or `extensions($filter=id eq '<name>')`; None when
    the query does not expand extensions."""
    found = next((m for m in _EXPAND.finditer(query.get("$expand", "")) if _starts(m)), None)
    if found is None:
        return None
    wanted = _name(_unquote(found.group(1))) if found.group(1) is not None else None
    out = []
    for attrs, value in item.ext.values():
        name = attrs.get("PropertyName", "")
        if is_extension(attrs) and isinstance(value, str) and wanted in (None, name):
            out.append(_extension_json(name, json.loads(value)))
    return out


def _starts(found: re.Match[str]) -> bool:
    # `extensions` as a navigation property of its own, not the tail of another name.
    text = found.string
    return found.start() == 0 or text[found.start() - 1] in ", "
