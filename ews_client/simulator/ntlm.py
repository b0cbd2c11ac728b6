"""Windows authentication on the EWS endpoint (NTLM, and Negotiate wrapping NTLM), as IIS
does it for an Exchange virtual directory: the logon belongs to the TCP connection.

A 401 answer names every scheme offered (`WWW-Authenticate: Negotiate`, `NTLM`, `Basic`). A
negotiate message starts a logon on its connection and is answered 401 with the challenge;
the authenticate message, on the same connection, is checked by pyspnego's acceptor against
the service account's names and password; the request it came with is then served, and so is
every later request on that connection without an Authorization header. An authenticate
message on another connection, or with a wrong password, is answered 401. Over TLS with
`extended_protection_cert`, the authenticate message must carry the connection's channel
binding, as Exchange's Extended Protection requires (ews_client/PROTOCOL_NOTES.md, "NTLM and
Negotiate").

pyspnego's NTLM acceptor reads its accounts from the file named by the environment variable
NTLM_USER_FILE, and nothing else; each simulator writes its own file and points the variable
at it for the duration of one (synchronous) step, under a lock, so that several simulators in
one process keep their own accounts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import spnego
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from multidict import CIMultiDict
from spnego.channel_bindings import GssChannelBindings

from .config import SimulatorConfig

WINDOWS_SCHEMES = {"ntlm": "NTLM", "negotiate": "Negotiate"}
_ENV_LOCK = threading.Lock()
_FINAL_TOKEN = web.RequestKey("windows_final_token", str)
_UNAUTHORIZED = "401 - Unauthorized: Access is denied due to invalid credentials."


@dataclass(frozen=True, slots=True)
class LogonRecord:
    """One completed logon: the HTTP scheme, the mechanism inside it, who logged on."""

    scheme: str  # "NTLM" or "Negotiate"
    mechanism: str  # "ntlm" (Negotiate wraps NTLM here: no Kerberos)
    principal: str  # DOMAIN\user or the UPN, as the client sent it


@dataclass(slots=True)
class _Logon:
    """A logon in progress on one connection: the scheme it started with and the context."""

    scheme: str
    context: spnego.ContextProxy


class WindowsLogon:
    """The EWS endpoint's authentication state per connection, and its counters."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.schemes = config.ews_auth_schemes
        self._users = _write_users(config.ntlm_users, config.password)
        weakref.finalize(self, self._users.unlink, missing_ok=True)
        self._binding = _binding_of(config.extended_protection_cert)
        # Keyed by the connection's transport: its state goes when the connection does.
        self._pending: weakref.WeakKeyDictionary[asyncio.BaseTransport, _Logon] = (
            weakref.WeakKeyDictionary()
        )
        self._logged_on: weakref.WeakKeyDictionary[asyncio.BaseTransport, str] = (
            weakref.WeakKeyDictionary()
        )
        self.handshakes = 0  # logons completed
        self.challenges = 0  # challenges sent
        self.refused = 0  # authenticate messages refused (wrong password, binding, sequence)
        self.anonymous = 0  # requests without credentials on a connection not logged on
        self.logons: list[LogonRecord] = []  # every completed logon, in order

    def forget(self) -> None:
        """Drop every connection's logon but keep the connections open (a test hook: the
        next request on each is answered 401 and must log on again)."""
        self._logged_on.clear()
        self._pending.clear()

    def refusal(self) -> web.Response:
        """401 naming every scheme the endpoint offers, as IIS answers."""
        headers: CIMultiDict[str] = CIMultiDict()
        for scheme in self.schemes:
            headers.add("WWW-Authenticate", 'Basic realm="sim"' if scheme == "Basic" else scheme)
        return web.Response(status=401, text=_UNAUTHORIZED, headers=headers)

    def authorize(self, request: web.Request, scheme: str, credentials: str) -> web.Response | None:
        """None when the request may be served (its connection is logged on, or its
        authenticate message completed the logon), else the 401 answer."""
        transport = request.transport
        if transport is None:
            return self.refusal()
        if not scheme:
            if transport in self._logged_on:
                return None
            self.anonymous += 1
            return self.refusal()
        chosen = WINDOWS_SCHEMES.get(scheme.lower())
        if chosen is None or chosen not in self.schemes:
            return self.refusal()
        try:
            token = base64.b64decode(credentials, validate=True)
        except binascii.Error:
            return self.refusal()
        return self._step(request, transport, chosen, token)

    def _step(
        self, request: web.Request, transport: asyncio.BaseTransport, scheme: str, token: bytes
    ) -> web.Response | None:
        logon = self._logon_for(transport, scheme, token)
        if logon is None:
            self.refused += 1  # an authenticate message without a challenge on this connection
            return self.refusal()
        try:
            with self._accounts():
                answer = logon.context.step(token, channel_bindings=self._binding)
        except Exception:  # a wrong password, a missing binding, or a token that is junk
            self._pending.pop(transport, None)
            self.refused += 1
            return self.refusal()
        if not logon.context.complete:
            self._pending[transport] = logon
            self.challenges += 1
            return self._challenge(scheme, answer or b"")
        self._pending.pop(transport, None)
        principal = logon.context.client_principal or ""
        self._logged_on[transport] = principal
        self.handshakes += 1
        self.logons.append(LogonRecord(scheme, logon.context.negotiated_protocol or "", principal))
        if answer:  # SPNEGO's last word (accept-completed and its mechListMIC) rides the 200
            request[_FINAL_TOKEN] = f"{scheme} {base64.b64encode(answer).decode('ascii')}"
        return None

    def _logon_for(
        self, transport: asyncio.BaseTransport, scheme: str, token: bytes
    ) -> _Logon | None:
        """A new logon for a first message (it also ends the connection's old one), else the
        one this connection has in progress with the same scheme."""
        if _starts_logon(token):
            self._logged_on.pop(transport, None)
            with self._accounts():
                context = spnego.server(protocol=scheme.lower())
            return _Logon(scheme, context)
        pending = self._pending.get(transport)
        return pending if pending is not None and pending.scheme == scheme else None

    @staticmethod
    def _challenge(scheme: str, token: bytes) -> web.Response:
        challenge = f"{scheme} {base64.b64encode(token).decode('ascii')}"
        return web.Response(status=401, text=_UNAUTHORIZED, headers={"WWW-Authenticate": challenge})

    @contextmanager
    def _accounts(self) -> Iterator[None]:
        """NTLM_USER_FILE names this simulator's accounts while pyspnego reads them."""
        with _ENV_LOCK:
            saved = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = str(self._users)
            try:
                yield
            finally:
                if saved is None:
                    os.environ.pop("NTLM_USER_FILE", None)
                else:
                    os.environ["NTLM_USER_FILE"] = saved


async def add_final_token(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the server's last Negotiate token goes with the answer."""
    final = request.get(_FINAL_TOKEN)
    if final:
        response.headers["WWW-Authenticate"] = final


def _starts_logon(token: bytes) -> bool:
    """An NTLM negotiate message (type 1), or SPNEGO's initial token (GSS-API framing, an
    [APPLICATION 0] tag: RFC 2743 section 3.1)."""
    ntlm_negotiate = token[:8] == b"NTLMSSP\x00" and token[8:12] == b"\x01\x00\x00\x00"
    return ntlm_negotiate or token[:1] == b"\x60"


def _write_users(users: tuple[str, ...], password: str) -> Path:
    """A file of the accounts in the Heimdal format pyspnego reads: DOMAIN:USER:PASSWORD, and
    :user@domain:PASSWORD for a UPN (its fields are split on colons)."""
    lines = []
    for user in users:
        domain, _, name = user.rpartition("\\")
        if ":" in user or ":" in password or "\n" in user + password:
            raise ValueError("NTLM user names and the password cannot hold ':' or newlines")
        lines.append(f"{domain}:{name}:{password}\n")
    handle, name = tempfile.mkstemp(prefix="sim-ntlm-users-")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write("".join(lines))
    return Path(name)


def _binding_of(certificate_pem: str | None) -> GssChannelBindings | None:
    """The channel binding a client must send over TLS: RFC 5929 tls-server-end-point, the
    hash of the served certificate (SHA-256 when it is signed with MD5 or SHA-1)."""
    if certificate_pem is None:
        return None
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    der = certificate.public_bytes(Encoding.DER)
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())
