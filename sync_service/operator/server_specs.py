"""Validation of a sync target's settings (pure): what `servers add|update` and the API accept.

Secrets are never stored: a server names the environment variable or the file that holds its
password or client secret, or (oauth) the PEM file of its client certificate and key, and the
service reads it when it connects.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_service.config import ScheduleSettings, parse_duration
from sync_service.db.store import NewServer, Server
from sync_service.errors import FieldError

BACKENDS = ("ews", "graph")
AUTH_KINDS = ("basic", "ntlm", "oauth")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class InvalidInput(FieldError):
    """Bad input from the operator; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class ServerChanges:
    """Settings given by the operator; None means "not given" (keep / default)."""

    backend: str | None = None
    url: str | None = None
    auth_kind: str | None = None
    username: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    authority: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    ca_file: str | None = None
    time_zone: str | None = None
    express_interval: str | None = None
    complete_at: str | None = None
    max_concurrency: int | None = None
    rate_per_second: float | None = None
    scope: str | None = None
    certificate_file: str | None = None


_OAUTH_ONLY = ("scope", "certificate_file")
_SECRET_SOURCES = ("secret_env", "secret_file")


def new_server(
    name: str, changes: ServerChanges, defaults: ScheduleSettings | None = None
) -> NewServer:
    """A validated server from the operator's settings; what was not given takes the
    deployment's schedule defaults (SYNC_EXPRESS_INTERVAL, SYNC_COMPLETE_AT)."""
    if not _NAME.match(name):
        raise InvalidInput("name", "use 1-63 letters, digits, '.', '_' or '-'")
    if changes.backend is None:
        raise InvalidInput("backend", "required: ews or graph")
    if changes.url is None:
        raise InvalidInput("url", "required")
    base = NewServer(name=name, backend=changes.backend, url=changes.url, auth_kind="basic")
    if defaults is not None:
        base = replace(
            base,
            express_interval=timedelta(seconds=defaults.express_interval),
            complete_at=defaults.complete_at,
        )
    return _apply(base, changes, fresh=True)


def updated_server(current: Server, changes: ServerChanges) -> NewServer:
    """`current` with the given changes applied, validated as a whole.

    Naming a new secret source replaces the old one (an env var replaces a file and back; a
    certificate file replaces a secret and back).
    """
    kept = {f.name: getattr(current, f.name) for f in fields(NewServer)}
    sources = (*_SECRET_SOURCES, "certificate_file")
    for given in sources:
        if getattr(changes, given) is not None:
            kept.update({other: None for other in sources if other != given})
    return _apply(NewServer(**kept), changes, fresh=False)


def _apply(base: NewServer, changes: ServerChanges, *, fresh: bool) -> NewServer:
    given = {k: v for k, v in asdict(changes).items() if v is not None}
    typed = {k: _CONVERT.get(k, _same)(k, v) for k, v in given.items()}
    server = replace(base, **typed)
    if "auth_kind" not in given and (fresh or "tenant" in given or "client_id" in given):
        server = replace(server, auth_kind=_implied_auth(server))
    for name in _OAUTH_ONLY:
        if name in given and server.auth_kind != "oauth":
            raise InvalidInput(name, "is an oauth setting (give --tenant and --client-id)")
    return _check(_drop_unused_auth(server))


def _implied_auth(server: NewServer) -> str:
    if server.tenant or server.client_id or server.backend == "graph":
        return "oauth"
    return "basic" if server.auth_kind == "oauth" else server.auth_kind


def _drop_unused_auth(server: NewServer) -> NewServer:
    if server.auth_kind == "oauth":
        return replace(server, username=None)
    return replace(
        server, tenant=None, client_id=None, authority=None, scope=None, certificate_file=None
    )


def _check(server: NewServer) -> NewServer:
    if server.backend not in BACKENDS:
        raise InvalidInput("backend", f"{server.backend!r} is not one of ews, graph")
    if server.auth_kind not in AUTH_KINDS:
        raise InvalidInput("auth_kind", f"{server.auth_kind!r} is not one of basic, ntlm, oauth")
    if server.backend == "graph" and server.auth_kind != "oauth":
        raise InvalidInput("auth_kind", "Microsoft Graph needs oauth (--tenant, --client-id)")
    _check_url("url", server.url)
    if server.authority is not None:
        _check_url("authority", server.authority)
    if server.auth_kind == "oauth":
        for name in ("tenant", "client_id"):
            if not getattr(server, name):
                raise InvalidInput(name, "required for oauth")
    elif not server.username:
        raise InvalidInput("username", f"required for {server.auth_kind} authentication")
    if server.secret_env and server.secret_file:
        raise InvalidInput("secret_env", "give either an environment variable or a file, not both")
    if server.certificate_file and (server.secret_env or server.secret_file):
        raise InvalidInput("certificate_file", "give a client secret or a certificate, not both")
    if not (server.secret_env or server.secret_file or server.certificate_file):
        hint = " (or the certificate file)" if server.auth_kind == "oauth" else ""
        raise InvalidInput(
            "secret_env", f"name the environment variable (or file) of the secret{hint}"
        )
    return server


def _check_url(field: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field, f"{value!r} is not an http(s) URL")


def _same(_: str, value: Any) -> Any:
    return value


def _scope(field: str, value: str) -> str:
    """A token scope: `https://<resource>/.default`, what app-only tokens are asked for."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or not parts.path.endswith("/.default"):
        raise InvalidInput(
            field, f"{value!r} is not an https URL ending in /.default "
            "(e.g. https://graph.microsoft.us/.default)"
        )  # fmt: skip
    if parts.query or parts.fragment:
        raise InvalidInput(field, f"{value!r} has a query or fragment; a scope has neither")
    return value


def _path(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidInput(field, "is empty; give the path of the PEM file")
    return value.strip()


def _env_name(field: str, value: str) -> str:
    if not _ENV_NAME.match(value):
        # The value is not echoed: a password typed here by mistake must not be printed back.
        raise InvalidInput(field, "is not an environment variable name (letters, digits, _)")
    return value


def _time_zone(field: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            field, f"{value!r} is not an IANA time zone (e.g. Europe/Paris)"
        ) from None
    return value


def _interval(field: str, value: str | float) -> timedelta:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None
    if not 60 <= seconds <= 86400:
        raise InvalidInput(field, "must be between 1m and 1d")
    return timedelta(seconds=seconds)


def _local_time(field: str, value: str) -> time:
    match = _HHMM.match(value.strip())
    if not match:
        raise InvalidInput(field, f"{value!r} is not a local time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def _positive(field: str, value: float) -> float:
    if not value > 0:
        raise InvalidInput(field, "must be greater than 0")
    return value


def _concurrency(field: str, value: int) -> int:
    if not 1 <= value <= 10_000:
        raise InvalidInput(field, "must be between 1 and 10000")
    return value


_CONVERT: dict[str, Any] = {
    "secret_env": _env_name,
    "scope": _scope,
    "certificate_file": _path,
    "time_zone": _time_zone,
    "express_interval": _interval,
    "complete_at": _local_time,
    "max_concurrency": _concurrency,
    "rate_per_second": lambda f, v: float(_positive(f, v)),
}


def describe(server: Server) -> dict[str, Any]:
    """A server as JSON-ready values (no secret: only where it comes from)."""
    out = {f.name: getattr(server, f.name) for f in fields(Server)}
    out["express_interval"] = _format_interval(server.express_interval)
    out["complete_at"] = server.complete_at.strftime("%H:%M")
    return out


def _format_interval(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
