"""The admin API on a real socket (aiohttp's test server on 127.0.0.1) over a test database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from sync_service.config import load_settings
from sync_service.operator import api

TOKEN = "test-token-5f0c2a9e"


async def _ready() -> list[str]:
    return []


@asynccontextmanager
async def api_client(
    pool: asyncpg.Pool,
    env: dict[str, str] | None = None,
    opener: Any = None,
    ready: api.ReadyCheck = _ready,
) -> AsyncIterator[TestClient[Any, Any]]:
    """A client of the API built with the settings of `env` (plus nothing else from SYNC_)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SYNC_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(env if env is not None else {"SYNC_API_TOKEN": TOKEN})
    try:
        settings = load_settings()
    finally:
        for name in [k for k in os.environ if k.startswith("SYNC_")]:
            del os.environ[name]
        os.environ.update(saved)
    app = api.build_app(ready, pool=pool, settings=settings, opener=opener)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVER = {
    "name": "ex1",
    "backend": "ews",
    "url": "https://ex1.example.com/EWS/Exchange.asmx",
    "username": "svc-sync",
    "secret_env": "EXCHANGE_EX1_PASSWORD",
}
