"""A private PostgreSQL per test (tests/scale/private_pg.py): these tests restart it, cut it
off, or give it five replicas' connections, none of which the shared server may suffer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from sync_service.db.pool import create_pool
from tests.scale.private_pg import PrivatePostgres, create_database
from tests.service_process import free_port


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(free_port())
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def private_url(private_pg: PrivatePostgres) -> str:
    return await create_database(private_pg, f"scale_{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def private_pool(private_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(private_url, size=10)
    yield pool
    await pool.close()
