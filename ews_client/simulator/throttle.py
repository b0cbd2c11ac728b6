"""Per-mailbox throttling as Exchange Online applies it (see `config.ThrottlePolicy`)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import ThrottlePolicy


@dataclass(frozen=True, slots=True)
class Refusal:
    """kind: busy_fault | connections_fault | sync_busy (per-message) | frontend_503."""

    kind: str
    backoff_ms: int = 0


@dataclass(slots=True)
class _Budget:
    tokens: float
    stamp: float
    active: int = 0
    active_sync: int = 0
    backoff_until: float = 0.0
    backoff_issued: float = 0.0


@dataclass(slots=True)
class Throttler:
    policy: ThrottlePolicy
    clock: Callable[[], float] = time.monotonic
    budgets: dict[str, _Budget] = field(default_factory=dict)
    throttled: Counter[str] = field(default_factory=Counter)
    early_retries: int = 0
    inflight: int = 0
    frontend_until: float = 0.0

    def admit_frontend(self) -> Refusal | None:
        limit = self.policy.frontend_max_inflight
        now = self.clock()
        if limit is not None and (self.inflight >= limit or now < self.frontend_until):
            if now < self.frontend_until:
                self.early_retries += 1
            else:
                self.frontend_until = now + self.policy.frontend_retry_after_s
            self.throttled["frontend_503"] += 1
            return Refusal("frontend_503", self.policy.frontend_retry_after_s * 1000)
        return None

    def admit(self, mailbox: str, is_sync: bool) -> Refusal | None:
        """Admit a request (and count it active) or say how it is refused."""
        if not self.policy.enabled:
            return None
        now = self.clock()
        budget = self._budget(mailbox, now)
        if now < budget.backoff_until:
            # Refused again; counted as an early retry unless it was already on the wire.
            if now >= budget.backoff_issued + self.policy.early_retry_grace_s:
                self.early_retries += 1
            return self._refuse("busy_fault", math.ceil((budget.backoff_until - now) * 1000))
        if budget.active >= self.policy.max_concurrency:
            return self._refuse("connections_fault", 0)
        if budget.tokens < 1.0:
            return self._back_off(budget, now, "busy_fault", self._recharge_ms(budget))
        if is_sync and budget.active_sync >= self.policy.max_sync_concurrency:
            return self._back_off(budget, now, "sync_busy", self.policy.sync_busy_backoff_ms)
        budget.tokens -= 1.0
        budget.active += 1
        budget.active_sync += int(is_sync)
        return None

    def release(self, mailbox: str, is_sync: bool, items: int) -> None:
        if not self.policy.enabled:
            return
        budget = self.budgets[mailbox]
        budget.active -= 1
        budget.active_sync -= int(is_sync)
        budget.tokens -= items * self.policy.item_cost

    def _budget(self, mailbox: str, now: float) -> _Budget:
        budget = self.budgets.get(mailbox)
        if budget is None:
            budget = self.budgets[mailbox] = _Budget(self.policy.burst, now)
        elapsed, budget.stamp = now - budget.stamp, now
        budget.tokens = min(self.policy.burst, budget.tokens + elapsed * self.policy.recharge_per_s)
        return budget

    def _recharge_ms(self, budget: _Budget) -> int:
        missing = self.policy.backoff_units - budget.tokens
        return max(1, math.ceil(missing / self.policy.recharge_per_s * 1000))

    def _back_off(self, budget: _Budget, now: float, kind: str, ms: int) -> Refusal:
        budget.backoff_until = max(budget.backoff_until, now + ms / 1000)
        budget.backoff_issued = now
        return self._refuse(kind, ms)

    def _refuse(self, kind: str, ms: int) -> Refusal:
        self.throttled[kind] += 1
        return Refusal(kind, ms)
