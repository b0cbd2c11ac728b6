"""exchangelib (a client nobody here wrote) driving the in-process simulator over real HTTP,
as the service reaches Exchange: Basic authentication and impersonation of each mailbox, no
autodiscover, a fixed request version.

exchangelib is synchronous: its calls run in a worker thread (`in_thread`) while the
simulator serves from the test's event loop. Touch exchangelib objects only there: even an
attribute such as `account.contacts` sends a request, and sent from the loop it would wait
for the very loop that has to answer it. exchangelib is imported here and in this folder's
tests only (like Microsoft's Graph SDK in tests/graph/sdk/).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest
from exchangelib import (
    BASIC,
    IMPERSONATION,
    Account,
    Configuration,
    Credentials,
    Version,
    close_connections,
)
from exchangelib.version import EXCHANGE_2016

from ews_client.simulator.store import Mailbox, StoredItem
from ews_client.simulator.testing import RunningSimulator, running_simulator
from ews_client.simulator.writes import simple_props

BOX = "user00001@sim.example"
OTHER = "user00002@sim.example"
R = TypeVar("R")


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as running:
        running.sim.add_numbered(2)
        yield running
        await asyncio.to_thread(close_connections)  # exchangelib's pooled sessions
        # Every response sent during the test validated against the EWS XSD.
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


def account(sim: RunningSimulator, address: str = BOX) -> Account:
    """An exchangelib account impersonating `address` with the simulator's service account."""
    config = Configuration(
        service_endpoint=sim.ews_url,
        credentials=Credentials(sim.username, sim.password),
        auth_type=BASIC,
        # Exchange 2016 and later (Subscription Edition included) speak this version.
        version=Version(build=EXCHANGE_2016),
    )
    return Account(address, config=config, autodiscover=False, access_type=IMPERSONATION)


async def in_thread(fn: Callable[..., R], *args: object) -> R:
    """Run blocking exchangelib code off the event loop that serves the simulator."""
    return await asyncio.to_thread(fn, *args)


def mailbox(sim: RunningSimulator, address: str = BOX) -> Mailbox:
    return sim.sim.mailboxes[address]


def add_contacts(sim: RunningSimulator, count: int, address: str = BOX) -> list[StoredItem]:
    """`count` contacts written by the mailbox's owner, named Person0001 ... in order."""
    box = mailbox(sim, address)
    folder = box.folder("contacts")
    fields = ({"GivenName": f"Person{n:04d}", "Surname": "Example"} for n in range(count))
    return [box.add(folder, "Contact", simple_props("Contact", f)) for f in fields]
