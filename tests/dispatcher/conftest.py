"""Fixtures for the dispatcher: settings without the environment, a server and mailboxes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import time, timedelta

import asyncpg

from sync_service.config import Settings, load_settings
from sync_service.db.store import NewServer, Server, Store


def make_settings(**env: str) -> Settings:
    """Settings from defaults plus `env` (SYNC_ names), ignoring the caller's environment."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SYNC_")}
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


async def add_server(
    pool: asyncpg.Pool,
    name: str = "ex1",
    *,
    url: str = "https://ex1.example/EWS/Exchange.asmx",
    time_zone: str = "UTC",
    express_interval: timedelta = timedelta(minutes=15),
    complete_at: time = time(2, 0),
    username: str = "svc",
    secret_env: str = "EXCHANGE_EX1_PASSWORD",
) -> Server:
    return await Store(pool).add_server(
        NewServer(
            name,
            "ews",
            url,
            "basic",
            username=username,
            secret_env=secret_env,
            time_zone=time_zone,
            express_interval=express_interval,
            complete_at=complete_at,
        )
    )


async def add_mailboxes(
    pool: asyncpg.Pool,
    server: Server,
    emails: Sequence[str],
    *,
    group: str | None = None,
    modes: tuple[str, str, str] = ("two-way", "two-way", "two-way"),
    user_ids: Sequence[str] | None = None,
) -> list[int]:
    """Mailboxes in one batch; CRM user ids default to the address (no CRM user needed)."""
    rows = await pool.fetch(
        "INSERT INTO sync.mailboxes (crm_user_id, email, server_id, server_group, "
        "contacts_mode, calendar_mode, tasks_mode) "
        "SELECT u, e, $3, $4, $5, $6, $7 FROM unnest($1::text[], $2::text[]) AS x (u, e) "
        "RETURNING id",
        list(user_ids or emails),
        [e.lower() for e in emails],
        server.id,
        group,
        *modes,
    )
    return [r["id"] for r in rows]


async def open_jobs(pool: asyncpg.Pool) -> dict[int, tuple[str, str]]:
    """{mailbox id: (kind, source)} of every unfinished job."""
    rows = await pool.fetch(
        "SELECT mailbox_id, kind, source FROM sync.jobs WHERE status IN ('queued', 'running')"
    )
    return {r["mailbox_id"]: (r["kind"], r["source"]) for r in rows}
