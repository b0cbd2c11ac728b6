"""Opaque, signed per-folder sync states.

A state names the mailbox, the folder, the change sequence reached and the mailbox epoch
(bumped by a restore). A state that fails its signature, names another mailbox or folder,
or comes from an older epoch answers `ErrorInvalidSyncStateData`, as Exchange does for a
corrupt or expired state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from .errors import SimulatorError


@dataclass(frozen=True, slots=True)
class SyncState:
    mailbox: str
    folder_id: str
    seq: int
    epoch: int


class InvalidState(SimulatorError):
    pass


def encode(state: SyncState, secret: bytes) -> str:
    payload = f"{state.mailbox}\n{state.folder_id}\n{state.seq}\n{state.epoch}".encode()
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
        mailbox, folder_id, seq, epoch = payload.decode().split("\n")
        return SyncState(mailbox, folder_id, int(seq), int(epoch))
    except ValueError as exc:
        raise InvalidState("bad payload") from exc
