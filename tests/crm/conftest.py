"""Fixtures for the bundled CRM: the adapter on a fresh database and three CRM users."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import pytest

from sync_service.crm.postgres import PostgresCrm


@dataclass(frozen=True)
class Users:
    alice: str
    bob: str
    carol: str


@pytest.fixture
async def crm(pool: asyncpg.Pool) -> PostgresCrm:
    return PostgresCrm(pool)


@pytest.fixture
async def users(pool: asyncpg.Pool) -> Users:
    rows = await pool.fetch(
        "INSERT INTO crm.users (email, display_name) "
        "SELECT e, initcap(split_part(e, '@', 1)) FROM unnest($1::text[]) AS e RETURNING id, email",
        ["alice@example.com", "bob@example.com", "carol@example.com"],
    )
    ids = {r["email"].split("@")[0]: str(r["id"]) for r in rows}
    return Users(**ids)
