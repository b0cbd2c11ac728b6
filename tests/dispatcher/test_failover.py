"""Two real replicas share one database; the leader is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg

from ews_client.simulator.testing import running_simulator
from sync_service.db.store import NewServer, Store
from tests.dispatcher.conftest import add_mailboxes
from tests.service_process import ServiceProcess, free_port, service_env

SECRET_ENV = "EXCHANGE_DISPATCHER_SIM_PASSWORD"
USERS = [f"fo{n}@sim.example" for n in range(4)]


class Replica(ServiceProcess):
    """`python -m sync_service run` with the dispatcher role among others."""

    def leader_gauge(self) -> float:
        status, body = self.get("/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith("sync_dispatcher_leader "):
                return float(line.split()[1])
        raise AssertionError("no sync_dispatcher_leader gauge")


async def _contacts(http: aiohttp.ClientSession, admin: str, email: str) -> list[str]:
    async with http.get(f"{admin}/mailboxes/{email}/items") as resp:
        listing = await resp.json()
    return [i["fields"].get("Surname", "") for i in listing["items"] if i["folder"] == "contacts"]


async def _add_contacts(pool: asyncpg.Pool, users: list[str], tag: str) -> list[str]:
    names = [f"{tag}-{n}" for n in range(len(users))]
    for user, name in zip(users, names, strict=True):
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'F', $2)",
            user,
            name,
        )
    return names


async def _wait_for(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_leader_killed_the_other_takes_over_and_nothing_is_lost(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    async with running_simulator() as sim, aiohttp.ClientSession() as http:
        for email in USERS:
            sim.sim.add_mailbox(email)
        server = await Store(pool).add_server(
            NewServer(
                "sim", "ews", sim.ews_url, "basic", username=sim.username, secret_env=SECRET_ENV
            )
        )
        users = [
            r["id"]
            for r in await pool.fetch(
                "INSERT INTO crm.users (email) SELECT unnest($1::text[]) RETURNING id::text", USERS
            )
        ]
        await add_mailboxes(pool, server, USERS, user_ids=users)
        env = {
            SECRET_ENV: sim.password,
            "SYNC_DATABASE_URL": db_url,
            "SYNC_ROLES": "api,engine,dispatcher",
            "SYNC_DISPATCHER_POLL": "0.5",
            "SYNC_JOB_LEASE": "4s",
            "SYNC_LOG_LEVEL": "INFO",
        }
        replicas = {
            name: Replica(
                service_env(**env, SYNC_ENGINE_NAME=name, SYNC_API_BIND=f"127.0.0.1:{free_port()}"),
                tmp_path / f"{name}.log",
            )
            for name in ("replica-a", "replica-b")
        }
        try:
            for replica in replicas.values():
                await asyncio.to_thread(replica.wait_ready, "/healthz", 60)

            async def leader() -> str | None:
                return await pool.fetchval("SELECT leader FROM sync.dispatcher")

            await _wait_for(leader, 20, "a leader")
            first = await leader()
            assert first in replicas
            assert replicas[first].leader_gauge() == 1.0
            other = next(n for n in replicas if n != first)
            assert replicas[other].leader_gauge() == 0.0

            # every mailbox's first (initial) pass, requested by the leader's express sweep
            async def initial_done() -> bool:
                return bool(
                    await pool.fetchval("SELECT bool_and(initial_done) FROM sync.mailboxes")
                )

            t_initial = await _wait_for(initial_done, 30, "initial passes")
            expected = await _add_contacts(pool, users, "before")
            await asyncio.sleep(0.3)
            expected += await _add_contacts(pool, users, "around")
            replicas[first].kill()
            killed_at = time.monotonic()
            expected += await _add_contacts(pool, users, "after")

            async def taken_over() -> bool:
                return await leader() == other and replicas[other].leader_gauge() == 1.0

            await _wait_for(taken_over, 12, "the other replica to lead")
            takeover = time.monotonic() - killed_at
            assert takeover < 10, takeover
            expected += await _add_contacts(pool, users, "later")

            async def all_synced() -> bool:
                found = [s for e in USERS for s in await _contacts(http, sim.admin_url, e)]
                return sorted(found) == sorted(expected)

            t_synced = await _wait_for(all_synced, 30, "every CRM change in the mailboxes")
            found: Counter[str] = Counter()
            for email in USERS:
                found.update(await _contacts(http, sim.admin_url, email))
            assert set(found.values()) == {1}, found  # no duplicate anywhere
            print(
                f"initial {t_initial:.1f}s, takeover after SIGKILL {takeover:.2f}s, "
                f"all synced {t_synced:.1f}s later"
            )
        finally:
            for replica in replicas.values():
                if replica.proc.poll() is None:
                    replica.kill()  # graceful stop is the app's test; this one needs speed
        assert sim.sim.invalid_responses == []
        assert sim.sim.invalid_requests == []
