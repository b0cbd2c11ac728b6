"""`servers test`: connect, authenticate, impersonate, write and remove a probe item, step by step.

"connect" is one request of its own, without credentials: it is ok only when the server sent
an HTTP answer (TLS verified on https). The probe is then a contact carrying a generated CRM
id: it is created, found again by that id (the same lookup the engine relies on after a
crash), and deleted. Every step reports ok or failed with the reason; the steps after a
failure are reported as skipped.

A reason says what failed (refused by the outbound policy, redirect refused, TLS verification
failed, timed out, HTTP status N from the server, authentication refused) but never how a
connection failed: refused, unreachable and timed out all read "could not connect to HOST", so
that the probe cannot be used to map a network.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

from ews_client import (
    AuthError,
    Contact,
    EntityKind,
    EwsClient,
    ExchangeError,
    GraphClient,
    ItemRef,
    OutboundRefusedError,
    ProtocolError,
    TransientError,
)
from sync_service.config import Settings
from sync_service.db.store import Server
from sync_service.errors import ControlFlow

Client = EwsClient | GraphClient
Opener = Callable[[Server, Settings], AbstractAsyncContextManager[Client]]
T = TypeVar("T")
STEPS = ("connect", "authenticate", "impersonate", "create probe", "find probe", "delete probe")
# Failures of the connection itself (the table in ews_client/io/failures.py).
_CONNECTION_CODES = frozenset({"Connect", "Network", "PayloadError"})
# Errors that leave the identity unproven (see `_read`).
_UNPROVEN = (AuthError, OutboundRefusedError, TransientError, ProtocolError)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    status: str  # ok | failed | skipped
    detail: str = ""


def default_opener() -> Opener:
    """`sync_service.runtime.backends.open_backend`, imported when a test runs."""
    from sync_service.runtime.backends import open_backend  # type: ignore[import-not-found,unused-ignore]

    opener: Opener = open_backend
    return opener


async def probe(server: Server, mailbox: str, settings: Settings, opener: Opener) -> list[Step]:
    """Run every step against `mailbox` on `server`; never raises for an Exchange failure."""
    steps: list[Step] = []
    host = _host(server.url)
    try:
        async with opener(server, settings) as backend:
            await _connect(backend, host, steps)
            await _steps(backend, mailbox, host, steps)
    except _Reported:
        pass
    except Exception as exc:
        # A diagnostic reports every failure as a step (an unset secret variable, an
        # unsupported backend, a refused connection) instead of crashing with a traceback.
        name = STEPS[len(steps)] if len(steps) < len(STEPS) else "disconnect"
        steps.append(Step(name, "failed", _reason(exc, host)))
    done = {s.name for s in steps}
    steps.extend(Step(name, "skipped") for name in STEPS if name not in done)
    return steps


async def _connect(backend: Client, host: str, steps: list[Step]) -> None:
    """Any HTTP answer proves the connection; every failure before one reads alike (but a
    refusal by the policy and a TLS failure, which say what to fix)."""
    try:
        status = await backend.check_connection()
    except ExchangeError as exc:
        why = _reason(exc, host) if _said_what(exc) else f"could not connect to {host}"
        steps.append(Step("connect", "failed", why))
        raise _Reported("connect") from exc
    steps.append(Step("connect", "ok", f"{host} answered (HTTP {status})"))


async def _steps(backend: Client, mailbox: str, host: str, steps: list[Step]) -> None:
    await _read(backend, mailbox, host, steps)
    crm_id = f"probe-{uuid.uuid4()}"
    item = Contact(given_name="Sync", surname="Probe", display_name="sync-service probe")
    ref = await _step(
        steps, host, "create probe", backend.create_item(mailbox, replace(item, crm_id=crm_id))
    )
    try:
        found = await _step(
            steps, host, "find probe", backend.find_by_crm_id(mailbox, EntityKind.CONTACT, crm_id)
        )
        if found is None or found.id != ref.id:
            steps[-1] = Step("find probe", "failed", "the probe was not found by its CRM id")
            raise _Reported("probe not found")
    finally:
        await _step(
            steps, host, "delete probe", backend.delete_item(mailbox, ref, EntityKind.CONTACT)
        )


async def _read(backend: Client, mailbox: str, host: str, steps: list[Step]) -> None:
    """Reading the mailbox needs a valid identity and the right to impersonate it. The identity
    counts as accepted only when the server judged the request itself (MailboxError for
    ErrorImpersonateUserDenied or ErrorNonExistentMailbox, or another item-level answer); a
    refusal, a bare HTTP status, an answer that does not parse, a busy server or a lost
    connection leave it unproven."""
    try:
        await backend.read_marker(mailbox)
    except ExchangeError as exc:
        if isinstance(exc, _UNPROVEN) or _bare_status(exc):
            steps.append(Step("authenticate", "failed", _reason(exc, host)))
            raise _Reported("auth") from exc
        steps.append(Step("authenticate", "ok", "identity accepted"))
        steps.append(Step("impersonate", "failed", _reason(exc, host)))
        raise _Reported("impersonate") from exc
    steps.append(Step("authenticate", "ok", "identity accepted"))
    steps.append(Step("impersonate", "ok", f"read {mailbox}"))


async def _step(steps: list[Step], host: str, name: str, call: Awaitable[T]) -> T:
    try:
        result = await call
    except ExchangeError as exc:
        steps.append(Step(name, "failed", _reason(exc, host)))
        raise _Reported(name) from exc
    steps.append(Step(name, "ok", _describe(result)))
    return result


class _Reported(ControlFlow):
    """A failure already recorded as a step: stop, without recording it twice."""


def _describe(result: object) -> str:
    return f"item {result.id[:24]}..." if isinstance(result, ItemRef) else ""


def _host(url: str) -> str:
    """host[:port] of the server's URL (never a userinfo part or the path)."""
    return urlsplit(url).netloc.rpartition("@")[2] or url[:80]


def _said_what(exc: ExchangeError) -> bool:
    """A connect failure whose reason may be shown: the policy's refusal or a TLS failure."""
    return isinstance(exc, OutboundRefusedError) or _tls_failure(exc) is not None


def _bare_status(exc: ExchangeError) -> bool:
    """An HTTP status without an Exchange error code: any web server can answer that."""
    return exc.code.startswith("HTTP") and exc.code[4:].isdigit()


def _tls_failure(exc: BaseException) -> str | None:
    """Why the certificate was refused, when that is what is behind `exc` (chained: ours from
    aiohttp's, which is a CertificateError itself, from ssl's, which has the reason)."""
    seen: BaseException | None = exc
    found: str | None = None
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            found = getattr(seen, "verify_message", None) or found or "certificate refused"
        seen = seen.__cause__ or seen.__context__
    return found


def _reason(exc: BaseException, host: str) -> str:
    """What failed, in words that say what to fix and nothing about the network beyond."""
    if not isinstance(exc, ExchangeError):
        return f"{type(exc).__name__}: {exc}"  # a setting (ConfigError names it) or a bug
    if isinstance(exc, OutboundRefusedError) or exc.code == "TokenEndpoint":
        return str(exc)  # they name the host and the address or the redirect target
    if (tls := _tls_failure(exc)) is not None:
        return f"TLS verification failed for {host}: {tls}"
    if isinstance(exc, AuthError):
        return f"authentication refused: {exc}" + (f" ({exc.code})" if exc.code else "")
    if exc.code in _CONNECTION_CODES:
        return f"could not connect to {host}"
    if exc.code == "Timeout":
        return f"timed out waiting for {host}"
    if _bare_status(exc):
        return f"HTTP status {exc.code[4:]} from the server"
    return f"{type(exc).__name__}: {exc}" + (f" ({exc.code})" if exc.code else "")
