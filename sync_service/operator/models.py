"""The admin API's inputs and answers as pydantic models: they validate the requests and are
the source of the OpenAPI document's schemas, so the document cannot drift from the checks.

The models check the shape of a request (types, unknown fields, required ones) and bound
every value: each string has a maximum length and holds no control characters, each number is
finite, each list is bounded, so that no input reaches the database (or a log line) in a form
it would refuse or garble. The values that the CLI may send too (modes, states, page sizes,
server settings) stay checked by `Operations`, once for both surfaces; the schemas list their
choices from the same constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeVar, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from sync_service.config import parse_duration
from sync_service.db.item_errors import STATUSES
from sync_service.db.store import ENTITY_MODES, MAILBOX_STATES
from sync_service.operator.csv_import import (
    ADDRESS_MAX,
    IDENTIFIER_MAX,
    NAME_MAX,
    shown,
    text_problem,
)
from sync_service.operator.entity_names import ENTITY_CHOICES
from sync_service.operator.operations import (
    ENTITIES,
    ERROR_KINDS,
    ERROR_STATUSES,
    MAX_PAGE,
    SYNC_MODES,
    InvalidInput,
)
from sync_service.operator.schedules import MAX_GROUPS
from sync_service.operator.server_specs import AUTH_KINDS, BACKENDS

M = TypeVar("M", bound="Input")
NEVER_STORED = "secrets are never stored: give secret_env or secret_file"
# Words of our own for the common failures; any other keeps pydantic's message.
MESSAGES = {
    "missing": "required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "string_unicode": "must be Unicode text (it holds a lone surrogate)",
    "finite_number": "must be a finite number",
}
# Bounds of the other strings: far above any real value, far below what the database (one
# index row: 2,704 bytes) or a log line should carry.
SETTING_MAX = 256  # a user name, tenant, client id, environment variable, zone, duration
URL_MAX = 2048
PATH_MAX = 4096  # PATH_MAX of Linux
REASON_MAX = 1000
CURSOR_MAX = 128
LIST_MAX = 100  # groups in one request
BIGINT_MAX = 2**63 - 1  # a job id is a PostgreSQL bigint


def _plain(value: str) -> str:
    # The length was checked first (StringConstraints): what is left is control characters.
    problem = text_problem(value, len(value))
    if problem is not None:
        raise ValueError(problem)
    return value


Plain = AfterValidator(_plain)
# What `_plain` checks, said in the document (the schema only: the validator does the check).
NO_CONTROLS = r"^[^\u0000-\u001f\u007f-\u009f]*$"
PlainDoc = Field(json_schema_extra={"pattern": NO_CONTROLS})
Name = Annotated[str, StringConstraints(max_length=NAME_MAX), Plain, PlainDoc]
Address = Annotated[str, StringConstraints(max_length=ADDRESS_MAX), Plain, PlainDoc]
Identifier = Annotated[str, StringConstraints(max_length=IDENTIFIER_MAX), Plain, PlainDoc]
Setting = Annotated[str, StringConstraints(max_length=SETTING_MAX), Plain, PlainDoc]
Url = Annotated[str, StringConstraints(max_length=URL_MAX), Plain, PlainDoc]
FilePath = Annotated[str, StringConstraints(max_length=PATH_MAX), Plain, PlainDoc]
Reason = Annotated[str, StringConstraints(max_length=REASON_MAX), Plain, PlainDoc]
Cursor = Annotated[str, StringConstraints(max_length=CURSOR_MAX), Plain, PlainDoc]
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=IDENTIFIER_MAX), Plain, PlainDoc
]


def _enum(choices: Iterable[str]) -> WithJsonSchema:
    """The documented choices of a string (Operations checks them, from the same constants)."""
    return WithJsonSchema({"type": "string", "enum": [str(c) for c in choices]})


BackendChoice = Annotated[Setting, _enum(BACKENDS)]
AuthChoice = Annotated[Setting, _enum(AUTH_KINDS)]
ModeChoice = Annotated[Setting, _enum(ENTITY_MODES)]
StateChoice = Annotated[Setting, _enum(MAILBOX_STATES)]
SyncModeChoice = Annotated[Setting, _enum(SYNC_MODES)]
EntityChoice = Annotated[Setting, _enum(ENTITIES)]
EntityWord = Annotated[Setting, _enum(ENTITY_CHOICES)]
ErrorKindChoice = Annotated[Setting, _enum(ERROR_KINDS)]
ErrorStatusChoice = Annotated[Setting, _enum(ERROR_STATUSES)]


class Input(BaseModel):
    """A request's input; `refused` gives the reason for fields refused with a hint."""

    model_config = ConfigDict(extra="forbid", strict=True)
    refused: ClassVar[Mapping[str, str]] = {}


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """`data` as `model`, or InvalidInput naming the offending field as the API always has."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(model, exc.errors()) from None


def _invalid(model: type[Input], errors: list[ErrorDetails]) -> InvalidInput:
    # Unknown fields first: they were refused before any value was looked at.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = error["loc"]
    field = str(loc[0]) if loc else "body"
    message = _message(model, error, field)
    return InvalidInput(field, f"item {loc[1]}: {message}" if len(loc) > 1 else message)


def _message(model: type[Input], error: ErrorDetails, field: str) -> str:
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields))
        return model.refused.get(field, f"unknown field; allowed: {allowed or 'none'}")
    ctx = error.get("ctx", {})
    if error["type"] == "value_error":
        return str(ctx.get("error", error["msg"]))
    if error["type"] == "string_too_long":
        return f"at most {ctx['max_length']} characters"
    if error["type"] == "too_long":
        return f"at most {ctx['max_length']} items"
    return MESSAGES.get(error["type"], error["msg"])


# request bodies
class ServerSettings(Input):
    """A server's settings; a field not given keeps its value (or takes the default).

    Secrets are never sent: name the environment variable (secret_env) or the file."""

    refused: ClassVar[Mapping[str, str]] = dict.fromkeys(
        ("password", "secret", "client_secret", "token"), NEVER_STORED
    )
    backend: BackendChoice | None = None
    url: Url | None = Field(None, json_schema_extra={"format": "uri"})
    auth_kind: AuthChoice | None = Field(None, description="default: implied by the others")
    username: Setting | None = None
    tenant: Setting | None = None
    client_id: Setting | None = None
    authority: Url | None = Field(None, json_schema_extra={"format": "uri"})
    secret_env: Setting | None = None
    secret_file: FilePath | None = None
    ca_file: FilePath | None = None
    time_zone: Setting | None = Field(None, examples=["Europe/Paris"])
    express_interval: Setting | None = Field(None, examples=["15m"])
    complete_at: Setting | None = Field(None, description="local time, HH:MM", examples=["02:00"])
    max_concurrency: int | None = Field(None, description="concurrent requests, 1-10000")
    rate_per_second: float | None = Field(
        None, description="requests per second, above 0", allow_inf_nan=False
    )
    scope: Url | None = Field(
        None,
        description="oauth token scope, https://<resource>/.default; default: the backend's",
        examples=["https://graph.microsoft.us/.default"],
    )
    certificate_file: FilePath | None = Field(
        None, description="oauth: PEM file with the client certificate and its key (a path)"
    )


class NewServerInput(ServerSettings):
    """A new server: its name, backend and url, and any other settings (secrets by name)."""

    name: Name = Field(min_length=1, description="letters, digits, '.', '_' or '-'")


class ServerUpdate(ServerSettings):
    """The settings to change; the others keep their values. A server keeps its name."""

    refused: ClassVar[Mapping[str, str]] = {
        **ServerSettings.refused,
        "name": "a server cannot be renamed",
    }


class ProbeInput(Input):
    mailbox: Address | None = Field(None, description="default: the server's first active mailbox")


class MailboxOptions(Input):
    group: Identifier | None = Field(None, description="null removes the mailbox from its group")
    contacts: ModeChoice | None = None
    calendar: ModeChoice | None = None
    tasks: ModeChoice | None = None


class NoInput(Input):
    """A request that takes no fields."""


class DisableInput(Input):
    reason: Reason | None = Field(None, description="recorded as the state's reason")


class RecoverInput(Input):
    dry_run: bool | None = None


class MoveInput(Input):
    """Where Exchange moved the mailbox to (sync_service/operator/moves.py)."""

    server: Name = Field(min_length=1, description="the server that holds the mailbox now")


class SyncInput(Input):
    """A mailbox, or groups and/or a server."""

    mailbox: Address | None = None
    groups: list[GroupName] | None = Field(None, max_length=LIST_MAX)
    server: Name | None = None
    mode: SyncModeChoice | None = Field(None, description="default: express")
    dry_run: bool | None = None
    entities: list[EntityWord] | None = Field(
        None,
        max_length=len(ENTITY_CHOICES),
        description="the entities the passes cover (default: every entity)",
    )


class ScheduleInput(Input):
    """An express schedule (sync_service/operator/schedules.py): what it covers, how often."""

    server: Name | None = Field(None, description="this server's mailboxes (null: every server)")
    groups: list[GroupName] | None = Field(
        None, max_length=MAX_GROUPS, description="only these server groups' mailboxes"
    )
    entities: list[EntityWord] | None = Field(
        None, max_length=len(ENTITY_CHOICES), description="only these entities (null: every one)"
    )
    every: Setting = Field(
        min_length=1, description="express interval, e.g. 5m or 1h; off: no express sweep"
    )


class ItemErrorAction(Input):
    """Item errors to retry or acknowledge: `ids`, or `all` with filters (none: every one)."""

    ids: list[Annotated[int, Field(ge=1, le=BIGINT_MAX)]] | None = Field(
        None, description="item error ids", min_length=1, max_length=MAX_PAGE
    )
    all: bool | None = Field(None, description="every item error the filters match")
    mailbox: Address | None = Field(None, description="with all: this mailbox's only")
    server: Name | None = Field(None, description="with all: this server's mailboxes only")
    entity: EntityChoice | None = None
    kind: ErrorKindChoice | None = None
    reason: Reason | None = Field(None, description="with all: the reason contains this text")
    since: Setting | None = Field(None, description="with all: recorded within", examples=["1h"])
    status: ErrorStatusChoice | None = Field(
        None, description="with all: retry takes any not yet retried, acknowledge open ones"
    )


# query parameters: every value arrives as a string
def _integer(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{shown(raw)} is not an integer") from None


def _duration(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        return timedelta(seconds=parse_duration(raw)) if raw else None
    except OverflowError:
        raise ValueError(f"{shown(raw)} is too long a duration") from None


def _job_ids(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ValueError("a comma-separated list of job ids") from None
    if not ids:
        raise ValueError("required: a comma-separated list of job ids")
    return ids


def duration_value(field: str, raw: str | None) -> timedelta | None:
    """A body's duration ("1h") as a timedelta, or InvalidInput naming `field`."""
    if not raw:
        return None
    try:
        value = timedelta(seconds=parse_duration(raw))
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(field, str(exc) or "not a duration") from None
    if value > SINCE_MAX:
        raise InvalidInput(field, f"at most {SINCE_MAX.days} days")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
Duration = Annotated[
    timedelta | None,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "examples": ["1h", "30m", "2d"]}),
]
SINCE_MAX = timedelta(days=3660)  # ten years back is before any run of this service
PAGE = f"page size (1-{MAX_PAGE}, default 100)"


class Query(Input):
    """Query parameters; unknown ones are ignored, as browsers and proxies add their own.

    A list field is given by repeating the parameter, except those in `comma_separated`."""

    model_config = ConfigDict(extra="ignore", strict=False)
    comma_separated: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def repeated(cls, name: str) -> bool:
        field = cls.model_fields[name]
        return get_origin(field.annotation) is list and name not in cls.comma_separated


class MailboxFilter(Query):
    state: StateChoice | None = Field(None, description="mailbox state")
    group: list[Identifier] = Field(
        default_factory=list, description="server group (repeatable)", max_length=LIST_MAX
    )
    server: Name | None = Field(None, description="server name")
    limit: Integer = Field(100, description=PAGE)
    cursor: Cursor | None = Field(None, description="next_cursor of the previous page")


class ScheduleFilter(Query):
    server: Name | None = Field(None, description="those covering this server")


class RunFilter(Query):
    mailbox: Address | None = Field(None, description="SMTP address")
    since: Duration = Field(None, description="how far back, e.g. 1h", le=SINCE_MAX)
    limit: Integer = Field(100, description=PAGE)


class ItemErrorFilter(Query):
    mailbox: Address | None = Field(None, description="SMTP address")
    server: Name | None = Field(None, description="server name")
    entity: EntityChoice | None = Field(None, description="contact, appointment or task")
    kind: ErrorKindChoice | None = Field(None, description="refused or ambiguous_match")
    reason: Reason | None = Field(None, description="the reason contains this text (any case)")
    since: Duration = Field(None, description="recorded within, e.g. 1h", le=SINCE_MAX)
    status: ErrorStatusChoice | None = Field(None, description="default: open")
    limit: Integer = Field(100, description=PAGE)
    cursor: Cursor | None = Field(None, description="next_cursor of the previous page")


class JobQuery(Query):
    comma_separated: ClassVar[frozenset[str]] = frozenset({"ids"})
    ids: Annotated[list[Annotated[int, Field(ge=1, le=BIGINT_MAX)]], BeforeValidator(_job_ids)] = (
        Field(description="comma-separated job ids", max_length=MAX_PAGE)
    )


# answers: documented here, built by Operations (tests hold the two together)
class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(Answer):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="the offending input field")


class Server(Answer):
    id: int
    name: str
    backend: BackendChoice
    url: str
    auth_kind: AuthChoice
    username: str | None
    tenant: str | None
    client_id: str | None
    authority: str | None
    secret_env: str | None
    secret_file: str | None
    ca_file: str | None
    time_zone: str
    express_interval: str = Field(examples=["15m"])
    complete_at: str = Field(examples=["02:00"])
    max_concurrency: int
    rate_per_second: float
    enabled: bool
    scope: str | None
    certificate_file: str | None


class Mailbox(Answer):
    email: str
    crm_user_id: str
    server: str
    group: str | None
    contacts: ModeChoice
    calendar: ModeChoice
    tasks: ModeChoice
    state: StateChoice
    reason: str | None
    failure_count: int
    last_error: str | None
    initial_done: bool
    last_express_at: datetime | None
    last_complete_at: datetime | None


class RowError(Answer):
    line: int
    message: str
    field: str | None = Field(description="the column at fault; null: the row as a whole")


class ImportReport(Answer):
    inserted: int
    updated: int
    invalid: list[RowError]


class QueuedJob(Answer):
    mailbox: str
    job_id: int
    coalesced: bool = Field(description="merged into a job already waiting")


class SkippedMailbox(Answer):
    mailbox: str
    state: str


class SyncRequest(Answer):
    kind: str
    dry_run: bool
    jobs: list[QueuedJob]
    skipped: list[SkippedMailbox]
    requested_at: datetime
    entities: list[str] | None = Field(None, description="null: every entity")


class PlanChange(Answer):
    field: str
    side: str = Field(description="the side written: crm or exchange")
    before: Any = Field(description="the value there now (null: none); long values are cut")
    after: Any = Field(description="the value the pass would write")


class PlanConflict(Answer):
    policy: str
    winner: str | None = Field(description="the side whose content wins; null: merged")
    fields: list[str] = Field(description="fields both sides changed")


class PlanItem(Answer):
    entity: str
    action: str = Field(
        description="create_crm, create_exchange, update, delete_crm, delete_exchange, link "
        "or unlink"
    )
    direction: str = Field(description="crm_to_exchange, exchange_to_crm, both or none")
    crm_id: str | None
    exchange_id: str | None
    title: str | None
    changes: list[PlanChange]
    reason: str | None
    conflict: PlanConflict | None


class PlanEntity(Answer):
    entity: str
    kind: str
    items: int = Field(description="items of the entity linked before the pass")
    planned: dict[str, int] = Field(description="actions by name")
    summary: str


class PlanAmbiguity(Answer):
    entity: str
    key: str = Field(description="the matching key the candidates share")
    crm_ids: list[str]
    exchange_ids: list[str]
    why: str
    direction: str
    decision: str = Field(description="what the pass does instead of pairing")


class RunPlan(Answer):
    entities: list[PlanEntity]
    items: list[PlanItem]
    omitted: int = Field(description="items beyond those kept (the counts cover them)")
    ambiguities: list[PlanAmbiguity]


class RunDetail(Answer):
    id: int
    mailbox: str
    job_id: int | None
    kind: str
    dry_run: bool
    entities: list[str] | None = Field(None, description="the entities covered; null: every one")
    engine: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None = Field(description="null while the pass runs")
    counts: dict[str, Any] = Field(description="writes: {entity: {direction: {operation: n}}}")
    requests: int
    throttled: int
    error: str | None
    plan: RunPlan | None = Field(description="a dry run's plan item by item")
    plan_text: str | None = Field(description="a dry run's plan as text")


class ItemError(Answer):
    id: int
    mailbox: str
    server: str
    entity: str
    kind: ErrorKindChoice
    status: Annotated[str, _enum(STATUSES)]
    crm_id: str | None
    exchange_id: str | None
    direction: str
    reason: str
    detail: dict[str, Any] | None = Field(
        description="an ambiguous match: key, crm_ids, exchange_ids, decision"
    )
    created_at: datetime
    acknowledged_at: datetime | None
    retried_at: datetime | None


class ItemErrorPage(Answer):
    item_errors: list[ItemError]
    next_cursor: str | None


class RetryResult(Answer):
    retried: list[int] = Field(description="item errors marked for a retry")
    jobs: list[QueuedJob] = Field(description="the passes queued to write them again")


class AcknowledgeResult(Answer):
    acknowledged: list[int] = Field(description="item errors acknowledged now")
