"""Opaque, signed per-folder sync states.

A state names the mailbox, the folder, the change sequence reached, the mailbox epoch (bumped
by a restore) and the items the client was given and not yet told are deleted, as an ICS
state keeps the set of ids given (ews_client/PROTOCOL_NOTES.md, "Simulator conformance
(exchangelib)"). Item ids are kept as their per-mailbox numbers in ranges, compressed: a
folder's items are mostly numbered in a row, so a state stays small. A state that fails its
signature, names another mailbox or folder, or comes from an older epoch answers
`ErrorInvalidSyncStateData`, as Exchange does for a corrupt or expired state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import SimulatorError


@dataclass(frozen=True, slots=True)
class SyncState:
    mailbox: str
    folder_id: str
    seq: int
    epoch: int
    given: frozenset[int] = field(default_factory=frozenset)  # item numbers the client knows


class InvalidState(SimulatorError):
    pass


def encode(state: SyncState, secret: bytes) -> str:
    head = f"{state.mailbox}\n{state.folder_id}\n{state.seq}\n{state.epoch}\n"
    payload = zlib.compress((head + _ranges(state.given)).encode())
    tag = hmac.new(secret, payload, hashlib.sha256).digest()[:12]
    return base64.b64encode(tag + payload).decode()


def decode(token: str, secret: bytes) -> SyncState:
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidState("not base64") from exc
    tag, payload = raw[:12], raw[12:]
    if not hmac.compare_digest(tag, hmac.new(secret, payload, hashlib.sha256).digest()[:12]):
        raise InvalidState("bad signature")
    try:
        mailbox, folder_id, seq, epoch, given = zlib.decompress(payload).decode().split("\n")
        return SyncState(mailbox, folder_id, int(seq), int(epoch), _numbers(given))
    except (ValueError, zlib.error) as exc:
        raise InvalidState("bad payload") from exc


def _ranges(numbers: Iterable[int]) -> str:
    """1,2,3,7,9,10 -> "1-3,7,9-10"."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].rpartition("-")[2] == str(n - 1):
            first = out[-1].partition("-")[0]
            out[-1] = f"{first}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def _numbers(text: str) -> frozenset[int]:
    found: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return frozenset(found)
