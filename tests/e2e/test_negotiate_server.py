"""An Exchange Server reached with Negotiate (`auth_kind negotiate`), end to end through the
service: SPNEGO tokens in `Authorization: Negotiate ...`, with NTLM inside them.

Kerberos, Negotiate's first choice, is not tested here: it needs a KDC, the service
principal HTTP/host and python-gssapi, none of which the test machines have. Without them
pyspnego's Negotiate offers NTLM alone inside SPNEGO, and that fallback is what runs here:
the simulator's acceptor takes SPNEGO-wrapped NTLM, as an Exchange virtual directory does
(tests/ews/test_ntlm.py checks the mechanism it recorded and the final mechListMIC)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from sync_service.db.enums import MailboxState
from sync_service.db.queue import PassKind
from sync_service.db.store import Server
from sync_service.operator import api, probe
from sync_service.operator.operations import Operations
from sync_service.operator.server_specs import ServerChanges
from sync_service.runtime.backends import open_backend
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness
from tests.e2e.test_ntlm_server import add_user_on

GOOD_ENV = "EXCHANGE_E2E_NEGOTIATE_PASSWORD"
BAD_ENV = "EXCHANGE_E2E_NEGOTIATE_WRONG_PASSWORD"
# What an Exchange virtual directory offers with Windows authentication on and Basic off.
WINDOWS_ONLY = SimulatorConfig(ews_auth_schemes=("Negotiate", "NTLM"))
# A directory whose NTLM provider is removed: only a client that speaks Negotiate gets in.
NEGOTIATE_ONLY = SimulatorConfig(ews_auth_schemes=("Negotiate",))


@pytest.fixture
def passwords() -> Iterator[None]:
    os.environ[GOOD_ENV] = WINDOWS_ONLY.password
    os.environ[BAD_ENV] = "not-" + WINDOWS_ONLY.password
    yield
    for name in (GOOD_ENV, BAD_ENV):
        os.environ.pop(name, None)


async def windows_server(
    h: Harness, name: str, username: str, secret_env: str, auth: str = "negotiate"
) -> Server:
    """Added as an operator adds it (`servers add --auth negotiate`): checked, then stored."""
    changes = ServerChanges(
        backend="ews", url=h.sim.ews_url, auth_kind=auth, username=username, secret_env=secret_env
    )
    return await Operations(h.pool, timedelta(seconds=60)).add_server(name, changes)


@pytest.mark.usefixtures("passwords")
async def test_a_negotiate_server_syncs_both_ways(pool: asyncpg.Pool) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        # As an Exchange virtual directory with Windows authentication: both schemes offered.
        async with h.http.post(h.sim.ews_url, data=b"") as refused:
            offered = refused.headers.getall("WWW-Authenticate")
        assert (refused.status, offered) == (401, ["Negotiate", "NTLM"])
        server = await windows_server(h, "windows", "SIM\\svc-sync", GOOD_ENV)
        assert server.auth_kind == "negotiate"
        user = await add_user_on(h, server, "neg@sim.example")
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
            "VALUES ($1, 'Ada', 'Lovelace')",
            user,
        )
        assert await h.sync("neg@sim.example", PassKind.INITIAL) == Done("ok")
        [item] = await h.items("neg@sim.example", "contacts")
        assert item["fields"]["Surname"] == "Lovelace"

        await h.owner(
            "POST",
            "/mailboxes/neg@sim.example/items",
            {"folder": "contacts", "fields": {"GivenName": "Grace", "Surname": "Hopper"}},
        )
        assert await h.sync("neg@sim.example") == Done("ok")
        names = await pool.fetch(
            "SELECT last_name FROM crm.contacts WHERE owner_id = $1 ORDER BY last_name", user
        )
        assert [r["last_name"] for r in names] == ["Hopper", "Lovelace"]
        mailbox = await h.store.mailbox_by_email("neg@sim.example")
        assert mailbox is not None and mailbox.state == MailboxState.ACTIVE
        assert h.sim.sim.requests["CreateItem"] == 1


@pytest.mark.usefixtures("passwords")
async def test_negotiate_is_what_travels_where_only_negotiate_is_offered(
    pool: asyncpg.Pool,
) -> None:
    """The service sends Negotiate, not NTLM under another name: a server offering only
    Negotiate syncs with `negotiate` and refuses `ntlm`, naming what it offers."""
    async with harness(pool, NEGOTIATE_ONLY) as h:
        negotiate = await windows_server(h, "negotiate", "svc-sync@sim.example", GOOD_ENV)
        ntlm = await windows_server(h, "ntlm", "svc-sync@sim.example", GOOD_ENV, auth="ntlm")
        await add_user_on(h, negotiate, "neg@sim.example")
        await add_user_on(h, ntlm, "plain@sim.example")
        assert await h.sync("neg@sim.example", PassKind.INITIAL) == Done("ok")
        result = await h.sync("plain@sim.example", PassKind.INITIAL)
        assert isinstance(result, Done) and result.failed
        refused = await h.store.mailbox_by_email("plain@sim.example")
        assert refused is not None and refused.state == MailboxState.DISABLED
        assert "does not offer NTLM authentication (it offers: Negotiate)" in (
            refused.state_reason or ""
        )


@pytest.mark.usefixtures("passwords")
async def test_a_wrong_negotiate_password_disables_the_servers_mailboxes_naming_authentication(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        server = await windows_server(h, "windows-bad", "svc-sync@sim.example", BAD_ENV)
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
            assert "refused the Negotiate logon of svc-sync@sim.example" in reason
            assert "unsupported" not in reason.lower() and BAD_ENV not in reason
            assert os.environ[BAD_ENV] not in reason
            reasons.append(reason)
        # One logon was tried, as with NTLM: every failed logon counts toward the lockout.
        assert "not tried again" not in reasons[0] and "not tried again" in reasons[1]
        assert sum(h.sim.sim.requests.values()) == 0


@pytest.mark.usefixtures("passwords")
async def test_servers_test_logs_on_with_negotiate_and_names_a_refused_logon(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, WINDOWS_ONLY) as h:
        good = await windows_server(h, "windows", "SIM\\svc-sync", GOOD_ENV)
        bad = await windows_server(h, "windows-bad", "SIM\\svc-sync", BAD_ENV)
        h.sim.sim.add_mailbox("probe@sim.example")
        settings = e2e_settings()
        steps = await probe.probe(good, "probe@sim.example", settings, open_backend)
        assert [(s.name, s.status) for s in steps] == [(name, "ok") for name in probe.STEPS]
        steps = await probe.probe(bad, "probe@sim.example", settings, open_backend)
        assert [(s.name, s.status) for s in steps][:2] == [
            ("connect", "ok"),
            ("authenticate", "failed"),
        ]
        assert "refused the Negotiate logon of SIM\\svc-sync" in steps[1].detail


def test_the_api_document_offers_negotiate() -> None:
    schemas = api.openapi_document()["components"]["schemas"]
    assert "negotiate" in schemas["NewServerInput"]["properties"]["auth_kind"]["anyOf"][0]["enum"]
