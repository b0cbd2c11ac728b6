"""The CLI's way to its database: open it (the configured or the embedded one), migrate it,
and hand out the `Operations` over it. Every operator command starts here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sync_service.config import Settings
from sync_service.operator.operations import Operations


@asynccontextmanager
async def operations(settings: Settings) -> AsyncIterator[Operations]:
    """Operations on the configured (or embedded) database, migrated."""
    from sync_service.db.embedded import database_url
    from sync_service.db.migrations import run_migrations
    from sync_service.db.pool import create_pool

    async with database_url(settings) as url:
        await run_migrations(url)
        pool = await create_pool(url, 4)
        try:
            lease = timedelta(seconds=settings.limits.job_lease)
            yield Operations(pool, lease, settings.schedule, settings.outbound)
        finally:
            await pool.close()
