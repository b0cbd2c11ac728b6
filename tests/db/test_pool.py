"""The pool resets only the connections a borrower marked as holding session state."""

from __future__ import annotations

import asyncpg

from sync_service.db.pool import create_pool, keeps_session_state

SHOW = "SELECT current_setting('application_name')"
SET = "SELECT set_config('application_name', 'left-behind', false)"


async def _borrow_twice(db_url: str, mark: bool) -> tuple[int, int, str]:
    pool = await create_pool(db_url, 1)
    try:
        async with pool.acquire() as conn:
            if mark:
                keeps_session_state(conn)
            first = conn.get_server_pid()
            await conn.execute(SET)
            await conn.execute("SELECT pg_advisory_lock(4242)")
        async with pool.acquire() as conn:
            return first, conn.get_server_pid(), str(await conn.fetchval(SHOW))
    finally:
        await pool.close()


async def test_marked_connection_is_reset_on_release(db_url: str) -> None:
    first, second, name = await _borrow_twice(db_url, mark=True)
    assert first == second  # the same session, borrowed again
    assert name != "left-behind"
    other = await asyncpg.connect(db_url)
    try:  # the session lock was released too
        assert await other.fetchval("SELECT pg_try_advisory_lock(4242)")
    finally:
        await other.close()


async def test_unmarked_connection_skips_the_reset_round_trip(db_url: str) -> None:
    # What the mark is for: without it nothing is sent on release, so the state stays.
    first, second, name = await _borrow_twice(db_url, mark=False)
    assert first == second
    assert name == "left-behind"


async def test_open_transaction_is_rolled_back_on_release(db_url: str) -> None:
    pool = await create_pool(db_url, 1)
    try:
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("CREATE TABLE left_open (x int)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('left_open')") is None
    finally:
        await pool.close()
