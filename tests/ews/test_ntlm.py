"""NTLM and Negotiate over real HTTP against the simulator's EWS endpoint (pyspnego on both
sides): the handshake, the logon bound to its connection, a pool of logged-on connections,
refusals, Negotiate falling back to NTLM, and Extended Protection over TLS."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import spnego
import trustme
from aiohttp import web
from multidict import CIMultiDict

from ews_client.errors import AuthError
from ews_client.ews.ids import DistinguishedFolder
from ews_client.io.auth import BasicAuth
from ews_client.io.ews import EwsClient
from ews_client.io.ntlm import REFUSAL_HOLD_S, WindowsAuth, offered_schemes, server_token
from ews_client.io.transport import TransportLimits
from ews_client.models import EntityKind
from ews_client.simulator.app import LOGON_KEY, make_app
from ews_client.simulator.config import LatencyConfig, SimulatorConfig
from ews_client.simulator.ntlm import LogonRecord, WindowsLogon
from ews_client.simulator.state import SimState
from tests.ews.test_builders import CONTACT

USER = "SIM\\svc-sync"
PASSWORD = SimulatorConfig().password
BOX = "ntlm@sim.example"


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    state: SimState
    logon: WindowsLogon
    ca_file: str | None = None


@asynccontextmanager
async def simulator(
    config: SimulatorConfig | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    ca_file: str | None = None,
    keepalive_s: float = 75.0,
) -> AsyncIterator[Served]:
    """The simulator's app on a free port; `keepalive_s` is how long the server keeps an
    idle connection open (aiohttp's default is 75 s)."""
    state = SimState(config or SimulatorConfig())
    for number in range(4):
        state.add_mailbox(f"ntlm{number}@sim.example")
    state.add_mailbox(BOX)
    app = make_app(state)
    runner = web.AppRunner(app, shutdown_timeout=0.1, keepalive_timeout=keepalive_s)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    scheme = "https" if tls else "http"
    try:
        yield Served(
            f"{scheme}://127.0.0.1:{port}/EWS/Exchange.asmx", state, app[LOGON_KEY], ca_file
        )
    finally:
        await runner.cleanup()


async def sync_calls(client: EwsClient, count: int, mailbox: str = BOX) -> None:
    for _ in range(count):
        await client.sync_changes(mailbox, EntityKind.CONTACT, None)


async def test_ntlm_logs_on_once_and_reuses_the_connection() -> None:
    async with simulator() as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth) as client:
            await sync_calls(client, 12)
            channels = client.transport.logons.channels if client.transport.logons else 0
    assert sim.state.requests["SyncFolderItems"] == 12
    # One negotiate -> challenge -> authenticate on one connection; eleven requests after it
    # without any Authorization header, and none sent before the logon.
    assert (sim.logon.challenges, sim.logon.handshakes, auth.handshakes) == (1, 1, 1)
    assert sim.logon.anonymous == 0 and sim.logon.refused == 0
    assert sim.logon.logons == [LogonRecord("NTLM", "ntlm", USER)]
    assert channels == 1


async def test_a_upn_logs_on_too() -> None:
    auth = WindowsAuth("svc-sync@sim.example", PASSWORD)
    async with simulator() as sim, EwsClient(sim.url, auth) as client:
        await sync_calls(client, 2)
    assert sim.logon.logons == [LogonRecord("NTLM", "ntlm", "svc-sync@sim.example")]


async def test_concurrent_requests_share_a_pool_of_logged_on_connections() -> None:
    config = SimulatorConfig(latency=LatencyConfig(base_s=0.05))
    async with simulator(config) as sim:
        auth = WindowsAuth(USER, PASSWORD)
        limits = TransportLimits(connections=3)
        async with EwsClient(sim.url, auth, transport_limits=limits) as client:
            boxes = [f"ntlm{n % 4}@sim.example" for n in range(9)]
            await asyncio.gather(*(sync_calls(client, 1, box) for box in boxes))
            first_wave = sim.logon.handshakes
            for _ in range(2):
                await asyncio.gather(*(sync_calls(client, 1, box) for box in boxes))
            assert client.transport.logons is not None
            channels = client.transport.logons.channels
    assert sim.state.requests["SyncFolderItems"] == 27
    # One logon per connection, at most the pool's size, and none after the first wave.
    assert 2 <= first_wave <= 3
    assert sim.logon.handshakes == first_wave == channels == auth.handshakes
    assert sim.logon.anonymous == 0


async def test_a_wrong_password_is_an_auth_error_and_nothing_is_served() -> None:
    async with simulator() as sim:
        auth = WindowsAuth(USER, "not-the-password")
        async with EwsClient(sim.url, auth) as client:
            with pytest.raises(AuthError) as caught:
                await sync_calls(client, 1)
    assert caught.value.code == "HTTP401"
    assert "refused the NTLM logon of SIM\\svc-sync" in str(caught.value)
    assert "not-the-password" not in str(caught.value) + repr(auth)
    assert sim.state.requests == {}
    assert (sim.logon.handshakes, sim.logon.refused) == (0, 1)


async def test_a_refused_password_is_not_tried_again_for_a_while() -> None:
    """Every failed logon counts toward the account's lockout: after a refusal the same
    credentials wait REFUSAL_HOLD_S before the server is asked again."""
    now = [0.0]
    async with simulator() as sim:
        auth = WindowsAuth(USER, "not-the-password", clock=lambda: now[0])
        async with EwsClient(sim.url, auth) as client:
            for _ in range(3):
                with pytest.raises(AuthError, match="refused the NTLM logon"):
                    await sync_calls(client, 1)
            assert sim.logon.refused == 1
            with pytest.raises(AuthError, match="not tried again for 15 minutes"):
                await sync_calls(client, 1)
            now[0] = REFUSAL_HOLD_S
            with pytest.raises(AuthError):
                await sync_calls(client, 1)
            assert sim.logon.refused == 2


async def test_negotiate_falls_back_to_ntlm_inside_spnego() -> None:
    """No KDC and no python-gssapi here: pyspnego's Negotiate offers NTLM alone inside
    SPNEGO, the server picks it, and its last token (mechListMIC) is checked on the 200."""
    async with simulator() as sim:
        auth = WindowsAuth(USER, PASSWORD, protocol="negotiate")
        async with EwsClient(sim.url, auth) as client:
            await sync_calls(client, 5)
    assert sim.logon.logons == [LogonRecord("Negotiate", "ntlm", USER)]
    assert (sim.logon.handshakes, auth.handshakes, sim.state.requests["SyncFolderItems"]) == (
        1,
        1,
        5,
    )


async def test_negotiate_with_a_wrong_password_is_an_auth_error() -> None:
    async with simulator() as sim:
        auth = WindowsAuth(USER, "wrong", protocol="negotiate")
        async with EwsClient(sim.url, auth) as client:
            with pytest.raises(AuthError, match="refused the Negotiate logon"):
                await sync_calls(client, 1)
    assert sim.logon.refused == 1 and sim.state.requests == {}


async def test_a_stream_holds_its_own_logged_on_connection() -> None:
    """GetStreamingEvents keeps its channel for the whole stream; the write that makes the
    event logs on another connection of the pool."""
    async with simulator(SimulatorConfig(heartbeat_s=0.2)) as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth) as client:
            sub = await client.subscribe(BOX, [DistinguishedFolder("contacts", BOX)])
            kinds: list[str] = []

            async def listen() -> None:
                stream = client.streaming_events([sub], anchor_mailbox=BOX, timeout_minutes=1)
                async with aclosing(stream) as batches:
                    async for batch in batches:
                        kinds.extend(e.kind for n in batch.notifications for e in n.events)
                        if kinds:
                            return

            async with asyncio.timeout(10):
                listener = asyncio.create_task(listen())
                await asyncio.sleep(0.2)
                await client.create_item(BOX, CONTACT)
                await listener
    assert kinds == ["created"]
    assert sim.logon.handshakes == auth.handshakes == 2
    assert sim.logon.anonymous == 0


async def test_a_connection_closed_by_the_server_logs_on_again_before_the_request() -> None:
    async with simulator(keepalive_s=0.3) as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth) as client:
            await sync_calls(client, 1)
            await asyncio.sleep(0.8)  # the server closes the idle connection
            await sync_calls(client, 1)
    assert sim.logon.handshakes == 2
    # The second request went with the new connection's handshake, never unauthenticated.
    assert sim.logon.anonymous == 0
    assert sim.state.requests["SyncFolderItems"] == 2


async def test_a_logon_the_server_forgot_is_renewed_on_its_401() -> None:
    async with simulator() as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth) as client:
            await sync_calls(client, 1)
            sim.logon.forget()
            await sync_calls(client, 1)
    assert sim.logon.anonymous == 1  # the request the server no longer recognised
    assert sim.logon.handshakes == 2
    assert sim.state.requests["SyncFolderItems"] == 2


async def test_a_server_without_windows_authentication_says_what_it_offers() -> None:
    config = SimulatorConfig(ews_auth_schemes=("Basic",))
    async with simulator(config) as sim, EwsClient(sim.url, WindowsAuth(USER, PASSWORD)) as c:
        with pytest.raises(AuthError, match=r"does not offer NTLM .*it offers: Basic"):
            await sync_calls(c, 1)


async def test_basic_still_works_and_a_401_names_every_scheme() -> None:
    async with simulator() as sim:
        async with EwsClient(sim.url, BasicAuth(SimulatorConfig().username, PASSWORD)) as client:
            await sync_calls(client, 1)
        async with aiohttp.ClientSession() as http, http.post(sim.url, data=b"<x/>") as resp:
            assert resp.status == 401
            assert resp.headers.getall("WWW-Authenticate") == [
                "Negotiate",
                "NTLM",
                'Basic realm="sim"',
            ]
    assert sim.state.requests["SyncFolderItems"] == 1


# -- the simulator's side, driven by pyspnego's client directly over aiohttp -------------------


def one_connection() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


async def leg(
    http: aiohttp.ClientSession, url: str, authorization: str | None
) -> tuple[int, CIMultiDict[str]]:
    headers = {"Authorization": authorization} if authorization else {}
    async with http.post(url, data=b"<x/>", headers=headers) as resp:
        await resp.read()
        return resp.status, CIMultiDict(resp.headers)


def ntlm(token: bytes | None, scheme: str = "NTLM") -> str:
    return f"{scheme} {base64.b64encode(token or b'').decode()}"


async def test_the_logon_belongs_to_its_connection() -> None:
    async with simulator() as sim, one_connection() as first, one_connection() as second:
        context = spnego.client(USER, PASSWORD, protocol="ntlm")
        status, headers = await leg(first, sim.url, ntlm(context.step()))
        challenge = server_token(headers, "NTLM")
        assert status == 401 and challenge
        # The authenticate message on another connection has no challenge to answer.
        status, _ = await leg(second, sim.url, ntlm(context.step(challenge)))
        assert status == 401 and sim.logon.refused == 1
        context = spnego.client(USER, PASSWORD, protocol="ntlm")
        _, headers = await leg(first, sim.url, ntlm(context.step()))
        status, _ = await leg(first, sim.url, ntlm(context.step(server_token(headers, "NTLM"))))
        assert status != 401 and sim.logon.handshakes == 1
        # Later requests on the logged-on connection need no header; another connection does.
        assert (await leg(first, sim.url, None))[0] != 401
        assert (await leg(second, sim.url, None))[0] == 401


async def test_the_simulator_sends_spnego_s_last_token_with_the_answer() -> None:
    async with simulator() as sim, one_connection() as http:
        context = spnego.client(USER, PASSWORD, protocol="negotiate")
        _, headers = await leg(http, sim.url, ntlm(context.step(), "Negotiate"))
        answer = context.step(server_token(headers, "Negotiate"))
        status, headers = await leg(http, sim.url, ntlm(answer, "Negotiate"))
        final = server_token(headers, "Negotiate")
        assert status != 401 and final and not context.complete
        context.step(final)  # the server's mechListMIC verifies
        assert context.complete


# -- Extended Protection: the NTLM logon carries the TLS channel binding ------------------------


@dataclass(frozen=True, slots=True)
class Tls:
    context: ssl.SSLContext  # the server's
    certificate: str  # the PEM it serves
    ca_file: str  # what clients trust


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(context, cert.cert_chain_pems[0].bytes().decode("ascii"), str(ca_file))


async def test_extended_protection_needs_the_channel_binding(tls: Tls) -> None:
    config = SimulatorConfig(extended_protection_cert=tls.certificate)
    async with simulator(config, tls=tls.context, ca_file=tls.ca_file) as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth, ca_file=tls.ca_file) as client:
            await sync_calls(client, 2)
        assert sim.logon.handshakes == 1 and sim.logon.refused == 0
        # The same logon without the binding, as a client unaware of Extended Protection.
        trusted = ssl.create_default_context(cafile=tls.ca_file)
        connector = aiohttp.TCPConnector(limit=1, ssl=trusted)
        async with aiohttp.ClientSession(connector=connector) as http:
            bare = spnego.client(USER, PASSWORD, protocol="ntlm")
            _, headers = await leg(http, sim.url, ntlm(bare.step()))
            status, _ = await leg(http, sim.url, ntlm(bare.step(server_token(headers, "NTLM"))))
        assert status == 401 and sim.logon.refused == 1


async def test_without_extended_protection_tls_needs_no_binding(tls: Tls) -> None:
    async with simulator(tls=tls.context, ca_file=tls.ca_file) as sim:
        auth = WindowsAuth(USER, PASSWORD)
        async with EwsClient(sim.url, auth, ca_file=tls.ca_file) as client:
            await sync_calls(client, 1)
    assert sim.logon.handshakes == 1


# -- pure pieces ------------------------------------------------------------------------------


def test_challenges_are_read_from_separate_or_combined_headers() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("WWW-Authenticate", 'Basic realm="x"')
    headers.add("WWW-Authenticate", "Negotiate, NTLM TlRMTVNTUAAC")
    assert server_token(headers, "ntlm") == b"NTLMSSP\x00\x02"
    assert server_token(headers, "Negotiate") == b""
    assert server_token(headers, "Kerberos") is None
    assert offered_schemes(headers) == ["Basic", "Negotiate", "NTLM"]


def test_windows_auth_needs_a_user_and_hides_the_password() -> None:
    with pytest.raises(ValueError, match="DOMAIN"):
        WindowsAuth(" ", "pw")
    assert "s3cret" not in repr(WindowsAuth(USER, "s3cret"))


# -- a client nobody here wrote ---------------------------------------------------------------


async def test_exchangelib_logs_on_to_the_simulator_with_ntlm() -> None:
    """exchangelib (requests-ntlm underneath) logs on with NTLM and reads a folder: the
    simulator's side speaks the protocol as another implementation expects it."""
    from exchangelib import (
        IMPERSONATION,
        NTLM,
        Account,
        Configuration,
        Credentials,
        Version,
        close_connections,
    )
    from exchangelib.version import EXCHANGE_2016

    def count_contacts(url: str) -> int:
        config = Configuration(
            service_endpoint=url,
            credentials=Credentials(USER, PASSWORD),
            auth_type=NTLM,
            version=Version(build=EXCHANGE_2016),
        )
        account = Account(BOX, config=config, autodiscover=False, access_type=IMPERSONATION)
        return int(account.contacts.all().count())

    async with simulator() as sim:
        try:
            assert await asyncio.to_thread(count_contacts, sim.url) == 0
        finally:
            await asyncio.to_thread(close_connections)
    assert sim.logon.logons and {r.principal for r in sim.logon.logons} == {USER}
    assert sim.logon.refused == 0 and sum(sim.state.requests.values()) >= 1
