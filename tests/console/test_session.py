"""Session cookies: what a forged, altered, expired or foreign one gets (nothing), and the
Secure flag when the console is reached over TLS (a real TLS socket, trustme's CA)."""

from __future__ import annotations

import os
import re
import ssl

import aiohttp
import pytest
import trustme
from aiohttp import web

from sync_service import console
from sync_service.config import load_settings
from sync_service.console import session as sessions
from sync_service.operator import api
from tests.console.conftest import run_apart

KEY = sessions.session_key(b"the-token")


def test_a_session_round_trips_and_expires() -> None:
    session = sessions.new_session(now=1000.0)
    value = sessions.encode(session, KEY)
    assert sessions.decode(value, KEY, now=1001.0) == session
    assert sessions.decode(value, KEY, now=1000.0 + sessions.SESSION_TTL) is None


def test_an_altered_or_foreign_cookie_is_no_session() -> None:
    value = sessions.encode(sessions.new_session(now=1000.0), KEY)
    version, body, signature = value.split(".")
    longer = sessions.encode(sessions.Session("sid", "csrf", 10**10), b"another key")
    assert sessions.decode(f"{version}.{longer.split('.')[1]}.{signature}", KEY, 1001.0) is None
    assert sessions.decode(longer, KEY, 1001.0) is None  # signed under another token's key
    assert sessions.decode(value.replace("v1.", "v2.", 1), KEY, 1001.0) is None
    for garbage in ("", "v1", "v1..", "v1.e30.", "v1.%%%.%%%", f"{version}.{body}.é"):
        assert sessions.decode(garbage, KEY, 1001.0) is None
    assert sessions.session_key(b"the-token") != sessions.session_key(b"the-token2")


def test_csrf_and_nonce_need_the_exact_value() -> None:
    session = sessions.new_session(now=0)
    assert sessions.csrf_matches(session, session.csrf)
    assert not sessions.csrf_matches(session, None)
    assert not sessions.csrf_matches(session, "")
    assert not sessions.csrf_matches(session, session.csrf + "x")
    assert sessions.nonce_matches("abc", "abc")
    assert not sessions.nonce_matches(None, "abc") and not sessions.nonce_matches("abc", "")


def test_a_signed_out_session_is_remembered_until_it_expires() -> None:
    now = [1000.0]
    revoked = sessions.Revoked(clock=lambda: now[0])
    gone, other = sessions.Session("a", "x", 2000), sessions.Session("b", "y", 5000)
    revoked.add(gone)
    assert gone in revoked and other not in revoked
    now[0] = 2500.0
    revoked.add(other)  # adding forgets the expired
    assert gone not in revoked and other in revoked


def test_over_tls_the_session_cookie_is_secure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API app (no database: sign-in needs none) served over TLS on 127.0.0.1; run apart
    from this thread, where the browser tests' Playwright keeps an event loop running."""
    for name in [n for n in os.environ if n.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_API_TOKEN", "tls-token")
    cookie = run_apart(_sign_in_over_tls)
    assert re.search(r"sync_console=v1\.", cookie)
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/console"):
        assert flag in cookie


async def _ready() -> list[str]:
    return []


async def _sign_in_over_tls() -> str:
    """The Set-Cookie of a sign-in over TLS (the sign-in form's cookie is Secure too)."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    app = api.build_app(_ready, settings=load_settings())
    console.mount(app)  # as process/app.py does
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"https://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address such as 127.0.0.1
    try:
        connector = aiohttp.TCPConnector(ssl=client_tls)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
            async with http.get(f"{base}/console/sign-in") as resp:
                html = await resp.text()
                assert "Secure" in resp.headers["Set-Cookie"]
            match = re.search(r'name="nonce" value="([^"]+)"', html)
            assert match
            form = {"nonce": match.group(1), "token": "tls-token", "next": "/console/servers"}
            post = http.post(f"{base}/console/sign-in", data=form, allow_redirects=False)
            async with post as resp:
                assert resp.status == 303
                assert resp.headers["Location"] == "/console/servers"
                return resp.headers["Set-Cookie"]
    finally:
        await runner.cleanup()
