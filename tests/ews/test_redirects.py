"""Redirects are never followed: not by the EWS transport (request and stream), not by the
Graph transport, not by msal's token requests. Each redirect is an OutboundRefusedError naming
its target, and the target receives nothing: real servers on 127.0.0.1, a raw TCP sink as the
target. Each test first shows that a client following redirects does reach the sink."""

from __future__ import annotations

import asyncio
import ssl
from contextlib import suppress
from pathlib import Path

import aiohttp
import pytest
import requests
from aiohttp import web

from ews_client.errors import OutboundRefusedError
from ews_client.graph.requests import GraphRequest
from ews_client.io.auth import BasicAuth, OAuthClientCredentials
from ews_client.io.ews import EwsClient
from ews_client.io.graph_transport import GraphTransport
from ews_client.io.transport import Transport
from tests.ews.listeners import Handler, Served, Sink, http_server, redirect_to, sink

SOAP = b"<soap:Envelope>mailbox data</soap:Envelope>"
AUTH = BasicAuth("svc", "pw")


async def _followed_by_aiohttp(origin: Served, target: Sink, ca_file: str | None) -> None:
    """The control: aiohttp's default (allow_redirects) takes the body to the target."""
    async with aiohttp.ClientSession() as session:
        with suppress(aiohttp.ClientError):  # the sink hangs up; it was reached: that counts
            await session.post(origin.url + "/EWS/Exchange.asmx", data=SOAP, ssl=_ssl(ca_file))
    assert target.connections >= 1
    target.connections = 0
    target.received.clear()


def _ssl(ca_file: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


async def test_ews_refuses_a_307_to_another_origin() -> None:
    async with sink() as target:
        elsewhere = f"http://127.0.0.1:{target.port}/EWS/Exchange.asmx"
        async with http_server(redirect_to(elsewhere, 307)) as origin:
            await _followed_by_aiohttp(origin, target, None)
            async with Transport(origin.url + "/EWS/Exchange.asmx", AUTH) as ews:
                with pytest.raises(OutboundRefusedError) as posted:
                    await ews.post(SOAP, "a@x.org")
                with pytest.raises(OutboundRefusedError) as streamed:
                    async for _ in ews.stream(SOAP, "a@x.org", read_timeout_s=5):
                        pass
        for refused in (posted.value, streamed.value):
            assert refused.code == "HTTP307"
            assert elsewhere in str(refused) and "never followed" in str(refused)
        assert [(m, body) for m, _, body in origin.requests[-2:]] == [("POST", SOAP)] * 2
        assert target.connections == 0 and not target.received


async def test_graph_refuses_a_307_to_another_origin() -> None:
    async with sink() as target:
        elsewhere = f"http://127.0.0.1:{target.port}/v1.0/users/a@x.org/contacts"
        async with http_server(redirect_to(elsewhere, 307)) as origin:
            await _followed_by_aiohttp(origin, target, None)
            async with GraphTransport(origin.url + "/v1.0", AUTH) as graph:
                request = GraphRequest("POST", "/users/a@x.org/contacts", {"givenName": "A"})
                with pytest.raises(OutboundRefusedError) as sent:
                    await graph.send(request, "a@x.org")
        assert sent.value.code == "HTTP307" and elsewhere in str(sent.value)
        assert target.connections == 0 and not target.received


async def test_https_to_http_is_refused_by_both_transports(tmp_path: Path) -> None:
    async with sink() as target:
        clear = f"http://127.0.0.1:{target.port}/EWS/Exchange.asmx"
        async with http_server(redirect_to(clear, 301), tmp_path) as origin:
            await _followed_by_aiohttp(origin, target, origin.ca_file)
            url = origin.url + "/EWS/Exchange.asmx"
            async with Transport(url, AUTH, ca_file=origin.ca_file) as ews:
                with pytest.raises(OutboundRefusedError) as posted:
                    await ews.post(SOAP, "a@x.org")
            async with GraphTransport(origin.url + "/v1.0", AUTH, ca_file=origin.ca_file) as g:
                with pytest.raises(OutboundRefusedError) as sent:
                    await g.send(GraphRequest("GET", "/users/a@x.org/contacts"), "a@x.org")
        assert posted.value.code == sent.value.code == "HTTP301"
        assert clear in str(posted.value) and clear in str(sent.value)
        assert target.connections == 0 and not target.received


async def test_a_redirect_is_not_retried_by_the_client() -> None:
    """Not transient: one request, then the error, however many attempts the throttle allows."""
    async with sink() as target:
        elsewhere = f"http://127.0.0.1:{target.port}/"
        async with (
            http_server(redirect_to(elsewhere, 308)) as origin,
            EwsClient(origin.url + "/EWS/Exchange.asmx", AUTH) as client,
        ):
            with pytest.raises(OutboundRefusedError):
                await client.read_marker("a@x.org")
        assert len(origin.requests) == 1 and target.connections == 0


def _token_server(redirect_from: str, location: str) -> Handler:
    """An identity platform that answers `redirect_from` ("discovery" or "token") with a 307."""

    async def answer(request: web.Request) -> web.StreamResponse:
        discovery = request.path.endswith("/openid-configuration")
        if (redirect_from == "discovery") == discovery:
            return web.Response(status=307, headers={"Location": location})
        base = f"{request.scheme}://{request.host}/tenant"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
            }
        )

    return answer


@pytest.mark.parametrize("redirect_from", ["discovery", "token"])
async def test_msal_refuses_a_redirect_from_the_identity_platform(
    tmp_path: Path, redirect_from: str
) -> None:
    async with sink() as target:
        elsewhere = f"https://127.0.0.1:{target.port}/tenant/oauth2/v2.0/token"
        handler = _token_server(redirect_from, elsewhere)
        async with http_server(handler, tmp_path) as origin:
            redirecting = {
                "discovery": "/tenant/v2.0/.well-known/openid-configuration",
                "token": "/tenant/oauth2/v2.0/token",
            }[redirect_from]
            await asyncio.to_thread(_followed_by_requests, origin, redirecting, target)
            auth = OAuthClientCredentials(
                authority=origin.url + "/tenant",
                client_id="app",
                client_secret="s3cret-value",
                ca_file=origin.ca_file,
            )
            try:
                with pytest.raises(OutboundRefusedError) as refused:
                    await auth.headers()
            finally:
                auth.close()
        assert refused.value.code == "HTTP307"
        assert elsewhere in str(refused.value) and "s3cret" not in str(refused.value)
        assert target.connections == 0 and not target.received


def _followed_by_requests(origin: Served, path: str, target: Sink) -> None:
    """The control: a default requests session follows the 307 to the sink."""
    with pytest.raises(requests.RequestException):  # the sink hangs up on the TLS hello
        requests.post(
            origin.url + path,
            data={"a": "b"},
            headers={"Connection": "close"},  # the origin hangs up before the test ends
            verify=origin.ca_file,
            timeout=5,
        )
    assert target.connections >= 1
    target.connections = 0
    target.received.clear()
