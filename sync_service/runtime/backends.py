"""Exchange backends per configured server: opened on first use, closed with the service."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ews_client import (
    EWS_SCOPE,
    GRAPH_LIMITS,
    GRAPH_SCOPE,
    Auth,
    AuthError,
    BasicAuth,
    EwsClient,
    ExchangeBackend,
    GraphClient,
    OAuthClientCredentials,
    OutboundPolicy,
    ThrottleLimits,
    TransportLimits,
    WindowsAuth,
)
from sync_service import metrics
from sync_service.config import (
    ConfigError,
    OutboundSettings,
    Settings,
    allowed_secret_path,
    read_named_secret,
)
from sync_service.db.store import Server
from sync_service.errors import OperatorError

log = logging.getLogger("sync_service.runtime.backends")


@dataclass(slots=True)
class RequestStats:
    """Requests and throttling answers of one pass (set per pass through a context variable)."""

    requests: int = 0
    throttled: int = 0


PASS_STATS: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar(
    "pass_stats", default=None
)
_THROTTLED_OUTCOMES = frozenset({"ThrottledError"})


class UnsupportedBackend(OperatorError):
    """The server's backend or auth kind is not available in this build."""


def _auth(server: Server, policy: OutboundSettings, default_scope: str = EWS_SCOPE) -> Auth:
    """The server's credentials; an oauth server asks for its own scope (national clouds) or
    `default_scope`, the audience of its backend (a token is valid for one resource only)."""
    if server.auth_kind == "basic":
        return BasicAuth(server.username or "", _secret(server, policy))
    if server.auth_kind in ("ntlm", "negotiate"):
        return _windows_auth(server, policy)
    if server.auth_kind == "oauth":
        authority = server.authority or f"https://login.microsoftonline.com/{server.tenant}"
        scope = server.scope or default_scope
        if server.certificate_file:
            return _certificate_auth(server, authority, scope, _outbound(policy))
        return OAuthClientCredentials(
            authority=authority,
            client_id=server.client_id or "",
            client_secret=_secret(server, policy),
            scope=scope,
            ca_file=server.ca_file,
            outbound=_outbound(policy),
        )
    raise UnsupportedBackend(f"server {server.name}: auth kind {server.auth_kind} is not supported")


def _windows_auth(server: Server, policy: OutboundSettings) -> WindowsAuth:
    """NTLM or Negotiate (SPNEGO: Kerberos, else NTLM inside it) for an Exchange Server's EWS:
    the service account as DOMAIN\\user or user@domain. A refused password surfaces at the
    first request as an AuthError (the mailbox is disabled with that reason)."""
    kind = server.auth_kind
    if server.backend != "ews":
        raise ConfigError(
            f"auth_kind: server {server.name}: Microsoft Graph takes oauth, not {kind}"
        )
    if not (server.username or "").strip():
        raise ConfigError(
            f"username: server {server.name}: {kind} needs the service account, "
            "DOMAIN\\user or user@domain"
        )
    username, password = server.username or "", _secret(server, policy)
    if kind == "negotiate":
        return WindowsAuth(username, password, protocol="negotiate")
    return WindowsAuth(username, password, protocol="ntlm")


def _secret(server: Server, policy: OutboundSettings) -> str:
    return read_named_secret(policy, server.secret_env, server.secret_file)


def _checked_files(server: Server, policy: OutboundSettings) -> Server:
    """`server` with its CA and certificate files checked against the deployment's secret
    directory at every use, as when it was added (a row edited by SQL is no way round it), and
    replaced by the real paths that were checked."""

    def checked(field: str, value: str | None) -> str | None:
        return str(allowed_secret_path(policy, field, value)) if value else value

    return replace(
        server,
        ca_file=checked("ca_file", server.ca_file),
        certificate_file=checked("certificate_file", server.certificate_file),
    )


def _outbound(settings: OutboundSettings) -> OutboundPolicy:
    """Where the clients may connect: link-local and unspecified addresses never, loopback and
    private ranges not either when the deployment says so (msal's token requests included)."""
    return OutboundPolicy(deny_private=settings.outbound_deny_private)


def _certificate_auth(
    server: Server, authority: str, scope: str, outbound: OutboundPolicy
) -> OAuthClientCredentials:
    """Client-certificate credentials: the PEM file is read and checked now, when connecting;
    errors name the setting and the file, never the key."""
    path = server.certificate_file or ""
    try:
        return OAuthClientCredentials(
            authority=authority,
            client_id=server.client_id or "",
            certificate_pem=Path(path).read_bytes(),
            scope=scope,
            ca_file=server.ca_file,
            outbound=outbound,
        )
    except OSError as exc:
        raise ConfigError(
            f"certificate_file: {path}: cannot read the server's certificate: {exc.strerror}"
        ) from None
    except AuthError as exc:
        raise ConfigError(f"certificate_file: {path}: {exc}") from None


def _hooks(server_name: str) -> dict[str, object]:
    requests = metrics.EXCHANGE_REQUESTS
    duration = metrics.EXCHANGE_REQUEST_DURATION.labels(server_name)

    def on_request(operation: str, outcome: str, seconds: float) -> None:
        requests.labels(server_name, operation, outcome).inc()
        duration.observe(seconds)
        stats = PASS_STATS.get()
        if stats is not None:
            stats.requests += 1
            stats.throttled += outcome in _THROTTLED_OUTCOMES

    def on_backoff(seconds: float) -> None:
        metrics.THROTTLED.labels(server_name).inc()
        metrics.BACKOFF_SECONDS.labels(server_name).inc(seconds)

    return {"on_request": on_request, "on_backoff": on_backoff}


def _throttle(base: ThrottleLimits, server: Server, attempts: int | None) -> ThrottleLimits:
    limits = replace(
        base, rate_per_s=server.rate_per_second, max_concurrency=server.max_concurrency
    )
    return limits if attempts is None else replace(limits, max_attempts=attempts)


def _build(server: Server, settings: Settings, attempts: int | None) -> EwsClient | GraphClient:
    server = _checked_files(server, settings.outbound)
    transport = TransportLimits(
        connections=max(10, server.max_concurrency), read_timeout_s=settings.limits.http_timeout
    )
    if server.backend == "graph":
        return GraphClient(
            server.url,
            _auth(server, settings.outbound, default_scope=GRAPH_SCOPE),
            transport_limits=transport,
            throttle_limits=_throttle(GRAPH_LIMITS, server, attempts),
            ca_file=server.ca_file,
            outbound=_outbound(settings.outbound),
            send_invitations=settings.meetings.send_invitations,
            **_hooks(server.name),  # type: ignore[arg-type]
        )
    if server.backend != "ews":
        raise UnsupportedBackend(f"server {server.name}: backend {server.backend} is unknown")
    return EwsClient(
        server.url,
        _auth(server, settings.outbound),
        transport_limits=transport,
        throttle_limits=_throttle(ThrottleLimits(), server, attempts),
        ca_file=server.ca_file,
        outbound=_outbound(settings.outbound),
        **_hooks(server.name),  # type: ignore[arg-type]
    )


def build_backend(
    server: Server, settings: Settings, *, attempts: int | None = None
) -> EwsClient | GraphClient:
    """An unopened client for `server` (use it as an async context manager); `attempts`
    overrides how many times one call is tried (the throttle's max_attempts)."""
    client = _build(server, settings, attempts)
    client.throttle.on_wait = metrics.LIMITER_WAIT.labels(server.name).observe
    return client


@asynccontextmanager
async def open_backend(
    server: Server, settings: Settings
) -> AsyncIterator[EwsClient | GraphClient]:
    """One server's client for a diagnostic (`servers test`, which also checks the connection
    alone: `check_connection`): every call is tried once, so that a step reports the answer
    the server gave, at once, instead of retrying it for up to the throttle's budget."""
    async with build_backend(server, settings, attempts=1) as client:
        yield client


class Backends:
    """Open clients of a service process, one per server, closed together at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._open: dict[int, tuple[Server, ExchangeBackend]] = {}

    async def get(self, server: Server) -> ExchangeBackend:
        known = self._open.get(server.id)
        if known is not None and known[0] == server:
            return known[1]
        backend = build_backend(server, self.settings)
        client: ExchangeBackend = await self._stack.enter_async_context(backend)
        self._open[server.id] = (server, client)
        return client

    async def __aenter__(self) -> Backends:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
