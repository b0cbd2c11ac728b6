"""An in-process service for end-to-end tests: real PostgreSQL, real HTTP to the simulator."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator
from sync_service.config import Settings, load_settings
from sync_service.crm.postgres import PostgresCrm
from sync_service.db.queue import JobQueue, PassKind
from sync_service.db.store import Mailbox, NewServer, Server, Store
from sync_service.runtime.backends import Backends
from sync_service.runtime.runner import PassRunner
from sync_service.runtime.worker import Done, JobResult

SECRET_ENV = "EXCHANGE_E2E_SIM_PASSWORD"
# Where the services of these tests may read secret, certificate and CA files from: the
# simulator's TLS files and pytest's tmp_path both live under the system's temporary directory.
SECRET_DIR = tempfile.gettempdir()


@dataclass
class Harness:
    pool: asyncpg.Pool
    sim: RunningSimulator
    store: Store
    queue: JobQueue
    crm: PostgresCrm
    runner: PassRunner
    server: Server
    http: aiohttp.ClientSession

    async def add_user(self, email: str) -> tuple[str, Mailbox]:
        """A CRM user with a sync-enabled mailbox in the simulator."""
        user_id = str(
            await self.pool.fetchval(
                "INSERT INTO crm.users (email, display_name) VALUES ($1, $1) RETURNING id", email
            )
        )
        if email.lower() not in self.sim.sim.mailboxes:
            self.sim.sim.add_mailbox(email)
        async with self.pool.acquire() as conn:
            mailbox, _ = await self.store.upsert_mailbox(
                conn, user_id, email, self.server.id, None, ("two-way",) * 3
            )
        return user_id, mailbox

    async def sync(
        self,
        email: str,
        kind: PassKind = PassKind.EXPRESS,
        *,
        dry_run: bool = False,
        forced: bool = False,
    ) -> JobResult:
        """Queue one pass for the mailbox, claim it and run it to the end."""
        mailbox = await self.store.mailbox_by_email(email)
        assert mailbox is not None
        await self.settle()
        await self.queue.enqueue(
            mailbox.id, kind, dry_run=dry_run, forced=forced, source="test", priority=100
        )
        jobs = await self.queue.claim("e2e", 1)
        assert jobs and jobs[0].mailbox_id == mailbox.id, "the job was not claimable"
        result = await self.runner(jobs[0])
        failed = isinstance(result, Done) and result.failed
        outcome = result.outcome if isinstance(result, Done) else result.reason
        await self.queue.finish(jobs[0].id, "e2e", failed=failed, outcome=outcome)
        return result

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until every committed CRM change is deliverable.

        The change log hands out a change only once every older transaction of the whole
        PostgreSQL cluster has ended; a shared test server can hold that back for a moment.
        """
        newest = await self.pool.fetchval(
            "SELECT COALESCE(max(xid::text::bigint) + 1, 0) FROM crm.change_log"
        )
        async with asyncio.timeout(timeout):
            while await self.crm.current_seq() < newest:
                await asyncio.sleep(0.05)

    async def owner(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Act as the mailbox owner in Outlook (the simulator's admin API)."""
        async with self.http.request(method, f"{self.sim.admin_url}{path}", json=body) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()

    async def items(self, email: str, folder: str) -> list[dict[str, Any]]:
        listing = await self.owner("GET", f"/mailboxes/{email}/items")
        return [i for i in listing["items"] if i["folder"] == folder]

    async def links(self, email: str) -> int:
        mailbox = await self.store.mailbox_by_email(email)
        assert mailbox is not None
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM sync.item_links WHERE mailbox_id = $1", mailbox.id
            )
        )


def e2e_settings(env: dict[str, str] | None = None) -> Settings:
    """Settings from defaults plus SYNC_SECRET_DIR=SECRET_DIR plus `env`, whatever the
    surrounding environment holds."""
    given = {"SYNC_SECRET_DIR": SECRET_DIR, **(env or {})}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SYNC_")}
    os.environ.update(given)
    try:
        return load_settings()
    finally:
        for key in given:
            os.environ.pop(key, None)
        os.environ.update(saved)


def _new_server(sim: RunningSimulator, backend: str) -> NewServer:
    if backend == "graph":
        return NewServer(
            "sim",
            "graph",
            sim.graph_url,
            "oauth",
            tenant="sim",
            client_id=sim.client_id,
            authority=sim.authority,
            secret_env=SECRET_ENV,
            ca_file=sim.ca_file,
        )
    return NewServer(
        "sim", "ews", sim.ews_url, "basic", username=sim.username, secret_env=SECRET_ENV
    )


@asynccontextmanager
async def harness(
    pool: asyncpg.Pool,
    config: SimulatorConfig | None = None,
    env: dict[str, str] | None = None,
    backend: str = "ews",
) -> AsyncIterator[Harness]:
    """A service for `backend` ("ews" or "graph") against a fresh simulator."""
    async with running_simulator(config, tls=backend == "graph") as sim:
        os.environ[SECRET_ENV] = sim.client_secret if backend == "graph" else sim.password
        settings = e2e_settings(env)
        store = Store(pool)
        server = await store.add_server(_new_server(sim, backend))
        queue = JobQueue(pool, timedelta(seconds=60))
        crm = PostgresCrm(pool)
        tls = ssl.create_default_context(cafile=sim.ca_file) if sim.ca_file else None
        connector = aiohttp.TCPConnector(ssl=tls) if tls else None
        async with (
            Backends(settings) as backends,
            aiohttp.ClientSession(connector=connector) as http,
        ):
            runner = PassRunner(store, queue, backends, crm, settings, "e2e")
            yield Harness(pool, sim, store, queue, crm, runner, server, http)
        assert sim.sim.invalid_responses == []
        # every client body named only what Graph's metadata declares
        assert sim.sim.invalid_requests == [], sim.sim.invalid_requests[:3]
