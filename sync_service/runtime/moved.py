"""A mailbox that Exchange moved to another server, told apart from a mailbox that fails.

An Exchange Server that no longer holds a mailbox it held (moved to Exchange Online) answers
every operation on it `ErrorNonExistentMailbox` with "No mailbox with such guid."
(ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)", mailbox moves). The
mailbox then gets the state `moved`, not `disabled`: nothing failed, no retry would help, and
what the operator does next is known. Its reason says what happened and names the command
that carries it to its new server (sync_service/operator/moves.py), which makes it active
again; so does `mailboxes enable`. No schedule picks a moved mailbox (they select active
ones), and its failure count is left as it was.
"""

from __future__ import annotations

import logging

from ews_client import MailboxError
from sync_service.db.store import Mailbox, MailboxState, Server, Store

log = logging.getLogger("sync_service.runtime.moved")

MOVED_CODE = "ErrorNonExistentMailbox"
MOVED_TEXT = "no mailbox with such guid"
REASON_PREFIX = "moved:"
_NAMED = 5  # candidate servers named in the reason when the target is not known


def moved_away(exc: BaseException) -> bool:
    """Whether `exc` is the answer of a server the mailbox was moved away from."""
    return (
        isinstance(exc, MailboxError) and exc.code == MOVED_CODE and MOVED_TEXT in str(exc).lower()
    )


def moved_reason(email: str, server: str, exc: BaseException, targets: list[str]) -> str:
    """The state's reason: what happened, and the command the operator runs once the move is
    done. `targets` are the servers it may have gone to: one is named in the command, several
    are listed beside it (Exchange's answer does not say which server holds it now)."""
    if len(targets) == 1:
        command = f"sync-service mailboxes move {email} --to {targets[0]}"
        hint = ""
    else:
        command = f"sync-service mailboxes move {email} --to SERVER"
        shown = ", ".join(targets[:_NAMED]) + (", ..." if len(targets) > _NAMED else "")
        hint = f" (the server that holds it now: {shown or 'add it with sync-service servers add'})"
    return (
        f"{REASON_PREFIX} {server} no longer holds this mailbox ({exc}); Exchange moved it to "
        f"another server. Once the move is complete run: {command}{hint}"
    )


async def mark_moved(store: Store, mailbox: Mailbox, exc: BaseException) -> str:
    """Give `mailbox` the state `moved` with its reason (returned, for the run record)."""
    servers = await store.servers()
    source = next((s for s in servers if s.id == mailbox.server_id), None)
    name = source.name if source is not None else str(mailbox.server_id)
    reason = moved_reason(mailbox.email, name, exc, _targets(servers, mailbox.server_id))
    await store.set_mailbox_state(mailbox.id, MailboxState.MOVED, reason[:2000])
    log.warning("mailbox moved away", extra={"mailbox": mailbox.email, "server": name})
    return reason


def _targets(servers: list[Server], source_id: int) -> list[str]:
    """The enabled servers other than the one the mailbox left."""
    return [s.name for s in servers if s.id != source_id and s.enabled]
