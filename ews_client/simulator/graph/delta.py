"""Delta queries: signed tokens in `@odata.nextLink` (`$skiptoken`) and `@odata.deltaLink`
(`$deltatoken`), the changes since a token from the folder's change log, `@removed` for
deletions. A token dies (410) after a restore (new epoch) or when older than the policy's
maximum age, as Exchange Online's delta tokens do."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from .. import calendar as cal
from ..store import Folder, Mailbox
from .errors import GraphError
from .ids import graph_id
from .view import item_json, occurrence_json, occurrences_in, overlaps

Json = dict[str, Any]
MAX_OCCURRENCES_PER_SERIES = 20
EXPIRED = (
    "The sync state generation is not found. The delta token is expired and data must "
    "be synchronized again."
)


@dataclass(frozen=True, slots=True)
class DeltaToken:
    mailbox: str
    folder: str
    since: int  # changes after this sequence number
    upto: int  # ... and up to this one (fixed while paging)
    epoch: int
    issued: float
    offset: int = 0
    window: tuple[str, str] | None = None  # calendarView: [start, end)


def encode(token: DeltaToken, secret: bytes) -> str:
    payload = json.dumps(asdict(token), separators=(",", ":")).encode()
    tag = hmac.new(secret, payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")


def decode(text: str, secret: bytes) -> DeltaToken:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tag, payload = raw[:12], raw[12:]
        if not hmac.compare_digest(tag, hmac.new(secret, payload, hashlib.sha256).digest()[:12]):
            raise ValueError("bad signature")
        obj = json.loads(payload)
        raw_window = obj.pop("window", None)
        window = (str(raw_window[0]), str(raw_window[1])) if raw_window else None
        return DeltaToken(**obj, window=window)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise GraphError(410, "syncStateNotFound", "The sync state is not valid.") from exc


def check(token: DeltaToken, box: Mailbox, folder: Folder, max_age_s: float) -> None:
    if token.mailbox != box.address or token.folder != folder.id:
        raise GraphError(410, "syncStateNotFound", "The token belongs to another folder.")
    if token.epoch != box.epoch:
        raise GraphError(410, "syncStateNotFound", "The mailbox was restored or moved.")
    if time.time() - token.issued > max_age_s:
        # What Graph answers once an Outlook delta token has left its token cache.
        raise GraphError(410, "syncStateNotFound", EXPIRED)


def changes(box: Mailbox, folder: Folder, since: int, upto: int) -> list[tuple[str, bool]]:
    """(item id, still there) for every item written in (since, upto], in log order."""
    if since == 0:
        return [(i, True) for i in folder.items if box.items[i].created_seq <= upto]
    latest: dict[str, None] = {}
    for seq, item_id in folder.log:
        if since < seq <= upto:
            latest.pop(item_id, None)
            latest[item_id] = None
    out = []
    for item_id in latest:
        if item_id in folder.items:
            out.append((item_id, True))
        elif folder.gone.get(item_id, since + 1) <= since:
            out.append((item_id, False))  # created before the token: the client knows it
    return out


def _window(token: DeltaToken) -> tuple[datetime, datetime] | None:
    if token.window is None:
        return None
    return cal.parse_datetime(token.window[0]), cal.parse_datetime(token.window[1])


def _entries(box: Mailbox, item_id: str, present: bool, token: DeltaToken) -> list[Json]:
    if not present:
        return [{"id": graph_id(item_id), "@removed": {"reason": "deleted"}}]
    item = box.items[item_id]
    window = _window(token)
    if window is None:
        return [item_json(item)]
    if cal.series(item) is None:
        return [item_json(item)] if overlaps(item, *window) else []
    # calendarView answers with instances, never with the series master.
    indexes = occurrences_in(item, *window)[:MAX_OCCURRENCES_PER_SERIES]
    return [occurrence_json(box, item, i) for i in indexes]


def page(
    box: Mailbox, folder: Folder, token: DeltaToken, link: str, secret: bytes, size: int
) -> Json:
    """One delta page; `link` is the resource URL the next/delta link continues."""
    listed = changes(box, folder, token.since, token.upto)
    chunk = listed[token.offset : token.offset + size]
    values = [e for item_id, present in chunk for e in _entries(box, item_id, present, token)]
    body: Json = {"value": values}
    if token.offset + size < len(listed):
        nxt = replace(token, offset=token.offset + size)
        body["@odata.nextLink"] = f"{link}?$skiptoken={encode(nxt, secret)}"
    else:
        done = replace(token, since=token.upto, upto=0, offset=0, issued=time.time())
        body["@odata.deltaLink"] = f"{link}?$deltatoken={encode(done, secret)}"
    return body
