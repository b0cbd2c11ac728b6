"""The asyncpg pool: JSON codecs and a bounded size, nothing else."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# What queries run on: a plain connection or one borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, size: int = 20) -> asyncpg.Pool:
    """A pool whose connections speak JSON natively."""
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


async def connect(url: str) -> asyncpg.Connection:
    """A single connection (migrations, the dispatcher's lock, LISTEN)."""
    conn = await asyncpg.connect(url, command_timeout=60)
    await _init_connection(conn)
    return conn
