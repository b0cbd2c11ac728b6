"""`servers test`: connect, authenticate, impersonate, write and remove a probe item, step by step.

The probe is a contact carrying a generated CRM id: it is created, found again by that id (the
same lookup the engine relies on after a crash), and deleted. Every step reports ok or failed
with the reason; the steps after a failure are reported as skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

from ews_client import AuthError, Contact, EntityKind, ExchangeBackend, ExchangeError, ItemRef
from sync_service.config import Settings
from sync_service.db.store import Server
from sync_service.errors import ControlFlow

Opener = Callable[[Server, Settings], AbstractAsyncContextManager[ExchangeBackend]]
T = TypeVar("T")
STEPS = ("connect", "authenticate", "impersonate", "create probe", "find probe", "delete probe")


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
    try:
        async with opener(server, settings) as backend:
            steps.append(Step("connect", "ok", server.url))
            await _steps(backend, mailbox, steps)
    except _Reported:
        pass
    except Exception as exc:
        # A diagnostic reports every failure as a step (an unset secret variable, an
        # unsupported backend, a refused connection) instead of crashing with a traceback.
        name = STEPS[len(steps)] if len(steps) < len(STEPS) else "disconnect"
        steps.append(Step(name, "failed", _reason(exc)))
    done = {s.name for s in steps}
    steps.extend(Step(name, "skipped") for name in STEPS if name not in done)
    return steps


async def _steps(backend: ExchangeBackend, mailbox: str, steps: list[Step]) -> None:
    await _read(backend, mailbox, steps)
    crm_id = f"probe-{uuid.uuid4()}"
    item = Contact(given_name="Sync", surname="Probe", display_name="sync-service probe")
    ref = await _step(
        steps, "create probe", backend.create_item(mailbox, replace(item, crm_id=crm_id))
    )
    try:
        found = await _step(
            steps, "find probe", backend.find_by_crm_id(mailbox, EntityKind.CONTACT, crm_id)
        )
        if found is None or found.id != ref.id:
            steps[-1] = Step("find probe", "failed", "the probe was not found by its CRM id")
            raise _Reported("probe not found")
    finally:
        await _step(steps, "delete probe", backend.delete_item(mailbox, ref, EntityKind.CONTACT))


async def _read(backend: ExchangeBackend, mailbox: str, steps: list[Step]) -> None:
    """Reading the mailbox needs a valid identity (AuthError) and the right to impersonate it
    (MailboxError: ErrorImpersonateUserDenied, ErrorNonExistentMailbox)."""
    try:
        await backend.read_marker(mailbox)
    except AuthError as exc:
        steps.append(Step("authenticate", "failed", _reason(exc)))
        raise _Reported("auth") from exc
    except ExchangeError as exc:
        steps.append(Step("authenticate", "ok", "identity accepted"))
        steps.append(Step("impersonate", "failed", _reason(exc)))
        raise _Reported("impersonate") from exc
    steps.append(Step("authenticate", "ok", "identity accepted"))
    steps.append(Step("impersonate", "ok", f"read {mailbox}"))


async def _step(steps: list[Step], name: str, call: Awaitable[T]) -> T:
    try:
        result = await call
    except ExchangeError as exc:
        steps.append(Step(name, "failed", _reason(exc)))
        raise _Reported(name) from exc
    steps.append(Step(name, "ok", _describe(result)))
    return result


class _Reported(ControlFlow):
    """A failure already recorded as a step: stop, without recording it twice."""


def _describe(result: object) -> str:
    return f"item {result.id[:24]}..." if isinstance(result, ItemRef) else ""


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "code", "")
    return f"{type(exc).__name__}: {exc}" + (f" ({code})" if code else "")
