"""Transport and client retry behaviour over real HTTP against small aiohttp servers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from ews_client.errors import (
    AuthError,
    ItemNotFoundError,
    ProtocolError,
    ThrottledError,
    TransientError,
)
from ews_client.ews.ids import DistinguishedFolder
from ews_client.io.auth import BasicAuth
from ews_client.io.ews import EwsClient
from ews_client.io.throttle import ThrottleLimits
from ews_client.io.transport import Transport, TransportLimits
from ews_client.models import EntityKind, ItemRef
from tests.ews.conftest import response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FOLDER = DistinguishedFolder("contacts", "a@x.org")


@asynccontextmanager
async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/EWS/Exchange.asmx", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/EWS/Exchange.asmx"
    finally:
        await runner.cleanup()


def xml(body: bytes, status: int = 200, **headers: str) -> web.Response:
    return web.Response(body=body, status=status, content_type="text/xml", headers=headers)


async def post(url: str, limits: TransportLimits | None = None, **kw: str) -> bytes:
    async with Transport(url, BasicAuth("svc", "pw"), limits=limits, **kw) as tr:  # type: ignore[arg-type]
        return await tr.post(b"<x/>", "a@x.org")


async def test_headers_auth_and_anchor_mailbox() -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return xml(response("subscribe"))

    async with serve(handler) as url:
        assert await post(url) == response("subscribe")
    assert seen["X-AnchorMailbox"] == "a@x.org"
    assert seen["Authorization"] == "Basic c3ZjOnB3"
    assert seen["Content-Type"].startswith("text/xml")


@pytest.mark.parametrize(
    ("status", "body", "headers", "exc", "code"),
    [
        (401, b"", {}, AuthError, "HTTP401"),
        (503, b"", {"Retry-After": "7"}, ThrottledError, "HTTP503"),
        (500, response("fault_server_busy"), {}, ThrottledError, "ErrorServerBusy"),
        (500, response("fault_impersonation"), {}, Exception, "ErrorImpersonateUserDenied"),
        (500, b"<html>oops</html>", {}, TransientError, "HTTP500"),
        (502, b"bad gateway", {}, TransientError, "HTTP502"),
        (500, response("fault_schema"), {}, ProtocolError, "s:Client"),
        (404, b"", {}, ProtocolError, "HTTP404"),
    ],
)
async def test_status_mapping(
    status: int, body: bytes, headers: dict[str, str], exc: type[Exception], code: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return xml(body, status, **headers)

    async with serve(handler) as url:
        with pytest.raises(exc) as info:
            await post(url)
    assert info.value.code == code  # type: ignore[attr-defined]
    if code == "HTTP503":
        assert info.value.backoff_s == 7.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_body_is_protocol_error(chunked: bool) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return xml(b"<a>" + b"x" * 5000 + b"</a>")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"x" * 1000)
        await resp.write_eof()
        return resp

    async with serve(handler) as url:
        with pytest.raises(ProtocolError) as info:
            await post(url, TransportLimits(max_response_bytes=2000))
    assert info.value.code == "Size"


async def test_truncated_body_and_reset_are_transient() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "5000"})
        await resp.prepare(request)
        await resp.write(b"<partial")
        assert request.transport is not None
        request.transport.close()
        return resp

    async with serve(handler) as url:
        with pytest.raises(TransientError):
            await post(url)


async def test_read_timeout_is_transient() -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return xml(b"")

    async with serve(handler) as url:
        started = time.perf_counter()
        with pytest.raises(TransientError) as info:
            await post(url, TransportLimits(read_timeout_s=0.2))
    assert info.value.code == "Timeout" and time.perf_counter() - started < 1.5


async def test_tls_with_custom_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def handler(request: web.Request) -> web.Response:
        return xml(response("subscribe"))

    async with serve(handler, server_ctx) as url:
        assert await post(url, ca_file=str(ca_file)) == response("subscribe")
        with pytest.raises(TransientError):  # default trust store: verification fails
            await post(url)


def test_only_http_and_https() -> None:
    with pytest.raises(ValueError):
        Transport("ftp://example.org/EWS/Exchange.asmx", BasicAuth("a", "b"))


def test_basic_auth_repr_hides_password() -> None:
    assert "s3cret" not in repr(BasicAuth("svc", "s3cret"))


# -- the client's retry loop against scripted servers ----------------------------------------

Script = list[Callable[[], web.Response]]


async def run_script(
    script: Script, op: Callable[[EwsClient], Awaitable[object]]
) -> tuple[object, list[float], list[float]]:
    """Serve the scripted answers in order; return result, arrival and answer times."""
    arrivals: list[float] = []
    answered: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        resp = script[min(len(arrivals), len(script)) - 1]()
        answered.append(time.monotonic())
        return resp

    async with serve(handler) as url:
        limits = ThrottleLimits(backoff_margin_s=0.0, base_delay_s=0.05)
        async with EwsClient(url, BasicAuth("svc", "pw"), throttle_limits=limits) as client:
            result = await op(client)
    return result, arrivals, answered


def scaled(name: str, old: bytes, new: bytes) -> Callable[[], web.Response]:
    status = 500 if name.startswith("fault") else 200
    return lambda: xml(response(name).replace(old, new), status)


@pytest.mark.parametrize(
    "first",
    [
        scaled("fault_server_busy", b">2500<", b">300<"),
        scaled("server_busy_message", b">1750<", b">300<"),
        lambda: xml(b"", 503, **{"Retry-After": "0.3"}),
    ],
    ids=["fault", "per-message", "503"],
)
async def test_backoff_honoured_from_every_shape(first: Callable[[], web.Response]) -> None:
    script = [first, lambda: xml(response("sync_last"))]
    _, arrivals, answered = await run_script(
        script, lambda c: c.sync_folder_items("a@x.org", FOLDER, None)
    )
    assert len(arrivals) == 2
    assert arrivals[1] - answered[0] >= 0.3


async def test_batch_with_busy_message_is_retried_whole() -> None:
    script = [
        scaled("get_item_task", b">300<", b">50<"),
        lambda: xml(response("get_item_contact")),
    ]
    result, arrivals, _ = await run_script(
        script, lambda c: c.get_items("a@x.org", [ItemRef("A"), ItemRef("B")], EntityKind.TASK)
    )
    assert len(arrivals) == 2
    assert isinstance(result, list) and isinstance(result[1], ItemNotFoundError)


async def test_get_item_halves_batch_on_timeout() -> None:
    sizes: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        n = body.count(b"<t:ItemId ")
        sizes.append(n)
        if n > 10:
            return xml(response("get_item_timeout"))
        msg = (
            b'<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>x</m:MessageText>'
            b"<m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:Items/></m:GetItemResponseMessage>"
        )
        doc = response("get_item_timeout")
        start = doc.index(b"<m:GetItemResponseMessage")
        end = doc.index(b"</m:ResponseMessages>")
        return xml(doc[:start] + msg * n + doc[end:])

    async with serve(handler) as url, EwsClient(url, BasicAuth("s", "p")) as client:
        refs = [ItemRef(f"id{i}") for i in range(45)]
        results = await client.get_items("a@x.org", refs, EntityKind.CONTACT)
    # 45 -> 22 + 23 -> halves again until a batch has at most 10; every item is read once
    assert len(results) == 45 and sizes[0] == 45
    assert sum(n for n in sizes if n <= 10) == 45 and all(n <= 23 for n in sizes[1:])


async def test_request_and_backoff_hooks() -> None:
    calls: list[tuple[str, str]] = []
    backoffs: list[float] = []
    answers = [
        scaled("server_busy_message", b">1750<", b">100<"),
        lambda: xml(response("sync_last")),
    ]

    async def handler(request: web.Request) -> web.Response:
        return answers.pop(0)()

    async with serve(handler) as url:
        client = EwsClient(
            url,
            BasicAuth("s", "p"),
            on_request=lambda op, outcome, secs: calls.append((op, outcome)),
            on_backoff=backoffs.append,
        )
        async with client:
            await client.sync_folder_items("a@x.org", FOLDER, None)
    assert calls == [("SyncFolderItems", "ThrottledError"), ("SyncFolderItems", "ok")]
    assert backoffs == [0.1]


async def test_silent_stream_is_cut_by_the_idle_timeout() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
        await resp.prepare(request)
        await resp.write(response("streaming_events"))
        await asyncio.sleep(5)  # then silence: no keep-alive, no Closed
        return resp

    batches = []
    async with serve(handler) as url, EwsClient(url, BasicAuth("s", "p")) as client:
        started = time.perf_counter()
        with pytest.raises(TransientError):
            async for batch in client.streaming_events(
                ["JABzdWIx"], anchor_mailbox="a@x.org", timeout_minutes=1, idle_timeout_s=0.3
            ):
                batches.append(batch)
    assert len(batches) == 1 and len(batches[0].notifications) == 1
    assert time.perf_counter() - started < 2
