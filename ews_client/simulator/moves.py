"""A mailbox moving between the simulator's two personas, and the ids that survive the move.

The simulator serves one store through EWS (an Exchange Server) and Graph (Exchange Online).
Moving a mailbox to its Graph persona marks it as moved on EWS (`ErrorNonExistentMailbox`,
mailbox_access.py) and gives every item a new id, as a real move does: ids and change keys
handed out before the move no longer name anything, and sync states from before it are
invalid (the epoch changes). Moving it back lifts the mark and re-keys the items again.

What survives a move is the item's MAPI entry id (PR_ENTRYID), derived here from the item's
mailbox and creation counter, which every id of the item, old or new, carries. Both id
translations (EWS ConvertId, Graph translateExchangeIds) resolve an id of any generation to
the item through it. Folder ids are kept: the simulator moves items' ids only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from enum import StrEnum

from .mailbox_access import MailboxAccess, MoveState
from .store import Mailbox, decode_id, encode_id

ITEM_PREFIX = "AAMk"
# PR_ENTRYID of a message: four flag bytes, the store's 16-byte provider id, then the
# simulator's own part (a type marker and the creation counter).
_FLAGS = b"\x00\x00\x00\x00"
_MARKER = b"\x07\x00"
_ENTRY_LEN = len(_FLAGS) + 16 + len(_MARKER) + 8


class Persona(StrEnum):
    EWS = "ews"
    GRAPH = "graph"


def persona(access: MailboxAccess, address: str) -> Persona:
    """Where the mailbox lives now: on Graph once it was moved there, else on EWS."""
    return Persona.GRAPH if access.move_state(address) is MoveState.MOVED else Persona.EWS


def move(box: Mailbox, access: MailboxAccess, to: Persona) -> int:
    """Move the mailbox to `to` (re-keying every item); the number of items re-keyed.

    Moving to where the mailbox already is changes nothing (0): a real move request for a
    mailbox already on the target is refused, it does not re-key."""
    if persona(access, box.address) is to:
        return 0
    box.epoch += 1  # sync states and delta tokens from before the move become invalid
    box.seq += 1
    renamed = {old: _new_id(box, old) for old in box.items}
    box.items = {renamed[old]: item for old, item in box.items.items()}
    for new in renamed.values():
        box.items[new].id = new
    for folder in box.folders.values():
        folder.items = {renamed.get(i, i): None for i in folder.items}
        # From scratch, a synchronization lists what the folder holds now, under the new ids.
        folder.log[:] = sorted((box.items[i].last_seq, i) for i in folder.items)
        folder.gone.clear()
    access.set_move(box.address, MoveState.MOVED if to is Persona.GRAPH else MoveState.NONE)
    return len(renamed)


def _new_id(box: Mailbox, old: str) -> str:
    counter = counter_of(box, old)
    if counter is None:  # not an id this simulator minted: keep it rather than lose the item
        return old
    return encode_id(ITEM_PREFIX, box.number, counter, box.epoch)


def counter_of(box: Mailbox, item_id: str) -> int | None:
    """The creation counter an item id of this mailbox carries (any generation), or None."""
    parts = decode_id(ITEM_PREFIX, item_id)
    if not parts or len(parts) < 2 or parts[0] != str(box.number) or not parts[1].isdigit():
        return None
    return int(parts[1])


def current_ids(box: Mailbox) -> dict[int, str]:
    """Creation counter -> the item's id now (one index per translation call)."""
    out: dict[int, str] = {}
    for item_id in box.items:
        counter = counter_of(box, item_id)
        if counter is not None:
            out[counter] = item_id
    return out


# -- the MAPI entry id -------------------------------------------------------------------------
def _store_id(box: Mailbox) -> bytes:
    return hashlib.md5(f"store:{box.address}".encode(), usedforsecurity=False).digest()


def entry_id(box: Mailbox, counter: int) -> bytes:
    return _FLAGS + _store_id(box) + _MARKER + counter.to_bytes(8, "big")


def entry_counter(box: Mailbox, raw: bytes) -> int | None:
    """The counter an entry id of this mailbox names, or None (another store, or malformed)."""
    if len(raw) != _ENTRY_LEN or not raw.startswith(_FLAGS + _store_id(box) + _MARKER):
        return None
    return int.from_bytes(raw[-8:], "big")


def b64_entry(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hex_entry(raw: bytes) -> str:
    return raw.hex().upper()


def from_b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return None


def from_hex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
