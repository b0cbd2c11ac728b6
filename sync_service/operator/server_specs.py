"""Validation of a sync target's settings (pure): what `servers add|update` and the API accept.

Secrets are never stored: a server names the environment variable or the file that holds its
password or client secret, or (oauth) the PEM file of its client certificate and key, and the
service reads it when it connects. Those names are checked against the deployment's policy
(SYNC_SECRET_ENV_PREFIX, SYNC_SECRET_DIR) here and again when the secret is read.

Every value is refused before it is stored if it could not be used safely later: control
characters (they would reach the text log raw), credentials inside a URL (they would be stored
and echoed by every listing), numbers that are not finite (JSON has no Infinity), oversized
strings.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, fields, replace
from datetime import time, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_service.config import (
    OutboundSettings,
    ScheduleSettings,
    SecretSourceRefused,
    allowed_secret_env,
    allowed_secret_path,
    parse_duration,
)
from sync_service.db.store import NewServer, Server
from sync_service.errors import FieldError

BACKENDS = ("ews", "graph")
AUTH_KINDS = ("basic", "ntlm", "negotiate", "oauth")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # ECMA-262 and Python (with fullmatch)
_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# Unicode categories never part of a setting: controls (C0, DEL, C1), invisible format
# characters, lone surrogates (not encodable, so not storable), line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# The longest value each string field takes; any field not named takes _DEFAULT_LENGTH.
_DEFAULT_LENGTH = 256
_MAX_LENGTH = {"url": 2048, "authority": 2048, "scope": 2048}
_MAX_LENGTH.update(dict.fromkeys(("secret_file", "ca_file", "certificate_file"), 4096))
_MAX_RATE = 1_000_000.0


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
_FILES = ("secret_file", "certificate_file", "ca_file")


def new_server(
    name: str,
    changes: ServerChanges,
    defaults: ScheduleSettings | None = None,
    policy: OutboundSettings | None = None,
) -> NewServer:
    """A validated server from the operator's settings; what was not given takes the
    deployment's schedule defaults (SYNC_EXPRESS_INTERVAL, SYNC_COMPLETE_AT).

    `policy` says where secrets may come from; None: the deployment's, from the environment.
    """
    _check_text("name", name)
    if not _NAME.fullmatch(name):
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
    return _check_sources(_apply(base, changes, fresh=True), policy)


def updated_server(
    current: Server, changes: ServerChanges, policy: OutboundSettings | None = None
) -> NewServer:
    """`current` with the given changes applied, validated as a whole (the secret sources it
    keeps too: a server cannot be updated while it names a source the policy refuses).

    Naming a new secret source replaces the old one (an env var replaces a file and back; a
    certificate file replaces a secret and back).
    """
    kept = {f.name: getattr(current, f.name) for f in fields(NewServer)}
    sources = (*_SECRET_SOURCES, "certificate_file")
    for given in sources:
        if getattr(changes, given) is not None:
            kept.update({other: None for other in sources if other != given})
    return _check_sources(_apply(NewServer(**kept), changes, fresh=False), policy)


def _apply(base: NewServer, changes: ServerChanges, *, fresh: bool) -> NewServer:
    given = {k: v for k, v in asdict(changes).items() if v is not None}
    for key, value in given.items():
        if isinstance(value, str):
            _check_text(key, value)
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
        kinds = ", ".join(AUTH_KINDS)
        raise InvalidInput("auth_kind", f"{server.auth_kind!r} is not one of {kinds}")
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


def _check_sources(server: NewServer, policy: OutboundSettings | None) -> NewServer:
    """Refuse a secret source outside the deployment's allow-list (the stored value is the one
    given: a Kubernetes secret is a symlink that changes target on rotation)."""
    policy = policy if policy is not None else OutboundSettings()
    try:
        if server.secret_env:
            allowed_secret_env(policy, server.secret_env)
        for name in _FILES:
            value = getattr(server, name)
            if value:
                allowed_secret_path(policy, name, value)
    except SecretSourceRefused as exc:
        raise InvalidInput(exc.field, exc.message) from None
    return server


def _check_text(field: str, value: str) -> None:
    """No character that would reach a log or a terminal as anything but text, and a bound."""
    limit = _MAX_LENGTH.get(field, _DEFAULT_LENGTH)
    if len(value) > limit:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {limit}")
    bad = next((c for c in value if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        # The code point is named, not the value: it may be a secret typed in the wrong field.
        raise InvalidInput(field, f"contains U+{ord(bad):04X}, a control or invisible character")


def _url_parts(field: str, value: str) -> SplitResult:
    """The parts of an http(s) URL; credentials in it are refused without echoing them."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        raise InvalidInput(field, "must not contain a user name or password (user:pw@host)")
    if parts is None or any(c.isspace() for c in value):
        raise InvalidInput(field, "is not a valid URL")
    return parts


def _check_url(field: str, value: str) -> None:
    parts = _url_parts(field, value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field, f"{_shown(value)} is not an http(s) URL")


def _shown(url: str) -> str:
    """`url` for an error message, unless it may hold a password (`http:user:pw@host` is no
    userinfo to urlsplit, yet a password all the same)."""
    return "the value" if "@" in url else repr(url)


def _same(_: str, value: Any) -> Any:
    return value


def _scope(field: str, value: str) -> str:
    """A token scope: `https://<resource>/.default`, what app-only tokens are asked for."""
    parts = _url_parts(field, value)
    if parts.scheme != "https" or not parts.hostname or not parts.path.endswith("/.default"):
        raise InvalidInput(
            field, f"{_shown(value)} is not an https URL ending in /.default "
            "(e.g. https://graph.microsoft.us/.default)"
        )  # fmt: skip
    if parts.query or parts.fragment:
        raise InvalidInput(field, f"{_shown(value)} has a query or fragment; a scope has neither")
    return value


def _path(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidInput(field, "is empty; give the path of the file")
    return value.strip()


def _ca_path(field: str, value: str) -> str | None:
    """An empty CA file clears it: the system's trust store alone is used again."""
    return _path(field, value) if value.strip() else None


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


def _rate(field: str, value: float) -> float:
    # NaN compares false both ways and Infinity is not JSON: both are refused by name.
    try:
        rate = float(value)
    except OverflowError:  # an integer beyond any float
        rate = math.inf
    if not math.isfinite(rate):
        raise InvalidInput(field, "must be a finite number")
    if not 0 < rate <= _MAX_RATE:
        raise InvalidInput(field, f"must be greater than 0 and at most {_MAX_RATE:.0f}")
    return rate


def _concurrency(field: str, value: int) -> int:
    if not 1 <= value <= 10_000:
        raise InvalidInput(field, "must be between 1 and 10000")
    return value


_CONVERT: dict[str, Any] = {
    "secret_env": _env_name,
    "scope": _scope,
    "secret_file": _path,
    "certificate_file": _path,
    "ca_file": _ca_path,
    "time_zone": _time_zone,
    "express_interval": _interval,
    "complete_at": _local_time,
    "max_concurrency": _concurrency,
    "rate_per_second": _rate,
}


def describe(server: Server) -> dict[str, Any]:
    """A server as JSON-ready values (no secret: only where it comes from)."""
    out = {f.name: getattr(server, f.name) for f in fields(Server)}
    for name in ("url", "authority"):  # rows stored before credentials in URLs were refused
        out[name] = _without_userinfo(out[name])
    out["express_interval"] = _format_interval(server.express_interval)
    out["complete_at"] = server.complete_at.strftime("%H:%M")
    return out


def _without_userinfo(url: str | None) -> str | None:
    if url is None or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _format_interval(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
