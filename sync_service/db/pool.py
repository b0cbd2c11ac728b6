"""The asyncpg pool: JSON codecs, a bounded size and a reset only where one is needed."""

from __future__ import annotations

import json
from typing import Any, TypeAlias, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# What queries run on: a plain connection or one borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class SessionConnection(asyncpg.Connection):
    """A pooled connection that knows whether a borrower left session state on it.

    asyncpg resets every released connection with a multi-statement query (unlock advisory
    locks, close cursors, UNLISTEN, RESET ALL): one more round trip for every borrow, about
    a fifth of an idle pass's database time. Almost every borrower leaves nothing behind
    (transaction-local settings end with their transaction), so only the few that do (a
    LISTEN, a session advisory lock, a session setting) say so and get the full reset.
    """

    session_state = False

    def keeps_session_state(self) -> None:
        self.session_state = True


def keeps_session_state(conn: Conn) -> None:
    """Mark a borrowed connection for the full reset when it goes back to the pool."""
    # A pool proxy forwards attribute access to its SessionConnection.
    cast(SessionConnection, conn).keeps_session_state()


async def _reset(conn: asyncpg.Connection) -> None:
    # asyncpg has already rolled back an open transaction and dropped Python-side listeners.
    if isinstance(conn, SessionConnection) and conn.session_state:
        conn.session_state = False
        await conn.execute(conn.get_reset_query())


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, size: int = 20) -> asyncpg.Pool:
    """A pool whose connections speak JSON natively."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_reset,
        connection_class=SessionConnection,
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def connect(url: str) -> asyncpg.Connection:
    """A single connection (migrations, the dispatcher's lock, LISTEN)."""
    conn = await asyncpg.connect(url, command_timeout=60)
    await _init_connection(conn)
    return conn
