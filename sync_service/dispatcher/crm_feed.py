"""CRM changes -> express jobs: LISTEN crm_changes, with polling because notifications get lost.

The cursor (a change-log position) advances in the same transaction as the jobs it produced,
and only from the value read in that transaction: a leader change neither loses changes (the
new leader starts where the committed cursor is) nor lets a deposed leader move it. Repeats
are harmless anyway, since jobs coalesce per mailbox.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from sync_service.crm.port import CrmPort
from sync_service.db.dispatcher_state import DispatcherState
from sync_service.db.pool import keeps_session_state
from sync_service.db.queue import JobRequest, PassKind, Priority, enqueue_in

log = logging.getLogger("sync_service.dispatcher")
CHANNEL = "crm_changes"
NOTIFY_RETRIES = (0.05, 0.2, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class FeedStep:
    """What one read of the change feed did."""

    cursor: int
    users: int
    mailboxes: tuple[int, ...]
    committed: bool


class CrmFeed:
    def __init__(self, pool: asyncpg.Pool, crm: CrmPort) -> None:
        self.pool = pool
        self.crm = crm
        self._state = DispatcherState(pool)

    async def step(self) -> FeedStep:
        """Turn every final change after the cursor into one express job per mailbox.

        A burst of 10,000 changes for one user is one row of `pending_users`, hence one job.
        """
        upto = await self.crm.current_seq()
        cursor = await self._state.crm_cursor()
        if cursor is None:
            # First leader ever: the mailboxes' own watermarks cover the past.
            await self._state.set_crm_cursor(None, upto)
            return FeedStep(upto, 0, (), True)
        if upto <= cursor:
            return FeedStep(cursor, 0, (), False)
        pending = await self.crm.pending_users(cursor, upto)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await self._state.mailboxes_of_users(conn, list(pending))
            requests = [
                JobRequest(
                    mailbox_id,
                    PassKind.EXPRESS,
                    Priority.PUSH,
                    "crm",
                    pending[user].oldest_changed_at,
                )
                for mailbox_id, user in rows
            ]
            await enqueue_in(conn, requests)
            # Conditional on the cursor read above: if another dispatcher moved it meanwhile,
            # this transaction (jobs included) is rolled back and the step starts over.
            if not await self._state.set_crm_cursor(cursor, upto, conn):
                raise asyncpg.exceptions.SerializationError("the CRM cursor moved under us")
        return FeedStep(upto, len(pending), tuple(r.mailbox_id for r in requests), True)

    async def run(self, poll_seconds: float) -> None:
        """Wake on NOTIFY or every `poll_seconds`, whichever comes first, forever."""
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        async with self.pool.acquire() as listener:
            keeps_session_state(listener)  # UNLISTEN on release
            await listener.add_listener(CHANNEL, on_notify)
            try:
                while True:
                    wake.clear()
                    await self._guarded_step()
                    try:
                        async with asyncio.timeout(poll_seconds):
                            await wake.wait()
                    except TimeoutError:
                        continue
                    # A notified change becomes readable only once every older transaction
                    # of the cluster has ended: read again shortly if it was not there yet.
                    for delay in NOTIFY_RETRIES:
                        if (await self._guarded_step()).mailboxes:
                            break
                        await asyncio.sleep(delay)
            finally:
                await listener.remove_listener(CHANNEL, on_notify)

    async def _guarded_step(self) -> FeedStep:
        try:
            return await self.step()
        except asyncpg.exceptions.SerializationError:
            log.warning("CRM cursor moved by another dispatcher; re-reading")
            return FeedStep(0, 0, (), False)
