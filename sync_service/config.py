"""Service configuration: the only module that reads the environment.

Every setting is a `SYNC_` environment variable with a flat name (`SYNC_DATABASE_URL`,
`SYNC_MAX_CONCURRENT_MAILBOXES`); in code they are grouped by concern. Durations accept
`30s`, `15m`, `2h`, `1d` (or plain seconds). Secrets come from the variable itself or from
a file named by `<VAR>_FILE` (the container-secrets habit) and are held as `SecretStr`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync_service.errors import FieldError, OperatorError
from sync_service.planning.field_map import BUILT_IN, FieldMap, FieldMapError, parse
from sync_service.planning.shared import OwnerDelete

ENV_PREFIX = "SYNC_"
# Never a server's secret, whatever SYNC_SECRET_DIR says: /proc/self/environ is the service's
# whole environment, its database URL and API token included.
NEVER_READ = Path("/proc")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`90`, `30s`, `15m`, `2h`, `1d`, `250ms` -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 15m, 2h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Role(StrEnum):
    API = "api"
    ENGINE = "engine"
    DISPATCHER = "dispatcher"


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


def _read_secret(value: SecretStr | None, file: Path | None, name: str) -> SecretStr | None:
    """Prefer the variable; else read the file named by `<name>_FILE`."""
    if value is not None or file is None:
        return value
    try:
        return SecretStr(file.read_text().strip())
    except OSError as exc:
        raise ValueError(f"cannot read {name}_FILE {file}: {exc.strerror}") from exc


class DatabaseSettings(_Group):
    database_url: SecretStr | None = None
    database_url_file: Path | None = None
    data_dir: Path = Path(".sync-data")
    database_pool_size: int = Field(default=20, ge=2, le=1000)

    def resolved_url(self) -> str | None:
        """The configured URL (from the variable or its file), or None for the embedded one."""
        secret = _read_secret(self.database_url, self.database_url_file, "SYNC_DATABASE_URL")
        return secret.get_secret_value() if secret else None


class ApiSettings(_Group):
    api_bind: str = "127.0.0.1:8080"
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    # Public by default so that a Prometheus without credentials can scrape; the answer holds
    # only counts (no addresses), and is served from gauges refreshed every metrics_refresh
    # seconds, so the scrape rate never reaches the database. Set false to require the token.
    metrics_public: bool = True
    metrics_refresh: Seconds = 15.0

    @field_validator("api_bind")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value

    @property
    def host(self) -> str:
        return self.api_bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.api_bind.rpartition(":")[2])

    def resolved_token(self) -> SecretStr | None:
        return _read_secret(self.api_token, self.api_token_file, "SYNC_API_TOKEN")


class PushSettings(_Group):
    """Graph change notifications: where Graph can reach this service, and the shared secret.

    Unset URL: no Graph subscriptions; Graph mailboxes are kept fresh by the express sweep.
    """

    graph_notification_url: str | None = None
    graph_client_state: SecretStr | None = None
    graph_client_state_file: Path | None = None

    @field_validator("graph_notification_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") if value else value

    def resolved_client_state(self) -> SecretStr | None:
        state = _read_secret(
            self.graph_client_state, self.graph_client_state_file, "SYNC_GRAPH_CLIENT_STATE"
        )
        if self.graph_notification_url and state is None:
            raise ValueError(
                "SYNC_GRAPH_CLIENT_STATE: required when SYNC_GRAPH_NOTIFICATION_URL is set"
            )
        return state


class OutboundSettings(_Group):
    """Where a server's secret may come from, and where the service may connect.

    A server names its secret by environment variable or file; only names starting with
    secret_env_prefix and files inside secret_dir are read, so that whoever holds the API
    token cannot point a server at the database URL, the API token or /proc/self/environ.
    Link-local (cloud metadata) and unspecified addresses are never connected to; loopback and
    private ranges are refused too when outbound_deny_private is on (checked on every
    connection, after DNS resolution).
    """

    secret_env_prefix: str = "EXCHANGE_"  # noqa: S105 - a name prefix, not a secret
    secret_dir: Path = Path("/run/secrets")
    outbound_deny_private: bool = False

    @field_validator("secret_env_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) or value.upper().startswith(
            ENV_PREFIX
        ):
            raise ValueError(f"{value!r} must be a variable-name prefix not starting {ENV_PREFIX}")
        return value

    @field_validator("secret_dir")
    @classmethod
    def _check_dir(cls, value: Path) -> Path:
        # The directory need not exist yet (it may be mounted later); it must not be a place
        # that holds what is not a server's secret: the whole tree, or the kernel's /proc.
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} is not an absolute path")
        resolved = value.resolve()
        if resolved == Path("/") or resolved.is_relative_to(NEVER_READ):
            raise ValueError(f"{str(value)!r} cannot hold servers' secrets; name a directory")
        return value


class LimitsSettings(_Group):
    max_concurrent_mailboxes: int = Field(default=500, ge=1, le=100_000)
    max_consecutive_failures: int = Field(default=10, ge=1)
    pass_timeout: Seconds = 1800.0
    job_lease: Seconds = 60.0
    http_timeout: Seconds = 60.0
    delete_guard_share: float = Field(default=0.2, gt=0, le=1)
    delete_guard_count: int = Field(default=50, ge=0)


class ScheduleSettings(_Group):
    express_interval: Seconds = 900.0
    complete_at: time = time(2, 0)
    complete_window: Seconds = 7200.0
    dispatcher_poll: Seconds = 5.0
    auto_recover: bool = False


class ConflictPolicyName(StrEnum):
    CRM_WINS = "crm_wins"
    EXCHANGE_WINS = "exchange_wins"
    NEWEST_WINS = "newest_wins"
    MERGE = "merge"


class ConflictSettings(_Group):
    """How a change made on both sides is resolved, per entity (merge uses the fallback)."""

    contacts_policy: ConflictPolicyName = ConflictPolicyName.CRM_WINS
    appointments_policy: ConflictPolicyName = ConflictPolicyName.CRM_WINS
    tasks_policy: ConflictPolicyName = ConflictPolicyName.CRM_WINS
    merge_fallback: ConflictPolicyName = ConflictPolicyName.CRM_WINS
    # The owner's Outlook delete of a record other users hold (planning/shared.py).
    shared_owner_delete: OwnerDelete = OwnerDelete.KEEP

    @field_validator("merge_fallback")
    @classmethod
    def _not_merge(cls, value: ConflictPolicyName) -> ConflictPolicyName:
        if value == ConflictPolicyName.MERGE:
            raise ValueError("the merge fallback must be crm_wins, exchange_wins or newest_wins")
        return value


class MeetingInvitations(StrEnum):
    NEVER = "never"
    CRM_ORGANIZED = "crm_organized"


class MeetingSettings(_Group):
    """Whether a sync write may make Exchange mail meeting invitations, updates, cancellations.

    `never` (default): nobody is ever mailed. `crm_organized`: meetings the CRM organizes
    (created by the sync, with the CRM's attendees) invite, update and cancel as Outlook would;
    meetings organized in Outlook are still never changed in a way that mails their attendees.
    It acts on Graph servers; EWS writes every calendar item with `SendToNone` either way.
    """

    meeting_invitations: MeetingInvitations = MeetingInvitations.NEVER

    @property
    def send_invitations(self) -> bool:
        return self.meeting_invitations is MeetingInvitations.CRM_ORGANIZED


class MappingSettings(_Group):
    """The operator's field map: a TOML file (deploy/field-map.toml is the built-in map written
    out); unset, the built-in mapping. Read and checked at start-up (`load_settings`)."""

    field_map_file: Path | None = None


class RetentionSettings(_Group):
    retention_days: int = Field(default=14, ge=1)


class LoggingSettings(_Group):
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


class ProcessSettings(_Group):
    roles: str = "api,engine,dispatcher"
    engine_name: str | None = None

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: str) -> str:
        names = [r.strip() for r in value.split(",") if r.strip()]
        unknown = [n for n in names if n not in {r.value for r in Role}]
        if unknown or not names:
            raise ValueError(f"unknown role(s) {unknown or value!r}; use api, engine, dispatcher")
        return ",".join(names)

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles.split(","))


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings
    api: ApiSettings
    push: PushSettings
    outbound: OutboundSettings
    limits: LimitsSettings
    schedule: ScheduleSettings
    conflicts: ConflictSettings
    meetings: MeetingSettings
    retention: RetentionSettings
    logging: LoggingSettings
    process: ProcessSettings
    mapping: MappingSettings = dataclasses.field(default_factory=MappingSettings)
    field_map: FieldMap = BUILT_IN  # the map SYNC_FIELD_MAP_FILE names, read by load_settings


_GROUPS: dict[str, type[_Group]] = {
    "database": DatabaseSettings,
    "api": ApiSettings,
    "push": PushSettings,
    "outbound": OutboundSettings,
    "limits": LimitsSettings,
    "schedule": ScheduleSettings,
    "conflicts": ConflictSettings,
    "meetings": MeetingSettings,
    "retention": RetentionSettings,
    "logging": LoggingSettings,
    "process": ProcessSettings,
    "mapping": MappingSettings,
}


class ConfigError(OperatorError):
    """An invalid setting; the message names the variable and what is wrong."""


def load_settings() -> Settings:
    """Read every group from the environment, or raise ConfigError for the first bad value."""
    groups: dict[str, Any] = {}
    for name, cls in _GROUPS.items():
        try:
            groups[name] = cls()
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None
    settings = Settings(**groups, field_map=read_field_map(groups["mapping"]))
    try:  # secret files are read now, so that a missing file fails at start-up
        settings.database.resolved_url()
        settings.api.resolved_token()
        settings.push.resolved_client_state()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings


def read_field_map(group: MappingSettings) -> FieldMap:
    """The field map SYNC_FIELD_MAP_FILE names, checked; ConfigError names file, line and key."""
    path = group.field_map_file
    if path is None:
        return BUILT_IN
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"SYNC_FIELD_MAP_FILE: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"SYNC_FIELD_MAP_FILE: {path} is not UTF-8 text") from None
    try:
        return parse(text, str(path))
    except FieldMapError as exc:
        raise ConfigError(f"SYNC_FIELD_MAP_FILE: {exc}") from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if "token" in field or "url" in field else f" (got {value!r})"
    return f"{ENV_PREFIX}{field.upper()}: {message}{shown}"


def documented_settings() -> list[tuple[str, str]]:
    """(variable, default) for every setting: the README's configuration table is built from it."""
    rows = []
    for cls in _GROUPS.values():
        for field, info in cls.model_fields.items():
            default = "" if info.default is None else str(info.default)
            rows.append((f"{ENV_PREFIX}{field.upper()}", default))
    return rows


class SecretSourceRefused(ConfigError, FieldError):
    """A server names a secret source the deployment's policy does not allow; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, f"{field}: {message}")


def allowed_secret_env(policy: OutboundSettings, name: str) -> str:
    """`name` if a server may take its secret from that environment variable.

    The service's own variables are refused in any case: pydantic-settings reads them whatever
    their case, so `sync_api_token` is the API token too.
    """
    prefix = policy.secret_env_prefix
    if name.upper().startswith(ENV_PREFIX):
        raise SecretSourceRefused("secret_env", f"{ENV_PREFIX}* variables are the service's own")
    if not name.startswith(prefix) or name == prefix:
        raise SecretSourceRefused(
            "secret_env", f"must start with {prefix} (SYNC_SECRET_ENV_PREFIX)"
        )
    return name


def allowed_secret_path(policy: OutboundSettings, field: str, path: str) -> Path:
    """The real path of `path` if it lies inside the secret directory, symlinks followed.

    The refusal is one message whether the path exists or not, is readable or not: the file is
    not opened before it is allowed, so a refused name tells the caller nothing about it.
    """
    refused = SecretSourceRefused(
        field, f"must be an absolute path inside {policy.secret_dir} (SYNC_SECRET_DIR)"
    )
    given = Path(path)
    if not given.is_absolute():
        raise refused
    try:
        directory, resolved = policy.secret_dir.resolve(), given.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        raise refused from None
    inside = resolved.is_relative_to(directory) and resolved != directory
    if not inside or resolved.is_relative_to(NEVER_READ):
        raise refused
    return resolved


def read_named_secret(policy: OutboundSettings, env_name: str | None, file: str | None) -> str:
    """A server's secret, from the environment variable or file its configuration names.

    Servers store where their secret lives, never the secret; this is where it is read, after
    the same policy checks as when the server was added (a row edited by SQL is no way round
    them). The file read is the real path that was checked, not the name resolved once more.
    """
    import os

    if env_name:
        value = os.environ.get(allowed_secret_env(policy, env_name))
        if value is None:
            raise ConfigError(
                f"secret_env: {env_name}: the environment variable named by the server is unset"
            )
        return value
    if file:
        path = allowed_secret_path(policy, "secret_file", file)
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"secret_file: {file}: cannot read the server's secret file: {exc.strerror}"
            ) from None
    raise ConfigError("secret_env: the server names no secret (secret_env or secret_file)")
