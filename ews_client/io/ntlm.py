"""NTLM and Negotiate for EWS (the Windows authentication of an Exchange Server virtual
directory), with pyspnego making and checking the tokens.

Windows authentication logs on a TCP connection, not a request (ews_client/PROTOCOL_NOTES.md,
"NTLM and Negotiate"): the negotiate, challenge and authenticate messages must travel on one
connection, and the requests that follow on that connection need no Authorization header.
aiohttp's pool hands any idle connection to any request, so an NTLM server gets channels of
its own instead: each channel is an aiohttp session whose connector holds at most one
connection, a request holds one channel until its answer is read, and a channel remembers
which connection it logged on. A request on a channel whose connection is still alive is sent
as it is; otherwise (a new channel, or its connection closed) it goes with the handshake: each
leg carries it, and the answer to the last leg is its answer.

Kerberos (Negotiate's first choice) needs a KDC and python-gssapi, neither of which this
project has or tests; without them pyspnego's Negotiate offers NTLM only inside SPNEGO, which
is what the tests check against the simulator.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import spnego
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from multidict import MultiMapping
from spnego.channel_bindings import GssChannelBindings

from ews_client.errors import AuthError, ProtocolError, TransientError

Protocol = Literal["ntlm", "negotiate"]
SCHEMES: dict[Protocol, str] = {"ntlm": "NTLM", "negotiate": "Negotiate"}
# NTLM takes two legs (negotiate -> challenge, authenticate -> answer); SPNEGO around it the
# same two. A server asking for more is not speaking either protocol.
MAX_LEGS = 3
# A 401 answer's body (IIS sends a small HTML page) is read and dropped to keep the connection.
DRAIN_CAP = 64 * 1024
# A connection idle this close to the keep-alive limit may be closed by the time it is used:
# log on again rather than send the request unauthenticated.
KEEPALIVE_MARGIN_S = 1.0
# After the server refused our password, further logons with it wait this long: Active
# Directory counts every failed logon toward the account's lockout threshold, and a server
# with hundreds of mailboxes would otherwise try once per mailbox within seconds.
REFUSAL_HOLD_S = 900.0

# pyspnego logs every token at DEBUG; an NTLM authenticate message is a password-derived
# response that can be attacked offline, so it must never reach our logs.
logging.getLogger("spnego").setLevel(logging.INFO)


class WindowsAuth:
    """NTLM (or Negotiate) credentials for an Exchange Server: `DOMAIN\\user` or a UPN
    `user@domain`, and the password. The Authorization header belongs to a connection, not a
    request, so `headers()` is empty: the EWS transport runs the handshake on its channels
    (`AuthenticatedConnections`). `handshakes` counts the logons completed."""

    __slots__ = ("_clock", "_password", "_refused", "handshakes", "protocol", "scheme", "username")

    def __init__(
        self,
        username: str,
        password: str,
        *,
        protocol: Protocol = "ntlm",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not username.strip():
            raise ValueError("NTLM needs a user name: DOMAIN\\user or user@domain")
        if protocol not in SCHEMES:
            raise ValueError(f"protocol must be one of {', '.join(SCHEMES)}: {protocol!r}")
        self.username = username
        self._password = password
        self.protocol: Protocol = protocol
        self.scheme = SCHEMES[protocol]
        self.handshakes = 0
        self._clock = clock
        self._refused: tuple[float, str] | None = None  # when, and the server's refusal

    def context(self, host: str) -> spnego.ContextProxy:
        """A fresh client security context for one handshake with `host` (Kerberos would
        ask for the service principal HTTP/host)."""
        return spnego.client(
            self.username, self._password, hostname=host, service="HTTP", protocol=self.protocol
        )

    def refuse(self, reason: str) -> None:
        """The server refused this password: hold further logons (`REFUSAL_HOLD_S`)."""
        self._refused = (self._clock(), reason)

    def check_not_refused(self) -> None:
        """AuthError, without asking the server, while a refusal of this password holds."""
        if self._refused is None:
            return
        when, reason = self._refused
        if self._clock() - when >= REFUSAL_HOLD_S:
            self._refused = None
            return
        raise AuthError(
            f"{reason}; not tried again for {REFUSAL_HOLD_S / 60:.0f} minutes, as every failed "
            "logon counts toward the account's lockout",
            code="HTTP401",
        )

    async def headers(self) -> dict[str, str]:
        return {}

    def invalidate(self) -> None:
        """Nothing is cached across connections: each channel logs on by itself."""

    def close(self) -> None:
        """Nothing to release (the transport closes its channels)."""

    def __repr__(self) -> str:
        return (
            f"WindowsAuth(username={self.username!r}, protocol={self.protocol!r}, "
            "password=<hidden>)"
        )


def channel_binding(transport: asyncio.BaseTransport | None) -> GssChannelBindings | None:
    """The TLS channel binding of a connection (RFC 5929 "tls-server-end-point": a hash of
    the server's certificate), which Exchange's Extended Protection checks inside the NTLM
    authenticate message; None over plain HTTP."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        algorithm = None
    # RFC 5929 section 4.1: MD5 and SHA-1 certificates are hashed with SHA-256; so are those
    # whose signature names no hash (our choice: the RFC does not cover them).
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


def server_token(headers: MultiMapping[str], scheme: str) -> bytes | None:
    """The token the server sent for `scheme` in WWW-Authenticate: b"" when it only names the
    scheme, None when it does not offer it. ProtocolError for a token that is not base64."""
    for value in _challenges(headers):
        words = value.split()
        if words and words[0].lower() == scheme.lower():
            try:
                return base64.b64decode(words[1], validate=True) if len(words) > 1 else b""
            except binascii.Error:
                raise ProtocolError(
                    f"the server's {scheme} challenge is not base64", code="NtlmToken"
                ) from None
    return None


def offered_schemes(headers: MultiMapping[str]) -> list[str]:
    """The scheme names of the server's WWW-Authenticate challenges (for messages)."""
    names = (value.split()[0] for value in _challenges(headers) if value.split())
    return [name for name in names if "=" not in name]


def _challenges(headers: MultiMapping[str]) -> list[str]:
    # One header per challenge (IIS) or several in one, comma-separated (RFC 9110 11.6.1);
    # a token68 has no comma, so splitting on commas keeps each scheme with its token.
    values = headers.getall("WWW-Authenticate", [])
    return [part.strip() for value in values for part in value.split(",")]


class _OneConnection(aiohttp.TCPConnector):
    """A connector of at most one connection that remembers which one it handed out last,
    so that a channel knows whether a handshake's legs and the requests after it shared it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(limit=1, **options)
        self.served: asyncio.Transport | None = None

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        self.served = connection.transport
        return connection


class _Channel:
    """One session of one connection, and the connection it logged on (if any)."""

    __slots__ = ("connector", "logged_on", "released_at", "session")

    def __init__(self, options: dict[str, Any]) -> None:
        self.connector = _OneConnection(**options)
        self.session = aiohttp.ClientSession(connector=self.connector, trust_env=False)
        self.logged_on: asyncio.BaseTransport | None = None
        self.released_at = 0.0

    def ready(self, keepalive_s: float) -> bool:
        """True when the next request will travel on the connection that logged on: it is
        open and aiohttp will reuse it (idle for less than the keep-alive limit)."""
        transport = self.logged_on
        idle = time.monotonic() - self.released_at
        return (
            transport is not None
            and not transport.is_closing()
            and idle < keepalive_s - KEEPALIVE_MARGIN_S
        )

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        return await self.session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )


class AuthenticatedConnections:
    """The logged-on connections to one NTLM/Negotiate server: up to `size` channels, made
    when concurrent requests need them, reused (most recently used first) while they live.

    `connector_options` are the TCPConnector arguments of the server's transport (TLS, the
    outbound policy's resolver, keep-alive), fresh for each channel."""

    def __init__(
        self,
        auth: WindowsAuth,
        url: str,
        *,
        size: int,
        keepalive_s: float,
        connector_options: Callable[[], dict[str, Any]],
    ) -> None:
        self.auth = auth
        self._host = urlsplit(url).hostname or ""
        self._size = max(1, size)
        self._keepalive_s = keepalive_s
        self._options = connector_options
        self._slots = asyncio.Semaphore(self._size)
        self._idle: list[_Channel] = []
        self._channels: list[_Channel] = []

    @property
    def channels(self) -> int:
        """How many channels (sessions of one connection each) exist."""
        return len(self._channels)

    @asynccontextmanager
    async def exchange(
        self, url: str, body: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST `body` on a logged-on connection; yields the answer (a handshake, when one
        was needed, is done by then). AuthError when the server refuses the logon."""
        self.auth.check_not_refused()
        async with self._slots:
            channel = self._take()
            try:
                resp = await self._send(channel, url, body, headers, timeout)
                try:
                    yield resp
                finally:
                    resp.release()
            finally:
                channel.released_at = time.monotonic()
                self._idle.append(channel)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.session.close()
        self._channels.clear()
        self._idle.clear()

    def _take(self) -> _Channel:
        """A logged-on idle channel, else an idle one whose connection is gone, else a new
        one (the semaphore keeps the count within `size`)."""
        for index in range(len(self._idle) - 1, -1, -1):
            if self._idle[index].ready(self._keepalive_s):
                return self._idle.pop(index)
        if self._idle:
            return self._idle.pop()
        channel = _Channel(self._options())
        self._channels.append(channel)
        return channel

    async def _send(
        self,
        channel: _Channel,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        if channel.ready(self._keepalive_s):
            resp = await channel.post(url, body, headers, timeout)
            if resp.status != 401:
                return resp
            # The connection was replaced under us (closed by the server just now) or the
            # server forgot its logon: log on again on the connection we have now.
            await _drain(resp)
        return await self._handshake(channel, url, body, headers, timeout)

    async def _handshake(
        self,
        channel: _Channel,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Log on: every leg carries the request (Kerberos may accept the first), the legs
        must share one connection, and the answer to the last leg is the request's answer."""
        channel.logged_on = None
        context = self.auth.context(self._host)
        scheme = self.auth.scheme
        token = _step(context, None, None, scheme)
        connection: asyncio.BaseTransport | None = None
        for leg in range(MAX_LEGS):
            authorization = f"{scheme} {base64.b64encode(token).decode('ascii')}"
            resp = await channel.post(
                url, body, {**headers, "Authorization": authorization}, timeout
            )
            if leg and channel.connector.served is not connection:
                await _drain(resp)
                raise _connection_lost(scheme)
            connection = channel.connector.served
            offered = _token_of(resp, scheme)
            if resp.status != 401:
                self._finish(context, offered, resp)
                channel.logged_on = connection
                return resp
            await _drain(resp)
            if not offered or context.complete:
                raise self._refused(resp, offered, leg)
            token = _step(context, offered, channel_binding(connection), scheme)
        raise ProtocolError(
            f"the server asked for more than {MAX_LEGS} {scheme} legs", code="NtlmLegs"
        )

    def _finish(
        self, context: spnego.ContextProxy, offered: bytes | None, resp: aiohttp.ClientResponse
    ) -> None:
        """The server accepted: check its last token when it sent one (SPNEGO's mechListMIC,
        or Kerberos' mutual authentication); count the logon."""
        if offered and not context.complete:
            try:
                context.step(offered)
            except Exception:
                resp.release()
                raise AuthError(
                    f"the server's final {self.auth.scheme} token does not verify",
                    code="NtlmMutual",
                ) from None
        self.auth.handshakes += 1

    def _refused(self, resp: aiohttp.ClientResponse, offered: bytes | None, leg: int) -> AuthError:
        scheme = self.auth.scheme
        if offered is None:
            others = ", ".join(offered_schemes(resp.headers)) or "none"
            return AuthError(
                f"the server does not offer {scheme} authentication (it offers: {others})",
                code="HTTP401",
            )
        if leg == 0:
            return AuthError(
                f"the server answered our {scheme} negotiate message without a challenge "
                "(HTTP 401)",
                code="HTTP401",
            )
        reason = (
            f"the server refused the {scheme} logon of {self.auth.username} (HTTP 401): "
            "wrong password, or the account is locked or not allowed"
        )
        self.auth.refuse(reason)
        return AuthError(reason, code="HTTP401")


def _step(
    context: spnego.ContextProxy,
    token: bytes | None,
    binding: GssChannelBindings | None,
    scheme: str,
) -> bytes:
    try:
        return context.step(token, channel_bindings=binding) or b""
    except Exception as exc:  # pyspnego raises its own errors and struct/value errors alike
        raise ProtocolError(
            f"the server's {scheme} challenge cannot be answered: {type(exc).__name__}",
            code="NtlmToken",
        ) from None


def _token_of(resp: aiohttp.ClientResponse, scheme: str) -> bytes | None:
    try:
        return server_token(resp.headers, scheme)
    except ProtocolError:
        resp.release()
        raise


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read and drop an answer we do not use, so that its connection stays open for the
    next leg (a connection with unread data is closed by aiohttp)."""
    seen = 0
    async for chunk in resp.content.iter_chunked(16 * 1024):
        seen += len(chunk)
        if seen > DRAIN_CAP:
            resp.close()
            raise ProtocolError(f"a 401 answer of more than {DRAIN_CAP} bytes", code="Size")
    resp.release()


def _connection_lost(scheme: str) -> TransientError:
    return TransientError(
        f"the server closed the connection in the middle of the {scheme} handshake "
        "(Windows authentication needs HTTP keep-alive)",
        code="NtlmConnection",
    )
