"""PostgreSQL restarted, and separately unreachable for 30 s, while passes run.

Both run against a private server (tests/scale/private_pg.py): the shared one is never
restarted. The outage puts a TCP proxy between the replicas and that server and cuts it
(every connection dropped, new ones refused); SCALE_OUTAGE_S sets its length (30 s default).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from tests.scale.db_outage import run_outage
from tests.scale.private_pg import PrivatePostgres, wait_answers
from tests.scale.proxy import CuttableProxy
from tests.service_process import free_port

OUTAGE_S = float(os.environ.get("SCALE_OUTAGE_S", "30"))
# Between the server's stop and its start again: longer than two thirds of the 6 s lease, so
# that every pass in flight meets the database's absence (its lease cannot be renewed, if
# nothing else) and ends as a transient failure.
RESTART_PAUSE_S = 5.0


async def test_database_restart_during_passes(
    private_pg: PrivatePostgres, private_url: str, private_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async def stop() -> None:
        await asyncio.to_thread(private_pg.stop, "fast")

    async def start() -> None:
        await asyncio.to_thread(private_pg.start)
        await wait_answers(private_pg.url())

    figures = await run_outage(
        private_pool, private_url, tmp_path, cut=stop, restore=start, down_s=RESTART_PAUSE_S
    )
    print(figures.line("PostgreSQL restart"))


async def test_database_unreachable_for_30s_during_passes(
    private_pg: PrivatePostgres, private_url: str, private_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    proxy = CuttableProxy(free_port(), private_pg.port)
    await proxy.start()
    through_proxy = private_pg.url(private_url.rsplit("/", 1)[1], port=proxy.listen_port)
    try:
        # A lease shorter than the outage: every lease has run out when the database returns.
        figures = await run_outage(
            private_pool,
            through_proxy,
            tmp_path,
            cut=proxy.cut,
            restore=proxy.restore,
            down_s=OUTAGE_S,
            lease="10s",
        )
    finally:
        await proxy.close()
    print(figures.line(f"PostgreSQL unreachable {OUTAGE_S:g}s"))
