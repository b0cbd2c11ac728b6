"""`POST /users/{id}/translateExchangeIds`: item ids between Graph's exchangeIdFormat members.

At most 1,000 `inputIds` per call, all of one `sourceIdType`, all of the user's mailbox (the
API's page, ews_client/PROTOCOL_NOTES.md, "Mailbox moves and id translation"). Each input id
gets one `convertIdResult`: `targetId`, or `errorDetails` when it names no item of the mailbox.

The simulator's ids: `ewsId` is the store id, `restId` its URL-safe form (ids.py); the id of
any generation (before or after a move, moves.py) resolves to the item it names now.
`entryId` is the item's PR_ENTRYID in base64, which a move keeps; `immutableEntryId` is the
same bytes (the simulator's entry ids never change) and `restImmutableEntryId` the restId,
since the simulator answers the same ids whether or not immutable ids were asked for.

The API takes delegated permissions only: an application token is refused with 403
(permissions.py), and the handler's translation is reached by callers without a token.
"""

from __future__ import annotations

from typing import Any

from .. import moves
from ..store import Mailbox
from . import schema
from .errors import bad_request
from .handlers import Env, GReq, GResp
from .ids import ews_id, graph_id

MAX_IDS = 1000
_FORMAT_ENUM = "microsoft.graph.exchangeIdFormat"
_ENTRY_FORMATS = ("entryId", "immutableEntryId")
_REST_FORMATS = ("restId", "restImmutableEntryId")
Json = dict[str, Any]


def translate_ids(env: Env, req: GReq, box: Mailbox) -> GResp:
    body = req.body if isinstance(req.body, dict) else {}
    inputs = body.get("inputIds")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise bad_request("inputIds must be a collection of strings.")
    if len(inputs) > MAX_IDS:
        raise bad_request(f"inputIds holds {len(inputs)} ids; at most {MAX_IDS} per call.")
    source = _format(body, "sourceIdType")
    target = _format(body, "targetIdType")
    index = moves.current_ids(box)
    return GResp(200, {"value": [_one(box, index, value, source, target) for value in inputs]})


def _format(body: Json, name: str) -> str:
    value = body.get(name)
    members = schema.metadata().enums[_FORMAT_ENUM].members
    if not isinstance(value, str) or value not in members:
        raise bad_request(f"{name} must be one of {', '.join(sorted(members))}; got {value!r}.")
    return value


def _one(box: Mailbox, index: dict[int, str], value: str, source: str, target: str) -> Json:
    counter = _counter(box, value, source)
    current = index.get(counter) if counter is not None else None
    if counter is None or current is None:
        error = {"code": "ErrorInvalidIdMalformed" if counter is None else "ErrorItemNotFound",
                 "message": "The id names no item of this mailbox."}  # fmt: skip
        return {"sourceId": value, "errorDetails": error}
    return {"sourceId": value, "targetId": _render(box, counter, current, target)}


def _counter(box: Mailbox, value: str, source: str) -> int | None:
    if source in _ENTRY_FORMATS:
        raw = moves.from_b64(value)
        return None if raw is None else moves.entry_counter(box, raw)
    return moves.counter_of(box, ews_id(value) if source in _REST_FORMATS else value)


def _render(box: Mailbox, counter: int, current: str, target: str) -> str:
    if target in _ENTRY_FORMATS:
        return moves.b64_entry(moves.entry_id(box, counter))
    return graph_id(current) if target in _REST_FORMATS else current
