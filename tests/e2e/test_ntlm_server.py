"""An Exchange Server reached with NTLM, end to end through the service: a simulator that
offers Windows authentication only (no Basic), so every request must log on with NTLM."""

from __future__ import annotations

import os
from collections.abc import Iterator

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from sync_service.db.enums import MailboxState
from sync_service.db.queue import PassKind
from sync_service.db.store import NewServer, Server
from sync_service.operator import probe
from sync_service.runtime.backends import open_backend
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness

GOOD_ENV = "EXCHANGE_E2E_NTLM_PASSWORD"
BAD_ENV = "EXCHANGE_E2E_NTLM_WRONG_PASSWORD"
WINDOWS_ONLY = SimulatorConfig(ews_auth_schemes=("Negotiate", "NTLM"))


@pytest.fixture
def passwords() -> Iterator[None]:
    os.environ[GOOD_ENV] = WINDOWS_ONLY.password
    os.environ[BAD_ENV] = "not-" + WINDOWS_ONLY.password
    yield
    for name in (GOOD_ENV, BAD_ENV):
        os.environ.pop(name, None)


async def ntlm_server(h: Harness, name: str, username: str, secret_env: str) -> Server:
    return await h.store.add_server(
        NewServer(name, "ews", h.sim.ews_url, "ntlm", username=username, secret_env=secret_env)
    )


async def add_user_on(h: Harness, server: Server, email: str) -> str:
    user = str(
        await h.pool.fetchval(
            "INSERT INTO crm.users (email, display_name) VALUES ($1, $1) RETURNING id", email
        )
    )
    h.sim.sim.add_mailbox(email)
    async with h.pool.acquire() as conn:
        await h.store.upsert_mailbox(conn, user, email, server.id, None, ("two-way",) * 3)
    return user


@pytest.mark.usefixtures("passwords")
async def test_an_ntlm_server_syncs_both_ways(pool: asyncpg.Pool) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        server = await ntlm_server(h, "windows", "SIM\\svc-sync", GOOD_ENV)
        user = await add_user_on(h, server, "win@sim.example")
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
            "VALUES ($1, 'Ada', 'Lovelace')",
            user,
        )
        assert await h.sync("win@sim.example", PassKind.INITIAL) == Done("ok")
        [item] = await h.items("win@sim.example", "contacts")
        assert item["fields"]["Surname"] == "Lovelace"

        await h.owner(
            "POST",
            "/mailboxes/win@sim.example/items",
            {"folder": "contacts", "fields": {"GivenName": "Grace", "Surname": "Hopper"}},
        )
        assert await h.sync("win@sim.example") == Done("ok")
        names = await pool.fetch(
            "SELECT last_name FROM crm.contacts WHERE owner_id = $1 ORDER BY last_name", user
        )
        assert [r["last_name"] for r in names] == ["Hopper", "Lovelace"]
        mailbox = await h.store.mailbox_by_email("win@sim.example")
        assert mailbox is not None and mailbox.state == MailboxState.ACTIVE
        assert h.sim.sim.requests["CreateItem"] == 1


@pytest.mark.usefixtures("passwords")
async def test_a_wrong_ntlm_password_disables_the_servers_mailboxes_naming_authentication(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        server = await ntlm_server(h, "windows-bad", "svc-sync@sim.example", BAD_ENV)
        emails = ("one@sim.example", "two@sim.example")
        for email in emails:
            await add_user_on(h, server, email)
        reasons = []
        for email in emails:
            result = await h.sync(email, PassKind.INITIAL)
            assert isinstance(result, Done) and result.failed, result
            mailbox = await h.store.mailbox_by_email(email)
            assert mailbox is not None and mailbox.state == MailboxState.DISABLED
            reason = mailbox.state_reason or ""
            assert reason.startswith("AuthError: "), reason
            assert "refused the NTLM logon of svc-sync@sim.example" in reason
            assert "unsupported" not in reason.lower() and BAD_ENV not in reason
            assert os.environ[BAD_ENV] not in reason
            reasons.append(reason)
        # One logon was tried: the second mailbox's pass did not ask the server again, so
        # that a server of many mailboxes does not lock the service account out.
        assert "not tried again" not in reasons[0] and "not tried again" in reasons[1]
        # Nothing was served: every request stopped at the logon.
        assert sum(h.sim.sim.requests.values()) == 0


@pytest.mark.usefixtures("passwords")
async def test_servers_test_logs_on_with_ntlm_and_names_a_refused_logon(pool: asyncpg.Pool) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        good = await ntlm_server(h, "windows", "SIM\\svc-sync", GOOD_ENV)
        bad = await ntlm_server(h, "windows-bad", "SIM\\svc-sync", BAD_ENV)
        h.sim.sim.add_mailbox("probe@sim.example")
        settings = e2e_settings()
        steps = await probe.probe(good, "probe@sim.example", settings, open_backend)
        assert [(s.name, s.status) for s in steps] == [(name, "ok") for name in probe.STEPS]
        steps = await probe.probe(bad, "probe@sim.example", settings, open_backend)
        assert [(s.name, s.status) for s in steps][:3] == [
            ("connect", "ok"),
            ("authenticate", "failed"),
            ("impersonate", "skipped"),
        ]
        assert "refused the NTLM logon of SIM\\svc-sync" in steps[1].detail
