"""The push manager follows the database: new, disabled and re-configured mailboxes."""

from __future__ import annotations

from contextlib import AsyncExitStack

import asyncpg
import pytest

from ews_client.simulator.testing import running_simulator
from sync_service.dispatcher.push import PushManager
from tests.dispatcher.conftest import add_mailboxes, add_server, make_settings

SECRET_ENV = "EXCHANGE_DISPATCHER_REFRESH_SIM_PASSWORD"


async def test_refresh_subscribes_new_drops_disabled_and_follows_modes(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_simulator() as sim:
        monkeypatch.setenv(SECRET_ENV, sim.password)
        server = await add_server(
            pool, "sim", url=sim.ews_url, username=sim.username, secret_env=SECRET_ENV
        )
        for n in range(4):
            sim.sim.add_mailbox(f"r{n}@sim.example")
        two_way, to_disable, to_change = await add_mailboxes(
            pool, server, ["r0@sim.example", "r1@sim.example", "r2@sim.example"]
        )
        # Exchange-side changes of a CRM-to-Exchange-only mailbox are never read: no stream.
        await add_mailboxes(
            pool, server, ["r3@sim.example"], modes=("crm-to-exchange", "off", "crm-to-exchange")
        )
        hub = sim.sim.hub

        def folders_of(email: str) -> list[int]:
            return [len(s.folder_ids) for s in hub.subscriptions.values() if s.mailbox == email]

        pushes = PushManager(pool, make_settings())
        async with AsyncExitStack() as stack:
            await pushes.refresh(stack)
            assert sorted(s.mailbox for s in hub.subscriptions.values()) == [
                "r0@sim.example",
                "r1@sim.example",
                "r2@sim.example",
            ]
            assert folders_of("r2@sim.example") == [3]
            await pool.execute(
                "UPDATE sync.mailboxes SET state = 'disabled' WHERE id = $1", to_disable
            )
            await pool.execute(
                "UPDATE sync.mailboxes SET calendar_mode = 'off' WHERE id = $1", to_change
            )
            [new] = await add_mailboxes(pool, server, ["r4@sim.example"])
            sim.sim.add_mailbox("r4@sim.example")
            await pushes.refresh(stack)
            assert sorted(s.mailbox for s in hub.subscriptions.values()) == [
                "r0@sim.example",
                "r2@sim.example",
                "r4@sim.example",
            ]
            assert folders_of("r2@sim.example") == [2]  # one subscription, re-made
            assert folders_of("r0@sim.example") == [3]  # untouched
            assert {two_way, new} <= set(pushes.streams[server.id][1].subs)
            await pushes.close()
        assert hub.subscriptions == {}  # freed on the way out
        assert sim.sim.invalid_responses == []
        assert sim.sim.invalid_requests == []
