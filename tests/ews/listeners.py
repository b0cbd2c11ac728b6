"""Real listeners on 127.0.0.1 for the outbound tests: a raw TCP sink that records every
connection and byte it receives, and an HTTP(S) server answering every request with one
handler (trustme's throwaway CA for TLS)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Sink:
    """What reached a raw TCP listener: connections accepted and bytes read."""

    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        with suppress(TimeoutError, OSError):
            self.received.extend(await asyncio.wait_for(reader.read(65536), 2.0))
        self._open.discard(writer)
        writer.close()

    def hang_up(self) -> None:
        """Close every connection still open (asyncio's server close leaves them)."""
        for writer in self._open:
            writer.close()


@asynccontextmanager
async def sink(host: str = "127.0.0.1") -> AsyncIterator[Sink]:
    found = Sink()
    server = await asyncio.start_server(found.serve, host, 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        async with server:
            yield found
    finally:
        found.hang_up()
        await asyncio.sleep(0)  # let the transports close


@dataclass(frozen=True, slots=True)
class Served:
    url: str  # http(s)://127.0.0.1:PORT
    ca_file: str | None  # the CA to trust when served over TLS
    requests: list[tuple[str, str, bytes]]  # (method, path, body) of every request


def tls_context(tmp: Path) -> tuple[ssl.SSLContext, str]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


@asynccontextmanager
async def http_server(handler: Handler, tmp: Path | None = None) -> AsyncIterator[Served]:
    """Every request, whatever its path, goes to `handler`; TLS when `tmp` is given."""
    requests: list[tuple[str, str, bytes]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        requests.append((request.method, request.path_qs, await request.read()))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    context, ca_file = tls_context(tmp) if tmp is not None else (None, None)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        yield Served(f"{'https' if context else 'http'}://127.0.0.1:{port}", ca_file, requests)
    finally:
        await runner.cleanup()


def redirect_to(location: str, status: int = 307) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return answer
