"""OAuth client credentials through msal against a local TLS token endpoint (trustme CA)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from ews_client.errors import AuthError
from ews_client.io.auth import OAuthClientCredentials

TENANT = "contoso"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def token_server(tmp_path: Path) -> AsyncIterator[tuple[str, str, list[dict[str, str]]]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    posts: list[dict[str, str]] = []
    base: list[str] = []

    async def openid(request: web.Request) -> web.Response:
        root = f"{base[0]}/{TENANT}"
        return web.json_response(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "issuer": f"{root}/v2.0",
            }
        )

    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        posts.append({k: str(v) for k, v in form.items()})
        if form.get("client_secret") != "s3cret":
            return web.json_response(
                {"error": "invalid_client", "error_description": "bad secret"}, status=401
            )
        n = len(posts)
        return web.json_response({"access_token": f"tok{n}", "token_type": "Bearer",
                                  "expires_in": 3600})  # fmt: skip

    app = web.Application()
    app.router.add_get(f"/{TENANT}/v2.0/.well-known/openid-configuration", openid)
    app.router.add_post(f"/{TENANT}/oauth2/v2.0/token", token)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base.append(f"https://127.0.0.1:{port}")
    try:
        yield f"{base[0]}/{TENANT}", str(ca_file), posts
    finally:
        await runner.cleanup()


async def test_token_is_cached_and_refreshed_before_expiry(
    token_server: tuple[str, str, list[dict[str, str]]],
) -> None:
    authority, ca_file, posts = token_server
    clock = FakeClock()
    auth = OAuthClientCredentials(
        authority=authority, client_id="app", client_secret="s3cret", ca_file=ca_file, clock=clock
    )
    try:
        # msal runs in a thread: were it blocking the loop, this in-loop server could not answer.
        assert await auth.headers() == {"Authorization": "Bearer tok1"}
        assert await auth.headers() == {"Authorization": "Bearer tok1"}
        assert auth.acquisitions == 1 and len(posts) == 1
        assert posts[0]["grant_type"] == "client_credentials"
        assert posts[0]["scope"].startswith("https://outlook.office365.com/.default")
        clock.now = 3600 - 299  # inside the refresh margin (300 s): ask msal again
        await auth.headers()
        assert auth.acquisitions == 2
        assert "s3cret" not in repr(auth)
    finally:
        auth.close()


async def test_refused_secret_is_auth_error(
    token_server: tuple[str, str, list[dict[str, str]]],
) -> None:
    authority, ca_file, _ = token_server
    auth = OAuthClientCredentials(
        authority=authority, client_id="app", client_secret="wrong", ca_file=ca_file
    )
    try:
        with pytest.raises(AuthError) as exc:
            await auth.headers()
    finally:
        auth.close()
    assert exc.value.code == "invalid_client"
    assert "wrong" not in str(exc.value)
