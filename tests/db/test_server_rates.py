"""A server's rate is stored finite only: the database refuses what the API refuses, so a row
written by SQL cannot make the server listing invalid JSON."""

from __future__ import annotations

import asyncpg
import pytest

INSERT = (
    "INSERT INTO sync.servers (name, backend, url, auth_kind, rate_per_second) "
    "VALUES ($1, 'ews', 'https://ex.example/EWS/Exchange.asmx', 'basic', $2)"
)


@pytest.mark.parametrize("rate", [float("inf"), float("nan")])
async def test_infinite_and_nan_rates_are_refused(pool: asyncpg.Pool, rate: float) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(INSERT, "bad", rate)


async def test_a_large_finite_rate_is_kept(pool: asyncpg.Pool) -> None:
    await pool.execute(INSERT, "fast", 1e6)
    stored = await pool.fetchval("SELECT rate_per_second FROM sync.servers WHERE name = 'fast'")
    assert stored == 1e6
