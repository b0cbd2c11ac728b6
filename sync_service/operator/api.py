"""Admin HTTP API: probes, /metrics, /openapi.json and the operator endpoints under /api/v1/.

Every endpoint except /healthz, /readyz and (with SYNC_METRICS_PUBLIC, the default) /metrics
requires `Authorization: Bearer <SYNC_API_TOKEN>`, compared in constant time. Without a token
configured the protected endpoints answer 503: the API is never open by default. Errors are
`application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and `field`.

Hostile input is answered, never crashed on: each error has its status (400 for input, naming
the field; 503 only when the database cannot be reached), a refused request is logged at most
once per client address per minute, and slow clients are cut off: a request head must arrive
within HEADER_TIMEOUT (see `runner`), its body within BODY_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from sync_service.config import Settings
from sync_service.dispatcher import graph_notifications
from sync_service.dispatcher.graph_notifications import OnChange
from sync_service.operator import api_routes, openapi
from sync_service.operator.exposition import Exposition
from sync_service.operator.http import (
    OPENER,
    OPERATIONS,
    PUBLIC_PATHS,
    READY_CHECK,
    SETTINGS,
    TOKEN,
    Doc,
    Handler,
    ReadyCheck,
    plain,
    problem,
)
from sync_service.operator.operations import Conflict, InvalidInput, NotFound, Operations

log = logging.getLogger("sync_service.operator.api")
MAX_BODY_BYTES = 4 * 1024 * 1024  # a CSV import of some 50,000 mailboxes fits
EXPOSITION: web.AppKey[Exposition] = web.AppKey("exposition")
HEADER_TIMEOUT = 10.0  # seconds from opening a connection (or the last answer) to a request head
BODY_TIMEOUT = 30.0  # seconds from a request head to the end of its body (4 MB on a slow link)
LOG_INTERVAL = 60.0  # seconds: one log line per client address and kind of event, at most
__all__ = ["ROUTES", "ReadyCheck", "build_app", "openapi_document", "runner"]

# The database cannot answer now: the request may succeed later (503).
UNAVAILABLE = (
    OSError,  # TimeoutError included: the pool or the command timed out
    asyncpg.InterfaceError,  # connection closed, pool closing
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,  # e.g. too many connections
    asyncpg.OperatorInterventionError,  # e.g. an administrator's shutdown
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock: try again
    asyncpg.UndefinedTableError,  # the migrations have not run yet (/readyz says so)
)
# The database refused a value: input that no model bounded (400, no field to name).
REFUSED_VALUE = (
    asyncpg.DataError,
    asyncpg.ProgramLimitExceededError,
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
)


class OncePerClient:
    """Whether an event of one client address is logged now: at most once per `interval`, so
    that no client can flood the log. At most `capacity` addresses are remembered; beyond
    that, new ones are not logged until old ones expire (memory stays bounded)."""

    def __init__(
        self,
        interval: float = LOG_INTERVAL,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._capacity = capacity
        self._clock = clock
        self._logged: dict[str, float] = {}  # address -> when last logged, oldest first
        self._held: dict[str, int] = {}  # address -> events not logged since

    def admit(self, client: str) -> int | None:
        """None: do not log; else log, telling how many events of `client` were held back."""
        now = self._clock()
        last = self._logged.get(client)
        if last is not None and now - last < self._interval:
            self._held[client] = self._held.get(client, 0) + 1
            return None
        held = self._held.pop(client, 0)
        self._logged.pop(client, None)  # inserted again last: the dict stays ordered by time
        self._expire(now - self._interval)
        if len(self._logged) >= self._capacity:
            return None
        self._logged[client] = now
        return held

    def _expire(self, before: float) -> None:
        expired = []
        for client, at in self._logged.items():
            if at >= before:
                break
            expired.append(client)
        for client in expired:
            del self._logged[client]
            self._held.pop(client, None)


REFUSALS: web.AppKey[OncePerClient] = web.AppKey("refusals")
FAILURES: web.AppKey[OncePerClient] = web.AppKey("failures")
BODY_DEADLINE: web.AppKey[float] = web.AppKey("body_deadline")


def _once(request: web.Request, limiter: web.AppKey[OncePerClient]) -> dict[str, Any] | None:
    """The fields of a log line about `request`, or None when its client was logged lately."""
    client = request.remote or "unknown"
    held = request.app[limiter].admit(client)
    if held is None:
        return None
    # The raw path is percent-encoded, and cut: it can neither garble nor flood the line.
    path = request.rel_url.raw_path[:200]
    return {"client": client, "method": request.method, "path": path, "held_back": held}


@web.middleware
async def refusals_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refused requests (4xx) are logged, at most once per client address per interval."""
    response = await handler(request)
    if 400 <= response.status < 500:
        fields = _once(request, REFUSALS)
        if fields is not None:
            log.warning("api request refused", extra={**fields, "status": response.status})
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Operations' errors, aiohttp's HTTP errors and database errors as problem documents."""
    try:
        return await handler(request)
    except InvalidInput as exc:
        return problem(400, exc.message, field=exc.field)
    except NotFound as exc:
        return problem(404, exc.message, field=exc.field)
    except Conflict as exc:
        return problem(409, exc.message, field=exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_problem(exc)
    except UNAVAILABLE as exc:
        _log_failure(request, exc, trace=False)
        return problem(503, "the database is not available; try again later")
    except REFUSED_VALUE as exc:
        return problem(400, f"the database refused a value of the request ({exc.sqlstate})")
    except asyncpg.IntegrityConstraintViolationError as exc:
        return problem(409, f"the request conflicts with stored data ({exc.sqlstate})")
    except Exception as exc:  # a bug: answered as one; its trace logged, not once per request
        _log_failure(request, exc, trace=True)
        return problem(500, "internal error; the service log has the details")


def _http_problem(exc: web.HTTPException) -> web.Response:
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    response = problem(exc.status, detail or exc.reason)
    for name in ("Allow", "WWW-Authenticate"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


def _log_failure(request: web.Request, exc: Exception, *, trace: bool) -> None:
    fields = _once(request, FAILURES)
    if fields is not None:
        extra = {**fields, "error": type(exc).__name__}
        log.warning("api request failed", extra=extra, exc_info=exc if trace else None)


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The whole body is read within the deadline (handlers then read it from memory): a client
    trickling a body cannot hold a connection and its buffer for long."""
    if request.body_exists:
        deadline = request.app[BODY_DEADLINE]
        try:
            async with asyncio.timeout(deadline):
                await request.read()
        except TimeoutError:
            response = problem(408, f"the body did not arrive within {deadline:g} s", field="body")
            response.force_close()
            return response
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in request.app[PUBLIC_PATHS]:
        return await handler(request)
    if _console_path(request.path):  # its session, opened with the token, instead
        return await handler(request)
    token = request.app[TOKEN]
    if token is None:
        return problem(
            503,
            "the admin API is disabled: set SYNC_API_TOKEN (or SYNC_API_TOKEN_FILE) to enable it",
            title="API token not configured",
        )
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return _unauthorized("send Authorization: Bearer <SYNC_API_TOKEN>")
    # aiohttp keeps bytes that are not UTF-8 as lone surrogates (surrogateescape): the same
    # handler gives back the bytes the client sent, whatever they are.
    if not hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), token):
        return _unauthorized("the bearer token is not valid")
    return await handler(request)


def _unauthorized(detail: str) -> web.Response:
    response = problem(401, detail, field="Authorization")
    response.headers["WWW-Authenticate"] = 'Bearer realm="sync-service"'
    return response


async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the check returns no problems (database, migrations, workers)."""
    problems = await request.app[READY_CHECK]()
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format, from memory only: the database-backed gauges are refreshed on
    a timer (operator/gauges.py, started with the api role), never by a scrape."""
    body = await request.app[EXPOSITION].body()  # a flood of scrapes cannot starve the rest
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    receiver = graph_notifications.NOTIFICATION_PATH in request.app[PUBLIC_PATHS]
    return web.json_response(openapi_document(receiver=receiver))


@cache
def openapi_document(*, receiver: bool = False) -> dict[str, Any]:
    """The OpenAPI document of ROUTES (built once), with the Graph notification receiver
    where this replica serves it."""
    return openapi.document(ROUTES, receiver=receiver)


_TEXT = {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}
_READY = {"200": {"description": "ready"}, "503": {"description": "not ready"}}
ROUTES = (
    plain(
        "GET",
        "/healthz",
        healthz,
        Doc("alive", public=True, responses={"200": {"description": "ok"}}),
    ),
    plain(
        "GET",
        "/readyz",
        readyz,
        Doc("ready: database, migrations, workers", public=True, responses=_READY),
    ),
    plain(
        "GET", "/metrics", metrics_endpoint, Doc("Prometheus metrics", public=True, responses=_TEXT)
    ),
    plain("GET", "/openapi.json", openapi_json, Doc("this document", "the OpenAPI 3.1 document")),
    *api_routes.ROUTES,
)


def build_app(
    ready_check: ReadyCheck,
    *,
    pool: asyncpg.Pool | None = None,
    settings: Settings | None = None,
    opener: Any = None,
    on_graph_change: OnChange | None = None,
    body_timeout: float = BODY_TIMEOUT,
) -> web.Application:
    """The API application; without a pool only the probes and /metrics are useful."""
    middlewares = [refusals_middleware, errors_middleware, auth_middleware, body_middleware]
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=middlewares)
    app[REFUSALS] = OncePerClient()
    app[FAILURES] = OncePerClient()
    app[BODY_DEADLINE] = body_timeout
    app[READY_CHECK] = ready_check
    app[EXPOSITION] = Exposition.of_service(settings.api.metrics_refresh if settings else None)
    schedule = settings.schedule if settings is not None else None
    outbound = settings.outbound if settings is not None else None
    ops = None if pool is None else Operations(pool, schedule_defaults=schedule, outbound=outbound)
    app[OPERATIONS] = ops
    app[SETTINGS] = settings
    app[OPENER] = opener
    app[TOKEN] = _token(settings)
    public = _public_paths(settings)
    if settings is not None and settings.push.graph_notification_url and on_graph_change:
        # Graph cannot send our bearer token; clientState authenticates its notifications.
        # The receiver is Graph's to call, not an operator endpoint: it is not in ROUTES.
        state = settings.push.resolved_client_state()
        assert state is not None
        graph_notifications.add_routes(app, on_graph_change, client_state=state.get_secret_value())
        public.add(graph_notifications.NOTIFICATION_PATH)
    app[PUBLIC_PATHS] = frozenset(public)
    for route in ROUTES:
        app.router.add_route(route.method, _dispatch_path(route.path), route.handler)
    return app


# The operators' web console (sync_service/console/, mounted on this app by process/app.py)
# checks its own sessions, opened with the same token, under this prefix.
CONSOLE_PREFIX = "/console"


def _console_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _dispatch_path(path: str) -> str:
    """`path` for aiohttp's router: an address never matches a fixed segment beside it
    (`/mailboxes/import` is not the mailbox "import"), so a 405 there names only the methods
    of `/mailboxes/import` in its Allow header."""
    return path.replace("{email}", "{email:(?!import$)[^/]+}")


class MalformedRequests(logging.Filter):
    """aiohttp logs each request it cannot parse (a NUL in a header, a request line over
    8,190 bytes) at ERROR with a traceback: anyone could flood the log with them. Such a
    record becomes one warning line without a traceback, at most once per client address
    per interval; the client was answered 400 already."""

    def __init__(self, once: OncePerClient | None = None) -> None:
        super().__init__()
        self._once = once or OncePerClient()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        client = str(record.args[0]) if isinstance(record.args, tuple) and record.args else "?"
        held = self._once.admit(client)
        if held is None:
            return False
        record.msg, record.args = "malformed request refused", None
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.error = f"{type(exc).__name__}: {exc.message}"[:200]
        record.client, record.held_back = client, held
        return True


def _quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
        server_log.addFilter(MalformedRequests())


def runner(app: web.Application, *, header_timeout: float = HEADER_TIMEOUT) -> web.AppRunner:
    """The runner to serve `app` with: a connection that has not sent a whole request head
    `header_timeout` seconds after it opened (or after its previous answer) is closed.

    aiohttp's server has no header timeout of its own. Its keep-alive timer is one in effect:
    armed when a connection opens and again after each answer, it closes the connection if no
    complete request head has arrived when it fires, however many bytes of one came (bytes do
    not re-arm it). Its default is an hour; here it is the header timeout. Armed at the
    opening only since aiohttp 3.14.4: with an older one, a first request is not bounded.
    """
    _quiet_malformed_requests()
    return web.AppRunner(app, handle_signals=False, keepalive_timeout=header_timeout)


def _token(settings: Settings | None) -> bytes | None:
    secret = settings.api.resolved_token() if settings else None
    token = secret.get_secret_value().strip() if secret is not None else ""
    return token.encode() if token else None


def _public_paths(settings: Settings | None) -> set[str]:
    public = {route.path for route in ROUTES if route.doc.public}
    if settings is not None and not settings.api.metrics_public:
        public.discard("/metrics")
    return public
