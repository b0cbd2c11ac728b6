"""HTTP for one EWS server: one aiohttp session, pool limits, timeouts, TLS, a size cap; for
an NTLM/Negotiate server, logged-on connections of its own (`ntlm.py`).

Foreign exceptions go through the shared table in `failures.py` (one rule for every
transport); HTTP statuses are mapped here: 5xx -> TransientError, 401 -> AuthError, 503 ->
ThrottledError with Retry-After, a SOAP fault on 500 -> its mapped ResponseCode class, a
redirect -> OutboundRefusedError (never followed). Every connection goes through the outbound
policy (`outbound.py`): literal addresses before the request, hostnames when resolved.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from ews_client.errors import (
    AuthError,
    OutboundRefusedError,
    ProtocolError,
    ThrottledError,
    TransientError,
)
from ews_client.ews.soap import body_child
from ews_client.io.auth import Auth
from ews_client.io.failures import raise_translated
from ews_client.io.ntlm import AuthenticatedConnections, WindowsAuth
from ews_client.io.outbound import OutboundPolicy

# The statuses aiohttp would follow. We never do: a 307/308 would re-send the request body (SOAP
# with mailbox data, or a token request) to wherever the Location points, and an https -> http
# redirect would send it in clear (ews_client/PROTOCOL_NOTES.md, "Outbound").
REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


def refuse_redirect(resp: aiohttp.ClientResponse) -> None:
    """Raise OutboundRefusedError naming the target when `resp` is a redirect."""
    if resp.status in REDIRECTS:
        target = resp.headers.get("Location", "")[:200]
        raise OutboundRefusedError(
            f"redirect refused: the server answered HTTP {resp.status} to {target!r}; "
            "redirects are never followed (give the server's final URL instead)",
            code=f"HTTP{resp.status}",
        )


class HttpSession:
    """One aiohttp session per server: pool limits, keep-alive, TLS verification on, the
    outbound policy on every connection, redirects never followed.

    Shared by the EWS and Graph transports; use as an async context manager.
    """

    def __init__(
        self,
        url: str,
        auth: Auth,
        limits: TransportLimits | None,
        ca_file: str | None,
        user_agent: str,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.auth = auth
        self.limits = limits or TransportLimits()
        self.outbound = outbound or OutboundPolicy()
        self._url = url
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
                limit=self.limits.connections, **self._connector_options()
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    def _connector_options(self) -> dict[str, Any]:
        """What every connection to the server is opened with (a fresh resolver each time:
        a connector closes its resolver with itself)."""
        return {
            "keepalive_timeout": self.limits.keepalive_s,
            "ssl": self._ssl,
            "resolver": self.outbound.resolver(),
        }

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session_for(self, url: str) -> aiohttp.ClientSession:
        """The open session, once `url` passed the outbound policy (a literal address is never
        given to a resolver, so it is checked here, before any connection)."""
        if self._session is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        self.outbound.check_url(url)
        return self._session

    async def reach(self) -> int:
        """One GET of the server's URL without credentials: the HTTP status of its answer,
        whatever it is (a redirect too, not followed). It proves that the connection, TLS
        verification included, works; failures raise as any request's would."""
        try:
            session = self.session_for(self._url)
            async with session.get(
                self._url,
                headers={"User-Agent": self._user_agent},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=self.limits.read_timeout_s, sock_connect=self.limits.connect_timeout_s
                ),
            ) as resp:
                return resp.status
        except Exception as exc:
            raise_translated(exc, "connect")

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
    """POSTs SOAP bodies to one EWS endpoint. Use as an async context manager.

    With `WindowsAuth` (NTLM, Negotiate) requests travel on logged-on connections of their
    own, at most `limits.connections` of them; the shared session then serves `reach` only."""

    def __init__(
        self,
        url: str,
        auth: Auth,
        *,
        limits: TransportLimits | None = None,
        ca_file: str | None = None,
        user_agent: str = "crm-exchange-sync/0.1",
        outbound: OutboundPolicy | None = None,
    ) -> None:
        super().__init__(url, auth, limits, ca_file, user_agent, outbound)
        self.url = url
        self.logons: AuthenticatedConnections | None = None

    def open(self) -> None:
        super().open()
        if isinstance(self.auth, WindowsAuth) and self.logons is None:
            self.logons = AuthenticatedConnections(
                self.auth,
                self.url,
                size=self.limits.connections,
                keepalive_s=self.limits.keepalive_s,
                connector_options=self._connector_options,
            )

    async def close(self) -> None:
        if self.logons is not None:
            await self.logons.close()
            self.logons = None
        await super().close()

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

    @asynccontextmanager
    async def _exchange(
        self, body: bytes, mailbox: str | None, timeout: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST `body`; yields the answer, on a logged-on connection for an NTLM server."""
        session = self.session_for(self.url)
        headers = await self._headers(mailbox)
        if self.logons is not None:
            async with self.logons.exchange(self.url, body, headers, timeout) as resp:
                yield resp
            return
        async with session.post(
            self.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as resp:
            yield resp

    async def post(self, body: bytes, mailbox: str | None) -> bytes:
        """One request/response; returns the body of a 200 answer."""
        try:
            async with self._exchange(body, mailbox, self._timeout(None)) as resp:
                data = await self._read_capped(resp)
                return self._check(resp, data)
        except Exception as exc:
            raise_translated(exc, "request")

    def _check(self, resp: aiohttp.ClientResponse, data: bytes) -> bytes:
        status = resp.status
        if status == 200:
            return data
        refuse_redirect(resp)
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
        timeout = self._timeout(read_timeout_s, idle_timeout_s)
        try:
            async with self._exchange(body, mailbox, timeout) as resp:
                if resp.status != 200:
                    self._check(resp, await self._read_capped(resp))
                async for chunk in resp.content.iter_any():
                    yield chunk
        except Exception as exc:
            raise_translated(exc, "stream")
