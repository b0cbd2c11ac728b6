"""A service replica with the dispatcher role wired in.

Until `sync_service/app.py` starts `run_dispatcher` itself for `Role.DISPATCHER`, this is the
process entry that does (`python -m sync_service.dispatcher`); it is otherwise `run_service`.
"""

from __future__ import annotations

import asyncio
import logging

from sync_service.app import (
    Service,
    database_url,
    install_signal_handlers,
    run_migrations,
)
from sync_service.config import Role, Settings
from sync_service.db.pool import create_pool
from sync_service.dispatcher.leader import run_dispatcher

log = logging.getLogger("sync_service")


class DispatchingService(Service):
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(super().run(), name="service")
            if Role.DISPATCHER in self.settings.process.role_set:
                group.create_task(
                    run_dispatcher(self.pool, self.settings, self.stop, name=self.name),
                    name="dispatcher",
                )


async def run_dispatching_service(settings: Settings) -> None:
    async with database_url(settings) as url:
        await run_migrations(url)
        pool = await create_pool(url, settings.database.database_pool_size)
        try:
            service = DispatchingService(settings, pool)
            install_signal_handlers(service.stop)
            log.info("service started", extra={"engine": service.name})
            await service.run()
        finally:
            await pool.close()
