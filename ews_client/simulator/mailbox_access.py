"""Who may reach a mailbox through EWS: refused impersonation and mailbox moves.

An operator can refuse the service account's impersonation of chosen mailboxes (Exchange
answers the SOAP fault `ErrorImpersonateUserDenied`), and mark mailboxes as being moved
(every operation answers `ErrorMailboxMoveInProgress`) or as moved away (the mailbox left
this server: `ErrorNonExistentMailbox`, "No mailbox with such guid."). Both answers are
per-message errors: the first message of a request carries the code, the messages after it
`ErrorBatchProcessingStopped`, as Exchange stops a batch on such an error
(ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

from . import soap
from .xmlutil import m, sub


class MoveState(StrEnum):
    NONE = "none"
    IN_PROGRESS = "in_progress"
    MOVED = "moved"


# What a mailbox in each move state answers: (ResponseCode, MessageText).
_MOVE_ERRORS = {
    MoveState.IN_PROGRESS: (
        "ErrorMailboxMoveInProgress",
        "The mailbox is being moved to a different mailbox store or server.",
    ),
    MoveState.MOVED: ("ErrorNonExistentMailbox", "No mailbox with such guid."),
}
_STOPPED = "The batch was stopped: an earlier item failed with an error that applies to it too."
# Operation -> the request child whose children are the units answered one message each
# (None: one message per request), and whether an error message carries an empty m:Items.
_UNITS: dict[str, tuple[str | None, bool]] = {
    "GetFolder": ("FolderIds", False),
    "FindFolder": ("ParentFolderIds", False),
    "FindItem": ("ParentFolderIds", False),
    "GetItem": ("ItemIds", True),
    "CreateItem": ("Items", True),
    "UpdateItem": ("ItemChanges", True),
    "DeleteItem": ("ItemIds", False),
    "ConvertId": ("SourceIds", False),
}


@dataclass(slots=True)
class MailboxAccess:
    """The mutable part of the simulator's access policy (admin API, CLI)."""

    refused: set[str] = field(default_factory=set)  # impersonation refused
    moves: dict[str, MoveState] = field(default_factory=dict)

    def refuse(self, address: str, refused: bool) -> None:
        if refused:
            self.refused.add(address.lower())
        else:
            self.refused.discard(address.lower())

    def set_move(self, address: str, state: MoveState) -> None:
        if state is MoveState.NONE:
            self.moves.pop(address.lower(), None)
        else:
            self.moves[address.lower()] = state

    def move_state(self, address: str) -> MoveState:
        return self.moves.get(address.lower(), MoveState.NONE)

    def impersonation_refused(self, address: str, allowed: frozenset[str] | None) -> bool:
        """Refused when the address is denied, or when an allow-list leaves it out."""
        address = address.lower()
        return address in self.refused or (allowed is not None and address not in allowed)


def move_answer(
    access: MailboxAccess, address: str, operation: etree._Element
) -> etree._Element | None:
    """The whole answer to `operation` while `address` is moving or moved, else None."""
    state = access.move_state(address)
    if state is MoveState.NONE:
        return None
    code, text = _MOVE_ERRORS[state]
    name = etree.QName(operation).localname
    holder, with_items = _UNITS.get(name, (None, False))
    units = operation.find(m(holder)) if holder else None
    count = len(units) if units is not None and len(units) else 1
    root, messages = soap.response_root(name)
    for index in range(count):
        if index == 0:
            msg = soap.error(messages, name, code, text)
        else:
            msg = soap.error(messages, name, "ErrorBatchProcessingStopped", _STOPPED)
            msg.set("ResponseClass", "Warning")
        if with_items:
            sub(msg, m("Items"))
    return root
