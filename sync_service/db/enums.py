"""The values of the mailbox columns that hold a choice; no I/O, so pure code may use them.

The database checks the same values (schema/0001_sync_state.sql, widened by
0011_moved_state.sql) and the operator surface shows them as they are.
"""

from __future__ import annotations

from enum import StrEnum


class MailboxState(StrEnum):
    """`sync.mailboxes.state`; only an active mailbox is synchronized."""

    ACTIVE = "active"
    DISABLED = "disabled"  # by an operator, or after failures no retry can fix
    QUARANTINED = "quarantined"  # a guard refused a plan
    NEEDS_RECOVERY = "needs_recovery"  # the mailbox marker says a backup was restored
    # Exchange moved the mailbox to another server: not a failure; `mailboxes move` carries it
    # to its new server (or an operator enables it again).
    MOVED = "moved"


class EntityMode(StrEnum):
    """Which way one entity of a mailbox is synchronized (`*_mode` columns)."""

    TWO_WAY = "two-way"
    CRM_TO_EXCHANGE = "crm-to-exchange"
    EXCHANGE_TO_CRM = "exchange-to-crm"
    OFF = "off"


# The values, in the order the operator surface lists them.
ENTITY_MODES: tuple[str, ...] = tuple(m.value for m in EntityMode)
MAILBOX_STATES: tuple[str, ...] = tuple(s.value for s in MailboxState)
