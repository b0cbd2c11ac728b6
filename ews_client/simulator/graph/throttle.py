"""Graph throttling per mailbox: 4 concurrent requests and 10,000 requests per 10 minutes;
over either, `429` with `Retry-After` in whole seconds (HTTP defines the value as an
integer number of seconds; clients such as the Graph SDK ignore a fraction). A request that arrives
before its mailbox's Retry-After elapsed is refused again and counted as an early retry."""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import GraphPolicy


@dataclass(slots=True)
class _Box:
    active: int = 0
    stamps: deque[float] = field(default_factory=deque)
    backoff_until: float = 0.0
    backoff_issued: float = 0.0


@dataclass(slots=True)
class GraphThrottler:
    policy: GraphPolicy
    clock: Callable[[], float] = time.monotonic
    boxes: dict[str, _Box] = field(default_factory=dict)
    throttled: Counter[str] = field(default_factory=Counter)
    early_retries: int = 0
    admitted: int = 0

    def admit(self, mailbox: str) -> int | None:
        """None: admitted (and counted active); else the Retry-After in seconds."""
        if not self.policy.throttle:
            return None
        now = self.clock()
        box = self.boxes.setdefault(mailbox, _Box())
        if now < box.backoff_until:
            if now >= box.backoff_issued + self.policy.early_retry_grace_s:
                self.early_retries += 1
            self.throttled["early"] += 1
            return _round_up(box.backoff_until - now)
        horizon = now - self.policy.window_s
        while box.stamps and box.stamps[0] <= horizon:
            box.stamps.popleft()
        if len(box.stamps) >= self.policy.window_requests:
            return self._back_off(box, now, box.stamps[0] + self.policy.window_s - now, "rate")
        if box.active >= self.policy.max_concurrency:
            return self._back_off(box, now, self.policy.concurrency_retry_after_s, "concurrency")
        box.stamps.append(now)
        box.active += 1
        self.admitted += 1
        return None

    def release(self, mailbox: str) -> None:
        if self.policy.throttle:
            self.boxes[mailbox].active -= 1

    def _back_off(self, box: _Box, now: float, seconds: float, kind: str) -> int:
        whole = _round_up(seconds)
        box.backoff_until = max(box.backoff_until, now + whole)
        box.backoff_issued = now
        self.throttled[kind] += 1
        return whole


def _round_up(seconds: float) -> int:
    return max(1, math.ceil(seconds))
