"""Client-side throttling for one EWS server: never give the server a reason to throttle us,
and when it does, honour its back-off exactly.

Per server: an aiolimiter rate limit plus a concurrency limit that adapts (multiplicative
decrease on server-wide trouble: 503s, timeouts, 5xx; slow additive recovery). Per mailbox:
at most ~10 requests open (halved on ErrorServerBusy, recovering slowly) and at most 4
concurrent SyncFolderItems (Exchange allows about 5 "ConcurrentSyncCalls"),
and a back-off deadline that every request to that mailbox waits out, to the millisecond
the server named (ews_client/PROTOCOL_NOTES.md, "Throttling"). Per-mailbox state is a few
small fields and is evicted when idle, so thousands of mailboxes cost little.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiolimiter import AsyncLimiter

from ews_client.errors import ExchangeError, ProtocolError, ThrottledError, TransientError
from ews_client.io.failures import AMBIGUOUS_CODES

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
SERVER_SCOPE_CODES = frozenset({"HTTP503"})  # front-end answers: the whole server backs off
OVERLOAD_CODES = frozenset({"Timeout", "ErrorInternalServerTransientError"})


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    rate_per_s: float = 500.0  # requests per second to one server (all mailboxes)
    max_concurrency: int = 256  # ceiling of the adaptive per-server concurrency
    min_concurrency: int = 8
    # Our margin below EWSMaxConcurrency (ews_client/PROTOCOL_NOTES.md, "Throttling").
    per_mailbox: int = 10
    per_mailbox_sync: int = 4  # below the server's ~5 concurrent sync calls
    max_attempts: int = 8
    budget_s: float = 120.0  # total time one call may spend retrying
    base_delay_s: float = 0.25
    max_delay_s: float = 30.0
    # Safety margin on a server back-off: our clock starts when the answer arrives, which is
    # later than the server's, but a margin also covers coarse timers.
    backoff_margin_s: float = 0.02
    idle_evict_s: float = 300.0


class Gate:
    """A counting gate whose limit can change while tasks wait (FIFO, cancellation-safe)."""

    __slots__ = ("_waiters", "in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us as we were cancelled
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self.wake()

    def wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_use += 1
                fut.set_result(None)

    @property
    def idle(self) -> bool:
        return self.in_use == 0 and not self._waiters


class MailboxState:
    """What we remember about one mailbox: two gates and a back-off deadline."""

    __slots__ = ("backoff_until", "gate", "last_used", "ok_streak", "sync_gate")

    def __init__(self, limits: ThrottleLimits, now: float) -> None:
        self.gate = Gate(limits.per_mailbox)
        self.sync_gate = Gate(limits.per_mailbox_sync)
        self.backoff_until = 0.0
        self.last_used = now
        self.ok_streak = 0


class AdaptiveLimit:
    """AIMD on the server's concurrency: halve-ish on throttling, +1 per `recover_after` oks."""

    def __init__(self, limits: ThrottleLimits, clock: Clock, recover_after: int = 50) -> None:
        self.gate = Gate(limits.max_concurrency)
        self._max = limits.max_concurrency
        self._min = limits.min_concurrency
        self._clock = clock
        self._last_cut = -1e9
        self._oks = 0
        self._recover_after = recover_after

    def throttled(self) -> None:
        now = self._clock()
        if now - self._last_cut < 1.0:  # one cut per second: answers of one burst arrive together
            return
        self._last_cut = now
        self.gate.limit = max(self._min, int(self.gate.limit * 0.7))
        self._oks = 0

    def succeeded(self) -> None:
        self._oks += 1
        if self._oks >= self._recover_after and self.gate.limit < self._max:
            self._oks = 0
            self.gate.limit += 1
            self.gate.wake()


class Throttle:
    """Runs request attempts for one server under its limits, with bounded retries."""

    def __init__(
        self,
        limits: ThrottleLimits | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_backoff: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits or ThrottleLimits()
        self._clock = clock
        self._sleep = sleep
        self._on_backoff = on_backoff
        # Called with the seconds each request waited for the limits before it was sent.
        self.on_wait: Callable[[float], None] | None = None
        self._rng = rng or random.Random()
        self._rate = AsyncLimiter(self.limits.rate_per_s, 1.0)
        self.server = AdaptiveLimit(self.limits, clock)
        self.server_backoff_until = 0.0
        self._mailboxes: dict[str, MailboxState] = {}
        self._next_sweep = clock() + self.limits.idle_evict_s

    # -- per-mailbox state ------------------------------------------------------------------
    def mailbox(self, smtp: str) -> MailboxState:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._mailboxes.get(smtp)
        if state is None:
            state = self._mailboxes[smtp] = MailboxState(self.limits, now)
        state.last_used = now
        return state

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.limits.idle_evict_s
        horizon = now - self.limits.idle_evict_s
        for key in [k for k, s in self._mailboxes.items() if self._evictable(s, horizon, now)]:
            del self._mailboxes[key]

    @staticmethod
    def _evictable(state: MailboxState, horizon: float, now: float) -> bool:
        idle = state.gate.idle and state.sync_gate.idle
        return idle and state.last_used < horizon and state.backoff_until <= now

    @property
    def tracked_mailboxes(self) -> int:
        return len(self._mailboxes)

    # -- back-off -----------------------------------------------------------------------------
    def record_backoff(self, smtp: str, exc: ThrottledError) -> float:
        """Set the deadline the server asked for; return the seconds until it."""
        now = self._clock()
        delay = exc.backoff_s or self._exp_delay(1)
        until = now + delay + self.limits.backoff_margin_s
        if exc.code in SERVER_SCOPE_CODES:
            self.server_backoff_until = max(self.server_backoff_until, until)
        else:
            state = self.mailbox(smtp)
            state.backoff_until = max(state.backoff_until, until)
        if exc.code not in SERVER_SCOPE_CODES:
            # Fewer requests in flight to a mailbox that is out of budget or connections:
            # each one already on the wire when a back-off is handed out arrives early.
            gate = self.mailbox(smtp).gate
            gate.limit = max(
                1, gate.limit // 2 if exc.code == "ErrorServerBusy" else gate.limit - 2
            )
        if exc.code in SERVER_SCOPE_CODES:
            # Mailbox budgets are the mailbox's business; only a front end that refuses work
            # says the server as a whole is overloaded.
            self.server.throttled()
        if self._on_backoff is not None:
            self._on_backoff(delay)
        return until - now

    def _deadline(self, state: MailboxState) -> float:
        return max(state.backoff_until, self.server_backoff_until)

    async def _wait_deadline(self, state: MailboxState) -> None:
        while (wait := self._deadline(state) - self._clock()) > 0:
            await self._sleep(wait)

    def _exp_delay(self, attempt: int) -> float:
        cap = min(self.limits.max_delay_s, self.limits.base_delay_s * 2 ** (attempt - 1))
        return float(cap * (0.5 + self._rng.random() / 2))  # "equal jitter"

    # -- one attempt ----------------------------------------------------------------------------
    async def _attempt(
        self, state: MailboxState, sync: bool, call: Callable[[], Awaitable[T]]
    ) -> T:
        gates = [state.sync_gate, state.gate] if sync else [state.gate]
        queued_at = self._clock()
        for gate in gates:
            await gate.acquire()
        try:
            while True:
                await self._wait_deadline(state)
                await self.server.gate.acquire()
                await self._rate.acquire()
                # A back-off may have arrived while we queued: never send before it elapsed.
                if self._deadline(state) <= self._clock():
                    break
                self.server.gate.release()
            if self.on_wait is not None:
                self.on_wait(self._clock() - queued_at)
            try:
                return await call()
            finally:
                self.server.gate.release()
        finally:
            for gate in gates:
                gate.release()

    def _recover(self, state: MailboxState) -> None:
        self.server.succeeded()
        state.ok_streak += 1
        if state.ok_streak >= 20 and state.gate.limit < self.limits.per_mailbox:
            state.ok_streak = 0
            state.gate.limit += 1
            state.gate.wake()

    async def run(
        self,
        smtp: str,
        call: Callable[[], Awaitable[T]],
        *,
        sync: bool = False,
        idempotent: bool = False,
        retry_ambiguous: bool = True,
    ) -> T:
        """Run `call` for `smtp` under the limits; retry transient errors within the budget.

        `idempotent` calls (reads) also retry a malformed answer (ProtocolError other than
        the size cap): asking again cannot do harm, whereas a write may already have happened.
        With `retry_ambiguous=False` a failure after sending (AMBIGUOUS_CODES) is raised so
        that the caller can check what happened before writing again.
        """
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            state = self.mailbox(smtp)
            try:
                result = await self._attempt(state, sync, call)
            except ThrottledError as exc:
                state.ok_streak = 0
                wait = self.record_backoff(smtp, exc)
                self._give_up_if(exc, attempt, start, wait)
                continue  # the deadline is waited out inside the next attempt
            except (TransientError, ProtocolError) as exc:
                if isinstance(exc, ProtocolError) and not (idempotent and exc.code != "Size"):
                    raise
                if not retry_ambiguous and exc.code in AMBIGUOUS_CODES:
                    raise
                if exc.code in OVERLOAD_CODES or exc.code.startswith("HTTP5"):
                    self.server.throttled()  # timeouts and 5xx: the server is struggling
                wait = self._exp_delay(attempt)
                self._give_up_if(exc, attempt, start, wait)
                await self._sleep(wait)
                continue
            self._recover(state)
            return result

    def _give_up_if(self, exc: ExchangeError, attempt: int, start: float, wait: float) -> None:
        spent = self._clock() - start
        if attempt >= self.limits.max_attempts or spent + wait > self.limits.budget_s:
            raise exc
