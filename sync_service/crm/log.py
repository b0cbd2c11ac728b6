"""Pure reading of change-log rows: from a list of log operations to one change per record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sync_service.crm.port import ChangeOp, RecordChange

# insert/update: the record changed; link: it appeared in this user's mailbox;
# delete: it is gone; unlink: it left this user's sync set (it may live on for others).
_OPS = {
    "insert": ChangeOp.UPSERT,
    "update": ChangeOp.UPSERT,
    "link": ChangeOp.UPSERT,
    "delete": ChangeOp.REMOVED,
    "unlink": ChangeOp.REMOVED,
}


def reduce_changes(rows: Iterable[Any]) -> tuple[RecordChange, ...]:
    """The last operation of each record, in the order records last changed.

    Ordered by seq: writes to one row are serialized by its row lock, so the later writer
    always drew the later seq (transaction ids give no such guarantee).
    """
    last: dict[str, RecordChange] = {}
    for row in sorted(rows, key=lambda r: r["seq"]):
        record_id = str(row["record_id"])
        last.pop(record_id, None)
        last[record_id] = RecordChange(record_id, _OPS[row["op"]])
    return tuple(last.values())
