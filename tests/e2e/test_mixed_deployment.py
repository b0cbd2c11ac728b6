"""One deployment, one process: an on-premises (EWS) server and an Exchange Online (Graph) one."""

from __future__ import annotations

import os

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.db.store import NewServer
from sync_service.runtime.worker import Done
from tests.e2e.harness import harness

EWS_SECRET_ENV = "EXCHANGE_E2E_EWS_PASSWORD"


async def test_ews_and_graph_servers_sync_in_the_same_process(pool: asyncpg.Pool) -> None:
    async with harness(pool, backend="graph") as h:
        os.environ[EWS_SECRET_ENV] = h.sim.password
        try:
            onprem = await h.store.add_server(
                NewServer(
                    "onprem",
                    "ews",
                    h.sim.ews_url,
                    "basic",
                    username=h.sim.username,
                    secret_env=EWS_SECRET_ENV,
                    ca_file=h.sim.ca_file,
                )
            )
            online_user, _ = await h.add_user("online@sim.example")
            onprem_user = str(
                await pool.fetchval(
                    "INSERT INTO crm.users (email) VALUES ('onprem@sim.example') RETURNING id"
                )
            )
            h.sim.sim.add_mailbox("onprem@sim.example")
            async with pool.acquire() as conn:
                await h.store.upsert_mailbox(
                    conn, onprem_user, "onprem@sim.example", onprem.id, None, ("two-way",) * 3
                )
            for user, name in ((online_user, "Cloud"), (onprem_user, "Basement")):
                await pool.execute(
                    "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, $2)", user, name
                )
            assert await h.sync("online@sim.example", PassKind.INITIAL) == Done("ok")
            assert await h.sync("onprem@sim.example", PassKind.INITIAL) == Done("ok")
            for email, name in (
                ("online@sim.example", "Cloud"),
                ("onprem@sim.example", "Basement"),
            ):
                assert [i["fields"]["Surname"] for i in await h.items(email, "contacts")] == [name]
            # One EWS CreateItem: the on-premises mailbox's; the online one went through Graph.
            assert h.sim.sim.counters()["requests"].get("CreateItem", 0) == 1
            assert await h.links("online@sim.example") == 1
            runs = await pool.fetch(
                "SELECT m.email, r.requests FROM sync.runs r JOIN sync.mailboxes m "
                "ON m.id = r.mailbox_id"
            )
            assert all(r["requests"] > 0 for r in runs) and len(runs) == 2
        finally:
            os.environ.pop(EWS_SECRET_ENV, None)
