"""HTTP for one EWS server: one aiohttp session, pool limits, timeouts, TLS, a size cap.

Foreign exceptions go through the shared table in `failures.py` (one rule for every
transport); HTTP statuses are mapped here: 5xx -> TransientError, 401 -> AuthError, 503 ->
ThrottledError with Retry-After, a SOAP fault on 500 -> its mapped ResponseCode class.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp

from ews_client.errors import (
    AuthError,
    ProtocolError,
    ThrottledError,
    TransientError,
)
from ews_client.ews.soap import body_child
from ews_client.io.auth import Auth
from ews_client.io.failures import raise_translated


@dataclass(frozen=True, slots=True)
class TransportLimits:
    connections: int = 100  # open sockets to the server, all mailboxes together
    keepalive_s: float = 30.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0  # per request, whole answer
    max_response_bytes: int = 32 * 1024 * 1024


def _ssl_context(url: str, ca_file: str | None) -> ssl.SSLContext | bool:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "http":
        return False  # plain HTTP only because the URL says so explicitly
    if scheme != "https":
        raise ValueError(f"server URL must be https:// (or explicit http://): {url!r}")
    return ssl.create_default_context(cafile=ca_file)


class HttpSession:
    """One aiohttp session per server: pool limits, keep-alive, TLS verification on.

    Shared by the EWS and Graph transports; use as an async context manager.
    """

    def __init__(
        self,
        url: str,
        auth: Auth,
        limits: TransportLimits | None,
        ca_file: str | None,
        user_agent: str,
    ) -> None:
        self.auth = auth
        self.limits = limits or TransportLimits()
        self._ssl = _ssl_context(url, ca_file)
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limits.connections,
                keepalive_timeout=self.limits.keepalive_s,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self.limits.max_response_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise ProtocolError(
                f"answer of {resp.content_length} bytes exceeds the cap", code="Size"
            )
        chunks = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            chunks.extend(chunk)
            if len(chunks) > cap:
                raise ProtocolError(f"answer exceeds the {cap}-byte cap", code="Size")
        return bytes(chunks)


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0  # an HTTP-date: fall back to our own exponential delay


class Transport(HttpSession):
    """POSTs SOAP bodies to one EWS endpoint. Use as an async context manager."""

    def __init__(
        self,
        url: str,
        auth: Auth,
        *,
        limits: TransportLimits | None = None,
        ca_file: str | None = None,
        user_agent: str = "crm-exchange-sync/0.1",
    ) -> None:
        super().__init__(url, auth, limits, ca_file, user_agent)
        self.url = url

    async def _headers(self, mailbox: str | None) -> dict[str, str]:
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "Accept": "text/xml",
            "User-Agent": self._user_agent,
            **await self.auth.headers(),
        }
        if mailbox:
            headers["X-AnchorMailbox"] = mailbox  # ews_client/PROTOCOL_NOTES.md, "EWS headers"
        return headers

    def _timeout(self, read_s: float | None, idle_s: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=read_s or self.limits.read_timeout_s,
            sock_connect=self.limits.connect_timeout_s,
            sock_read=idle_s,
        )

    async def post(self, body: bytes, mailbox: str | None) -> bytes:
        """One request/response; returns the body of a 200 answer."""
        if self._session is None:
            raise RuntimeError("Transport is not open")
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers=await self._headers(mailbox),
                timeout=self._timeout(None),
            ) as resp:
                data = await self._read_capped(resp)
                return self._check(resp, data)
        except Exception as exc:
            raise_translated(exc, "request")

    def _check(self, resp: aiohttp.ClientResponse, data: bytes) -> bytes:
        status = resp.status
        if status == 200:
            return data
        if status == 401:
            self.auth.invalidate()
            raise AuthError("the server refused our credentials (HTTP 401)", code="HTTP401")
        if status == 503:
            backoff = _retry_after(resp.headers.get("Retry-After"))
            raise ThrottledError("server unavailable (HTTP 503)", code="HTTP503", backoff_s=backoff)
        if status == 500 and data.lstrip().startswith(b"<"):
            # A SOAP fault: raise its mapped error (ErrorServerBusy with its back-off, ...).
            try:
                body_child(data)
            except ProtocolError as exc:
                if exc.code:  # a real fault without an EWS code (schema validation)
                    raise
        if status >= 500:
            raise TransientError(f"server error (HTTP {status})", code=f"HTTP{status}")
        raise ProtocolError(f"unexpected HTTP {status}", code=f"HTTP{status}")

    async def stream(
        self,
        body: bytes,
        mailbox: str | None,
        *,
        read_timeout_s: float,
        idle_timeout_s: float | None = None,
    ) -> AsyncIterator[bytes]:
        """A long-lived POST (GetStreamingEvents): yields body chunks as they arrive.

        `idle_timeout_s` bounds the silence between chunks (a dead connection that sends no
        keep-alive is noticed), `read_timeout_s` the whole connection."""
        if self._session is None:
            raise RuntimeError("Transport is not open")
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers=await self._headers(mailbox),
                timeout=self._timeout(read_timeout_s, idle_timeout_s),
            ) as resp:
                if resp.status != 200:
                    self._check(resp, await self._read_capped(resp))
                async for chunk in resp.content.iter_any():
                    yield chunk
        except Exception as exc:
            raise_translated(exc, "stream")
