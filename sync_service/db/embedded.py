"""A private PostgreSQL (pgserver) for laptops and demos, used when no database URL is given."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sync_service.config import Settings

log = logging.getLogger(__name__)


def _start(data_dir: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); harmless here.
        warnings.simplefilter("ignore")
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        return pgserver.get_server(data_dir.resolve(), cleanup_mode="stop")  # type: ignore[attr-defined]


@asynccontextmanager
async def embedded_postgres(data_dir: Path) -> AsyncIterator[str]:
    """Start (or reuse) the server in `data_dir`, yield its URL, stop it on exit.

    The data directory is kept, so the next start finds the same databases.
    """
    server = await asyncio.to_thread(_start, data_dir)
    log.info("embedded postgres ready data_dir=%s", data_dir)
    try:
        yield str(server.get_uri("postgres"))
    finally:
        await asyncio.to_thread(server.cleanup)
        log.info("embedded postgres stopped data_dir=%s", data_dir)


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """The configured database, or a private embedded one when none is configured."""
    url = settings.database.resolved_url()
    if url:
        yield url
        return
    async with embedded_postgres(settings.database.data_dir) as embedded:
        yield embedded
