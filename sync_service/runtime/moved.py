"""A mailbox that Exchange moved to another server, told apart from a mailbox that fails.

An Exchange Server that no longer holds a mailbox it held (moved to Exchange Online) answers
every operation on it `ErrorNonExistentMailbox` with "No mailbox with such guid."
(ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)", mailbox moves). The
mailbox is then stopped with a reason that says so and names the command that carries it to
its new server (sync_service/operator/moves.py), rather than the bare error.
"""

from __future__ import annotations

from ews_client import MailboxError

MOVED_CODE = "ErrorNonExistentMailbox"
MOVED_TEXT = "no mailbox with such guid"
REASON_PREFIX = "moved:"


def moved_away(exc: BaseException) -> bool:
    """Whether `exc` is the answer of a server the mailbox was moved away from."""
    return (
        isinstance(exc, MailboxError) and exc.code == MOVED_CODE and MOVED_TEXT in str(exc).lower()
    )


def moved_reason(email: str, server: str, exc: BaseException) -> str:
    """The state's reason: what happened, and what the operator runs once the move is done."""
    return (
        f"{REASON_PREFIX} {server} no longer holds this mailbox ({exc}); Exchange moved it to "
        f"another server. Once the move is complete run: sync-service mailboxes move {email} "
        "--to SERVER (the server that holds it now; see sync-service servers list)"
    )
