"""Refused impersonation and mailbox moves as exchangelib sees them: each answer is the error
exchangelib knows for it (it raises its own exception class for each), for that mailbox
only."""

from __future__ import annotations

import pytest
from exchangelib.errors import (
    ErrorImpersonateUserDenied,
    ErrorMailboxMoveInProgress,
    ErrorNonExistentMailbox,
)

from ews_client.simulator.mailbox_access import MoveState
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX, OTHER, account, add_contacts, in_thread


def _count(sim: RunningSimulator, address: str) -> int:
    acc = account(sim, address)
    return len(list(acc.contacts.all().only("given_name")))


async def test_refused_impersonation_raises_for_that_mailbox_only(sim: RunningSimulator) -> None:
    add_contacts(sim, 2, OTHER)
    sim.sim.access.refuse(BOX, True)
    with pytest.raises(ErrorImpersonateUserDenied):
        await in_thread(_count, sim, BOX)
    assert await in_thread(_count, sim, OTHER) == 2


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (MoveState.IN_PROGRESS, ErrorMailboxMoveInProgress),
        (MoveState.MOVED, ErrorNonExistentMailbox),
    ],
)
async def test_a_moving_or_moved_mailbox_raises_what_exchange_answers(
    sim: RunningSimulator, state: MoveState, error: type[Exception]
) -> None:
    add_contacts(sim, 3)
    sim.sim.access.set_move(BOX, state)
    with pytest.raises(error):
        await in_thread(_count, sim, BOX)
    sim.sim.access.set_move(BOX, MoveState.NONE)
    assert await in_thread(_count, sim, BOX) == 3
