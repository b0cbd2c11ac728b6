"""ConvertId: item ids of one mailbox between EwsId, EntryId (PR_ENTRYID, base64) and HexEntryId.

One response message per id, in request order; a failed id's message carries no
`m:AlternateId` (ews_client/PROTOCOL_NOTES.md, "Mailbox moves and id translation"). A
mailbox-wide error (the mailbox moved away, impersonation refused) is raised, since no id of
the request can then be converted; other errors are answered per id.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from ews_client.errors import ExchangeError, MailboxError, ProtocolError
from ews_client.ews.soap import envelope, message_error, response_messages
from ews_client.ews.xml import m, new, sub, t

OPERATION = "ConvertId"
# No per-call limit is documented; a request this size stays well inside the batch sizes the
# rest of the client sends, and under the message size limits of any server.
MAX_IDS_PER_CALL = 100


class IdFormat(StrEnum):
    EWS_ID = "EwsId"
    ENTRY_ID = "EntryId"
    HEX_ENTRY_ID = "HexEntryId"


def build_convert_id(mailbox: str, ids: Sequence[str], source: IdFormat, target: IdFormat) -> bytes:
    if not ids or len(ids) > MAX_IDS_PER_CALL:
        raise ValueError(f"ConvertId takes 1 to {MAX_IDS_PER_CALL} ids per call, not {len(ids)}")
    req = new(m(OPERATION), DestinationFormat=target.value)
    holder = sub(req, m("SourceIds"))
    for value in ids:
        sub(holder, t("AlternateId"), Format=source.value, Id=value, Mailbox=mailbox)
    return envelope(req, mailbox)


def parse_convert_id(data: bytes, count: int) -> list[str | ExchangeError]:
    """The converted id, or the error, of each of the `count` ids asked for, in order."""
    messages = response_messages(data, OPERATION)
    if len(messages) != count:
        raise ProtocolError(f"ConvertId: {count} ids asked for, {len(messages)} answered")
    out: list[str | ExchangeError] = []
    for msg in messages:
        error = message_error(msg)
        if isinstance(error, MailboxError):
            raise error
        if error is not None:
            out.append(error)
            continue
        alt = msg.find(m("AlternateId"))
        value = alt.get("Id") if alt is not None else None
        if not value:
            raise ProtocolError("ConvertId: a successful message without an AlternateId Id")
        out.append(value)
    return out
