"""What an operation handler gets: the target mailbox, the quota, and a cost tally."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from . import calendar as cal
from .errors import SimulatorError
from .store import Folder, Mailbox, StoredItem
from .writes import Quota
from .xmlutil import local, t


class OpError(SimulatorError):
    """A per-message error: the ResponseCode and the text to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Ctx:
    box: Mailbox
    quota: Quota
    items: int = 0  # items read or written: the per-item latency and budget cost


def resolve_folder(ctx: Ctx, element: etree._Element) -> Folder:
    """A t:FolderId or t:DistinguishedFolderId (its t:Mailbox must be the target mailbox)."""
    name = local(element.tag)
    if name == "DistinguishedFolderId":
        address = element.findtext(f"{t('Mailbox')}/{t('EmailAddress')}")
        if address is not None and address.strip().lower() != ctx.box.address:
            raise OpError("ErrorFolderNotFound", "the folder's mailbox is not the target mailbox")
        fid = ctx.box.by_name.get(element.get("Id", ""))
    else:
        fid = element.get("Id")
    folder = ctx.box.folders.get(fid or "")
    if folder is None:
        raise OpError("ErrorFolderNotFound", "The specified folder could not be found.")
    return folder


def resolve_item(ctx: Ctx, element: etree._Element) -> tuple[StoredItem, int | None]:
    """(item, occurrence index or None) from ItemId / OccurrenceItemId / RecurringMasterItemId."""
    name = local(element.tag)
    if name == "OccurrenceItemId":
        master = _item(ctx, element.get("RecurringMasterId", ""))
        return master, _checked_index(master, int(element.get("InstanceIndex", "0")))
    if name == "RecurringMasterItemId":
        occ = cal.parse_occurrence_id(element.get("OccurrenceId", ""))
        if occ is None:
            raise OpError("ErrorInvalidIdMalformed", "Id is malformed.")
        return _item(ctx, occ[0]), None
    value = element.get("Id", "")
    occ = cal.parse_occurrence_id(value)
    if occ is not None:
        master = _item(ctx, occ[0])
        return master, _checked_index(master, occ[1])
    return _item(ctx, value), None


def _item(ctx: Ctx, item_id: str) -> StoredItem:
    if not item_id.startswith("AAMk"):
        raise OpError("ErrorInvalidIdMalformed", "Id is malformed.")
    item = ctx.box.items.get(item_id)
    if item is None:
        raise OpError("ErrorItemNotFound", "The specified object was not found in the store.")
    return item


def _checked_index(master: StoredItem, index: int) -> int:
    if master.kind != "CalendarItem" or cal.series(master) is None:
        raise OpError("ErrorCalendarCannotUseIdForOccurrenceId", "not a recurring master")
    try:
        cal.occurrence_window(master, index)
    except cal.CalendarError as exc:
        raise OpError(exc.code, str(exc)) from exc
    return index
