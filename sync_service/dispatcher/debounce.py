"""Coalesce a burst of notifications for one mailbox into one job (pure, clock passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Burst:
    mailbox_id: int
    first_at: datetime  # the oldest change the job will cover (change-lag metric)


@dataclass(slots=True)
class Debouncer:
    """A mailbox is released `quiet` after its last event, or `longest` after its first.

    The cap keeps a mailbox that changes continuously from waiting forever.
    """

    quiet: timedelta = timedelta(seconds=0.5)
    longest: timedelta = timedelta(seconds=3)
    _first: dict[int, datetime] = field(default_factory=dict)
    _last: dict[int, datetime] = field(default_factory=dict)

    def record(self, mailbox_id: int, at: datetime) -> None:
        self._first.setdefault(mailbox_id, at)
        self._last[mailbox_id] = at

    def release(self, now: datetime) -> list[Burst]:
        ready = [
            m
            for m, first in self._first.items()
            if now - self._last[m] >= self.quiet or now - first >= self.longest
        ]
        bursts = [Burst(m, self._first.pop(m)) for m in ready]
        for m in ready:
            del self._last[m]
        return bursts

    def __len__(self) -> int:
        return len(self._first)
