"""Retention of the CRM change log: a change is forgotten only once it is older than
SYNC_RETENTION_DAYS and every reader (each mailbox's watermark, the dispatcher's feed cursor)
is past it; the purge goes in short batches that no CRM writer waits for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from sync_service.crm.postgres import PostgresCrm
from sync_service.db.crm_tables import CrmTables
from sync_service.dispatcher import sweeps
from sync_service.dispatcher.sweeps import Sweeper
from tests.dispatcher.conftest import add_mailboxes, add_server, make_settings

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=30)


async def _log(pool: asyncpg.Pool, xid: int, at: datetime, count: int = 1) -> None:
    """Change-log rows as if written by transaction `xid` at `at` (position xid + 1)."""
    await pool.execute(
        "INSERT INTO crm.change_log (entity, record_id, op, user_ids, changed_at, xid) "
        "SELECT 'contact', gen_random_uuid(), 'update', '{}', $2, $1::bigint::text::xid8 "
        "FROM generate_series(1, $3)",
        xid, at, count,
    )  # fmt: skip


async def _xids(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch("SELECT DISTINCT xid::text::bigint AS x FROM crm.change_log ORDER BY 1")
    return [r["x"] for r in rows]


async def _watermark(pool: asyncpg.Pool, mailbox: int, position: int) -> None:
    await pool.execute(
        "INSERT INTO sync.crm_watermarks (mailbox_id, entity, last_seq) VALUES ($1, 'contact', $2) "
        "ON CONFLICT (mailbox_id, entity) DO UPDATE SET last_seq = EXCLUDED.last_seq",
        mailbox, position,
    )  # fmt: skip


async def test_only_old_changes_every_reader_is_past_are_purged(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM crm.change_log")
    server = await add_server(pool)
    ahead, behind = await add_mailboxes(pool, server, ["a@x.example", "b@x.example"])
    await _watermark(pool, ahead, 26)
    await _watermark(pool, behind, 16)  # this mailbox has not read transaction 20 yet
    await pool.execute("UPDATE sync.dispatcher SET crm_cursor = 41")
    await _log(pool, 10, OLD)
    await _log(pool, 12, NOW)  # read by everyone, but younger than the retention
    await _log(pool, 20, OLD)
    await _log(pool, 30, OLD)
    sweeper = Sweeper(pool, make_settings(SYNC_RETENTION_DAYS="14"), crm=PostgresCrm(pool))
    assert (await sweeper.retention(NOW, force=True))["change_log"] == 1
    assert await _xids(pool) == [12, 20, 30]
    await _watermark(pool, behind, 31)  # it caught up; the cursor is past 30 too
    assert (await sweeper.retention(NOW, force=True))["change_log"] == 1
    assert await _xids(pool) == [12, 30]  # 30 is read by "ahead" (at 26) still


async def test_the_feed_cursor_keeps_what_it_has_not_read(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM crm.change_log")
    await pool.execute("UPDATE sync.dispatcher SET crm_cursor = 11")
    await _log(pool, 10, OLD)
    await _log(pool, 11, OLD)
    sweeper = Sweeper(pool, make_settings(), crm=PostgresCrm(pool))
    assert (await sweeper.retention(NOW, force=True))["change_log"] == 1
    assert await _xids(pool) == [11]


async def test_a_big_purge_goes_in_batches(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM crm.change_log")
    await pool.execute("UPDATE sync.dispatcher SET crm_cursor = NULL")
    await _log(pool, 7, OLD, count=2_500)
    batches: list[int] = []
    crm = PostgresCrm(pool)
    purge = crm.purge_changes

    async def counted(below: int, before: datetime, limit: int) -> int:
        batches.append(n := await purge(below, before, limit))
        return n

    crm.purge_changes = counted  # type: ignore[method-assign]
    sweeps.LOG_PURGE_BATCH, saved = 1_000, sweeps.LOG_PURGE_BATCH
    try:
        result = await Sweeper(pool, make_settings(), crm=crm).retention(NOW, force=True)
    finally:
        sweeps.LOG_PURGE_BATCH = saved
    assert result["change_log"] == 2_500 and batches == [1_000, 1_000, 500]
    assert await _xids(pool) == []


async def test_a_crm_writer_never_waits_for_a_purge(pool: asyncpg.Pool) -> None:
    """A purge batch left open (the worst case: its transaction not yet committed) holds no
    lock a CRM write needs: the write goes through with a lock timeout of 100 ms."""
    await pool.execute("DELETE FROM crm.change_log")
    await _log(pool, 5, OLD, count=100)
    user = await pool.fetchval("INSERT INTO crm.users (email) VALUES ('w@x.example') RETURNING id")
    async with pool.acquire() as purger, purger.transaction():
        assert await CrmTables().purge_log(purger, 1_000_000, NOW, 1_000) == 100
        async with pool.acquire() as writer:
            await writer.execute("SET lock_timeout = '100ms'")
            await writer.execute(
                "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Writer')", user
            )
            await writer.execute("RESET lock_timeout")
        assert purger.is_in_transaction()  # the purge was still uncommitted meanwhile
    assert await pool.fetchval("SELECT count(*) FROM crm.contacts WHERE last_name = 'Writer'") == 1
