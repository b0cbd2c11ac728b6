"""ConvertId: item ids between the EwsId, EntryId and HexEntryId formats, one message per id.

Each t:AlternateId names its own mailbox. An EwsId of any generation (before or after a move,
moves.py) converts to the item's entry id; an entry id converts to the item's EwsId now. The
simulator looks the item up where Exchange would only re-encode, so an id of no item answers
`ErrorItemNotFound` here at once rather than on first use. The legacy formats (EwsLegacyId,
StoreId, OwaId) are not converted: `ErrorInvalidIdMalformed`.
"""

from __future__ import annotations

from lxml import etree

from . import moves, soap
from .context import OpError
from .mailbox_access import MoveState
from .state import SimState
from .store import Mailbox
from .xmlutil import kids, m, sub

OP = "ConvertId"
_FORMATS = ("EwsId", "EntryId", "HexEntryId")
_MALFORMED = "Id is malformed."
# The response names the concrete type of its abstract t:AlternateIdBaseType.
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def convert_id(sim: SimState, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root(OP)
    target = req.get("DestinationFormat", "")
    index: dict[str, dict[int, str]] = {}  # per mailbox, built once per request
    for alt in kids(req, m("SourceIds")):
        try:
            box, value = _convert(sim, alt, target, index)
        except OpError as exc:
            soap.error(messages, OP, exc.code, str(exc))
            continue
        out = sub(soap.success(messages, OP), m("AlternateId"), Format=target, Id=value,
                  Mailbox=box.address)  # fmt: skip
        out.set(_XSI_TYPE, "t:AlternateIdType")
    return root


def _convert(
    sim: SimState, alt: etree._Element, target: str, index: dict[str, dict[int, str]]
) -> tuple[Mailbox, str]:
    box = sim.mailboxes.get(alt.get("Mailbox", "").strip().lower())
    if box is None or sim.access.move_state(box.address) is MoveState.MOVED:
        raise OpError("ErrorNonExistentMailbox", "No mailbox with such guid.")
    source = alt.get("Format", "")
    if source not in _FORMATS or target not in _FORMATS:
        raise OpError("ErrorInvalidIdMalformed", f"{source} to {target} is not converted here.")
    counter = _counter(box, source, alt.get("Id", ""))
    if counter is None:
        raise OpError("ErrorInvalidIdMalformed", _MALFORMED)
    return box, _render(box, counter, target, index)


def _counter(box: Mailbox, source: str, value: str) -> int | None:
    if source == "EwsId":
        return moves.counter_of(box, value)
    raw = moves.from_b64(value) if source == "EntryId" else moves.from_hex(value)
    return None if raw is None else moves.entry_counter(box, raw)


def _render(box: Mailbox, counter: int, target: str, index: dict[str, dict[int, str]]) -> str:
    if target == "EwsId":
        if box.address not in index:
            index[box.address] = moves.current_ids(box)
        current = index[box.address].get(counter)
        if current is None:
            raise OpError("ErrorItemNotFound", "The specified object was not found in the store.")
        return current
    raw = moves.entry_id(box, counter)
    return moves.b64_entry(raw) if target == "EntryId" else moves.hex_entry(raw)
