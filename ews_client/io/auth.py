"""Credentials for EWS and Graph: Basic, and OAuth client credentials through msal, with a
client secret or a client certificate (msal signs the assertion with its key).

Secrets and keys arrive as plain `str` / bytes (the caller reads them where its settings say)
and never reach a log, an error message or a repr. msal's token requests go through the same
outbound policy as the transports: addresses checked on every connection, redirects refused.
NTLM and Negotiate (Exchange Server's Windows authentication) log on a connection, not a
request, so they are not an `Auth` header source: `ntlm.WindowsAuth` holds their credentials
and the EWS transport runs the handshake on connections of its own.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ews_client.errors import AuthError, ExchangeError, OutboundRefusedError, TransientError
from ews_client.io.outbound import OutboundPolicy

EWS_SCOPE = "https://outlook.office365.com/.default"


class Auth(Protocol):
    """Something that yields the Authorization header for the next request."""

    async def headers(self) -> dict[str, str]: ...

    def invalidate(self) -> None:
        """The server answered 401: drop anything cached."""
        ...

    def close(self) -> None:
        """Release HTTP resources (msal's session); the object is not used afterwards."""
        ...


class BasicAuth:
    """HTTP Basic over TLS with a service account (on-premises Exchange)."""

    __slots__ = ("_header", "username")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    async def headers(self) -> dict[str, str]:
        return {"Authorization": self._header}

    def invalidate(self) -> None:
        """Nothing is cached: a refused password stays refused."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=<hidden>)"


def _requests_session(ca_file: str | None, outbound: OutboundPolicy) -> requests.Session:
    """msal's own HTTP session: `trust_env=False` so REQUESTS_CA_BUNDLE cannot override
    `verify` (ews_client/PROTOCOL_NOTES.md, "Testing msal"); connections checked by the
    outbound policy; a redirect raises instead of being followed (a 307 would re-post the
    client secret or assertion to the Location)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file if ca_file else True
    session.max_redirects = 0  # a second guard: following one raises TooManyRedirects
    session.hooks["response"].append(_refuse_redirect)
    adapter = outbound.requests_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _refuse_redirect(resp: requests.Response, *args: object, **kwargs: object) -> None:
    """A response hook: runs before requests would follow a redirect, and raises instead."""
    if resp.is_redirect:
        resp.close()
        target = resp.headers.get("Location", "")[:200]
        raise OutboundRefusedError(
            f"redirect refused: the token endpoint {_host(resp.url)} answered HTTP "
            f"{resp.status_code} to {target!r}; redirects are never followed",
            code=f"HTTP{resp.status_code}",
        )


def _host(url: str) -> str:
    """host[:port] of `url`, for messages (never the path, which may name a tenant)."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url[:80]


_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S
)


def certificate_credential(pem: bytes) -> tuple[dict[str, str], str]:
    """msal's certificate credential from one PEM holding the private key and its certificate
    (a chain may follow), and the certificate's SHA-256 thumbprint (hex, safe to show).

    msal (1.35 and later) then signs PS256 assertions naming the certificate by its SHA-256
    thumbprint and sends the certificate along (x5c), which subject-name/issuer registrations
    need (ews_client/PROTOCOL_NOTES.md, "Graph tokens"). AuthError (code ClientCertificate)
    says what is wrong, never showing the key.
    """
    found = _PRIVATE_KEY.search(pem)
    if found is None:
        raise _bad_certificate("holds no private key (PEM 'BEGIN PRIVATE KEY')")
    if found.group(1) == b"ENCRYPTED ":
        raise _bad_certificate("holds an encrypted private key; store it unencrypted")
    try:
        key = serialization.load_pem_private_key(found.group(0), password=None)
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise _bad_certificate("holds no certificate, or an unreadable key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _bad_certificate("holds a non-RSA key; Entra ID signs with RSA keys only")
    mine = [c for c in certs if c.public_key() == key.public_key()]
    if not mine:
        raise _bad_certificate("holds no certificate of its private key")
    cert_pem = mine[0].public_bytes(serialization.Encoding.PEM).decode("ascii")
    credential = {"private_key": found.group(0).decode("ascii"), "public_certificate": cert_pem}
    return credential, mine[0].fingerprint(hashes.SHA256()).hex()


def _bad_certificate(what: str) -> AuthError:
    return AuthError(f"the client certificate {what}", code="ClientCertificate")


class OAuthClientCredentials:
    """App-only OAuth (client credentials) via msal, with a client secret or a client
    certificate (`certificate_pem`: key and certificate); the token is cached and refreshed
    `refresh_margin_s` before it expires. msal is blocking, so it runs in a thread.

    `scope` names the resource: `EWS_SCOPE`, `GRAPH_SCOPE`, or a national cloud's
    `https://<resource>/.default`; the token is valid for that resource only."""

    def __init__(
        self,
        *,
        authority: str,
        client_id: str,
        client_secret: str | None = None,
        certificate_pem: bytes | None = None,
        scope: str = EWS_SCOPE,
        ca_file: str | None = None,
        outbound: OutboundPolicy | None = None,
        refresh_margin_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (client_secret is None) == (certificate_pem is None):
            raise ValueError("give either client_secret or certificate_pem")
        self.authority = authority
        self.client_id = client_id
        self.thumbprint: str | None = None  # the certificate's SHA-256, when it has one
        self._credential: str | dict[str, str]
        if certificate_pem is not None:
            self._credential, self.thumbprint = certificate_credential(certificate_pem)
        else:
            self._credential = client_secret or ""
        self.scope = scope
        self._ca_file = ca_file
        self._outbound = outbound or OutboundPolicy()
        self._margin = refresh_margin_s
        self._clock = clock
        self._app: Any = None
        self._http: requests.Session | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.acquisitions = 0  # tokens fetched from msal (tests and metrics)

    def __repr__(self) -> str:
        return (
            f"OAuthClientCredentials(authority={self.authority!r}, "
            f"client_id={self.client_id!r}, scope={self.scope!r})"
        )

    def _build_app(self) -> Any:
        self._http = _requests_session(self._ca_file, self._outbound)
        return msal.ConfidentialClientApplication(
            self.client_id,
            client_credential=self._credential,
            authority=self.authority,
            http_client=self._http,
            instance_discovery=False,
        )

    def _acquire(self) -> dict[str, Any]:
        if self._app is None:
            self._app = self._build_app()
        result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[self.scope])
        return result

    async def headers(self) -> dict[str, str]:
        if self._token is None or self._clock() >= self._expires_at - self._margin:
            async with self._lock:
                if self._token is None or self._clock() >= self._expires_at - self._margin:
                    await self._refresh()
        return {"Authorization": f"Bearer {self._token}"}

    async def _refresh(self) -> None:
        try:
            result = await asyncio.to_thread(self._acquire)
        except ExchangeError:
            raise  # the outbound policy refused an address or a redirect
        except Exception as exc:  # msal/requests raise many kinds; translate once, here
            raise self._unreachable(exc) from exc
        if "access_token" not in result:
            # error/error_description are safe to show; the secret never appears in them.
            raise AuthError(
                f"token refused: {result.get('error')}: {result.get('error_description')}",
                code=str(result.get("error", "")),
            )
        self.acquisitions += 1
        self._token = str(result["access_token"])
        self._expires_at = self._clock() + float(result.get("expires_in", 3600))

    def _unreachable(self, exc: Exception) -> ExchangeError:
        """Our error for a failed token request: one class per kind of failure, never the
        OS error (refused, unreachable and timed out read alike, so that the service cannot
        be used to map a network), and the token endpoint's host."""
        where = f"the token endpoint {_host(self.authority)}"
        if isinstance(exc, requests.exceptions.TooManyRedirects):
            return OutboundRefusedError(f"redirect refused by {where}", code="Redirect")
        if isinstance(exc, requests.exceptions.SSLError):
            what = f"TLS verification failed for {where}"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            what = f"timed out waiting for {where}"
        elif isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            what = f"could not connect to {where}"
        else:
            what = f"{where} failed: {type(exc).__name__}"
        return TransientError(what, code="TokenEndpoint")

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    def close(self) -> None:
        if self._http is not None:
            self._http.close()  # keep-alive sockets would otherwise linger until GC
            self._http = None
        self._app = None
