"""The simulator's whole in-memory state: mailboxes, snapshots, counters, throttling, streams."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import meetings
from .config import SimulatorConfig
from .invitations import Outbox, attach
from .mailbox_access import MailboxAccess, MoveState
from .store import Mailbox, Snapshot
from .streaming import Hub
from .throttle import Throttler
from .writes import Quota, simple_props

_SEED_FIELDS: dict[str, tuple[str, Callable[[int], dict[str, str]]]] = {
    "contacts": ("Contact", lambda n: {"GivenName": f"Seed{n}", "Surname": "Contact"}),
    "calendar": (
        "CalendarItem",
        lambda n: {
            "Subject": f"Seed meeting {n}",
            "Start": f"2026-01-{n % 28 + 1:02d}T09:00:00Z",
            "End": f"2026-01-{n % 28 + 1:02d}T10:00:00Z",
        },
    ),
    "tasks": ("Task", lambda n: {"Subject": f"Seed task {n}"}),
}


def address_of(number: int) -> str:
    return f"user{number:05d}@sim.example"


@dataclass(slots=True)
class SimState:
    config: SimulatorConfig
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Snapshot]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    invalid_responses: list[str] = field(default_factory=list)
    # client bodies Graph's metadata does not declare (the client's bug, not the simulator's)
    invalid_requests: list[str] = field(default_factory=list)
    missing_anchor: int = 0
    throttler: Throttler = field(init=False)
    hub: Hub = field(default_factory=Hub)
    # what a real server would have mailed to attendees (invitations, updates, cancellations)
    outbox: Outbox = field(default_factory=Outbox)
    quota: Quota = field(init=False)
    rng: random.Random = field(init=False)
    access: MailboxAccess = field(init=False)

    def __post_init__(self) -> None:
        self.throttler = Throttler(self.config.throttle)
        self.quota = Quota(self.config.named_props_per_guid, self.config.named_props_total)
        self.rng = random.Random(self.config.faults.seed)
        attach(self.quota, self.outbox)
        meetings.attach(self.quota, self.mailboxes)
        self.access = initial_access(self.config)

    def add_mailbox(self, address: str) -> Mailbox:
        address = address.lower()
        if address not in self.mailboxes:
            self.mailboxes[address] = Mailbox.create(address, len(self.mailboxes) + 1)
        return self.mailboxes[address]

    def add_numbered(self, count: int, items_per_folder: int = 0, first: int = 1) -> list[str]:
        made = []
        for number in range(first, first + count):
            box = self.add_mailbox(address_of(number))
            self.seed(box, items_per_folder)
            made.append(box.address)
        return made

    def seed(self, box: Mailbox, per_folder: int) -> None:
        for folder_name, (kind, fields) in _SEED_FIELDS.items():
            folder = box.folder(folder_name)
            for n in range(per_folder):
                box.add(folder, kind, simple_props(kind, fields(n)))

    def counters(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "throttled": dict(self.throttler.throttled),
            "early_retries": self.throttler.early_retries,
            "faults": dict(self.faults),
            "invalid_responses": len(self.invalid_responses),
            "invalid_requests": len(self.invalid_requests),
            "missing_anchor_mailbox": self.missing_anchor,
            "mailboxes": len(self.mailboxes),
            "subscriptions": len(self.hub.subscriptions),
            "sent": self.outbox.counters(),
        }

    def reset(self) -> None:
        self.hub.break_all(forget=True)
        self.mailboxes.clear()
        self.snapshots.clear()
        self.requests.clear()
        self.faults.clear()
        self.invalid_responses.clear()
        self.invalid_requests.clear()
        self.missing_anchor = 0
        self.outbox.clear()
        self.throttler = Throttler(self.config.throttle)
        self.access = initial_access(self.config)


def initial_access(config: SimulatorConfig) -> MailboxAccess:
    """The access policy the configuration starts with."""
    access = MailboxAccess()
    for address in config.impersonation_refused:
        access.refuse(address, True)
    for address in config.moving:
        access.set_move(address, MoveState.IN_PROGRESS)
    for address in config.moved:
        access.set_move(address, MoveState.MOVED)
    return access
