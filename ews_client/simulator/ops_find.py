"""GetFolder, FindFolder, FindItem (restrictions, paging, CalendarView expansion)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from lxml import etree

from . import calendar as cal
from . import soap
from .context import Ctx, OpError, resolve_folder
from .folder_render import parse_folder_shape, render_folder
from .paging import Page, page_of, parse_window, set_paging
from .paths import Path, PathError, Shape, parse_path, parse_shape
from .render import render_item, render_occurrence
from .store import Folder, StoredItem
from .xmlutil import kids, local, m, sub, t

Predicate = Callable[[StoredItem], bool]


def get_folder(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("GetFolder")
    refs = kids(req, m("FolderIds"))
    try:
        shape = parse_folder_shape(req.find(m("FolderShape")))
    except OpError as exc:
        for _ in refs:
            sub(soap.error(messages, "GetFolder", exc.code, str(exc)), m("Folders"))
        return root
    for ref in refs:
        try:
            folder = resolve_folder(ctx, ref)
        except OpError as exc:
            sub(soap.error(messages, "GetFolder", exc.code, str(exc)), m("Folders"))
            continue
        folders = sub(soap.success(messages, "GetFolder"), m("Folders"))
        folders.append(render_folder(ctx.box, folder, shape))
    return root


def find_folder(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("FindFolder")
    try:
        shape = parse_folder_shape(req.find(m("FolderShape")))
        window = parse_window(req.find(m("IndexedPageFolderView")))
        wanted = _display_name_filter(req.find(m("Restriction")))
    except OpError as exc:
        soap.error(messages, "FindFolder", exc.code, str(exc))
        return root
    for ref in kids(req, m("ParentFolderIds")):
        try:
            parent = resolve_folder(ctx, ref)
        except OpError as exc:
            soap.error(messages, "FindFolder", exc.code, str(exc))
            continue
        below = _descendants if req.get("Traversal") == "Deep" else _children
        found = [f for f in below(ctx, parent) if wanted is None or f.display_name == wanted]
        chosen, page = page_of(found, window)
        holder = sub(soap.success(messages, "FindFolder"), m("RootFolder"))
        set_paging(holder, page)
        folders = sub(holder, t("Folders"))
        for folder in chosen:
            folders.append(render_folder(ctx.box, folder, shape))
    return root


def _children(ctx: Ctx, parent: Folder) -> list[Folder]:
    # "All subfolders of a given folder are returned in order by name" (BaseShape).
    found = [f for f in ctx.box.folders.values() if f.parent_id == parent.id]
    return sorted(found, key=lambda f: f.display_name.lower())


def _descendants(ctx: Ctx, parent: Folder) -> list[Folder]:
    """Traversal="Deep": every folder below `parent`, each after its parent."""
    out: list[Folder] = []
    for child in _children(ctx, parent):
        out += [child, *_descendants(ctx, child)]
    return out


def _display_name_filter(restriction: etree._Element | None) -> str | None:
    if restriction is None:
        return None
    node = restriction[0]
    path = node.find(t("FieldURI"))
    constant = node.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if local(node.tag) != "IsEqualTo" or path is None or constant is None:
        raise OpError("ErrorInvalidRestriction", "only IsEqualTo on folder:DisplayName")
    if path.get("FieldURI") != "folder:DisplayName":
        raise OpError("ErrorInvalidRestriction", "only IsEqualTo on folder:DisplayName")
    return constant.get("Value", "")


def find_item(ctx: Ctx, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("FindItem")
    try:
        shape = parse_shape(req.find(m("ItemShape")))
        restriction = req.find(m("Restriction"))
        predicate = _predicate(restriction[0]) if restriction is not None else None
        refs = list(kids(req, m("ParentFolderIds")))
        folders = [resolve_folder(ctx, r) for r in refs]
    except (OpError, PathError) as exc:
        soap.error(messages, "FindItem", exc.code, str(exc))
        return root
    for folder in folders:
        items = [ctx.box.items[i] for i in folder.items]
        matching = [i for i in items if predicate is None or predicate(i)]
        try:
            rendered, page = _view(ctx, req, matching, shape)
        except (OpError, PathError, cal.CalendarError) as exc:
            soap.error(messages, "FindItem", exc.code, str(exc))
            continue
        ctx.items += len(rendered)
        holder = sub(soap.success(messages, "FindItem"), m("RootFolder"))
        set_paging(holder, page)
        sub(holder, t("Items")).extend(rendered)
    return root


def _view(
    ctx: Ctx, req: etree._Element, items: list[StoredItem], shape: Shape
) -> tuple[list[etree._Element], Page]:
    calendar_view = req.find(m("CalendarView"))
    if calendar_view is not None:
        return _calendar_view(ctx, calendar_view, items, shape)
    chosen, page = page_of(items, parse_window(req.find(m("IndexedPageItemView"))))
    return [render_item(ctx.box, i, shape, listing=True) for i in chosen], page


def _calendar_view(
    ctx: Ctx, view: etree._Element, items: list[StoredItem], shape: Shape
) -> tuple[list[etree._Element], Page]:
    """Singles and occurrences overlapping [StartDate, EndDate): masters are expanded."""
    lo = cal.parse_datetime(view.get("StartDate", ""))
    hi = cal.parse_datetime(view.get("EndDate", ""))
    if any(i.kind != "CalendarItem" for i in items):
        raise OpError("ErrorCalendarFolderIsInvalidForCalendarView", "not a calendar folder")
    found: list[tuple[datetime, etree._Element]] = []
    for item in items:
        if cal.series(item) is None:
            start = cal.parse_datetime(
                item.props.findtext(t("Start")) or view.get("StartDate") or ""
            )
            end = cal.parse_datetime(item.props.findtext(t("End")) or view.get("StartDate") or "")
            if start < hi and end > lo:
                found.append((start, render_item(ctx.box, item, shape, listing=True)))
            continue
        for index in range(1, len(cal.occurrence_starts(item)) + 1):
            if index in item.deleted_occurrences:
                continue
            _, start, end = cal.occurrence_window(item, index)
            if start < hi and end > lo:
                found.append((start, render_occurrence(ctx.box, item, index, shape, listing=True)))
    found.sort(key=lambda pair: pair[0])
    limit = int(view.get("MaxEntriesReturned", str(len(found) or 1)))
    # A CalendarView is not paged: no IndexedPagingOffset (EWS reference, CalendarView).
    return [e for _, e in found[:limit]], Page(len(found), len(found) <= limit, None)


def _predicate(node: etree._Element) -> Predicate:
    name = local(node.tag)
    if name in ("And", "Or"):
        parts = [_predicate(c) for c in node]
        combine = all if name == "And" else any
        return lambda item: combine(p(item) for p in parts)
    if name == "Not":
        inner = _predicate(node[0])
        return lambda item: not inner(item)
    path = parse_path(node[0])
    if name == "Exists":
        return lambda item: _value(item, path) is not None
    if name in ("IsEqualTo", "IsNotEqualTo"):
        constant = node.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
        if constant is None:
            raise OpError("ErrorInvalidRestriction", "only comparisons with a constant")
        wanted, equal = constant.get("Value", ""), name == "IsEqualTo"
        return lambda item: (_value(item, path) == wanted) is equal
    raise OpError("ErrorInvalidRestriction", f"{name} is not supported by the simulator")


def _value(item: StoredItem, path: Path) -> str | None:
    if path.kind == "ext":
        stored = item.ext.get(path.name)
        return None if stored is None or isinstance(stored[1], tuple) else stored[1]
    if path.kind == "field":
        return item.props.findtext(t(path.name))
    raise PathError("ErrorInvalidRestriction", "indexed paths are not supported in restrictions")
