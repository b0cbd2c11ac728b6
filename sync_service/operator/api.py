"""Admin HTTP API: probes, /metrics, /openapi.json and the operator endpoints under /api/v1/.

Every endpoint except /healthz, /readyz and (with SYNC_METRICS_PUBLIC, the default) /metrics
requires `Authorization: Bearer <SYNC_API_TOKEN>`, compared in constant time. Without a token
configured the protected endpoints answer 503: the API is never open by default. Errors are
`application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and `field`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from functools import cache
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sync_service import metrics
from sync_service.config import Settings
from sync_service.dispatcher import graph_notifications
from sync_service.dispatcher.graph_notifications import OnChange
from sync_service.operator import api_routes, openapi
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
SCRAPE_SLOT: web.AppKey[asyncio.Semaphore] = web.AppKey("scrape_slot")
__all__ = ["ROUTES", "ReadyCheck", "build_app", "openapi_document"]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Operations' errors and aiohttp's HTTP errors as problem documents."""
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
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        response = problem(exc.status, detail or exc.reason)
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("api request failed", extra={"error": type(exc).__name__})
        return problem(503, "the database is not available; try again later")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in request.app[PUBLIC_PATHS]:
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
    if not hmac.compare_digest(presented.strip().encode(), token):
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
    async with request.app[SCRAPE_SLOT]:
        body = generate_latest(metrics.REGISTRY)
        # The slot is held for one turn of the event loop: however many scrapes wait (it is
        # public), one is rendered per turn and every other request gets its turns between
        # them. Rendered all at once, 300 waiting scrapes made /api/v1/status take 2.6 s.
        await asyncio.sleep(0)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(_: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of ROUTES (built once)."""
    return openapi.document(ROUTES)


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
) -> web.Application:
    """The API application; without a pool only the probes and /metrics are useful."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[errors_middleware, auth_middleware]
    )
    app[READY_CHECK] = ready_check
    app[SCRAPE_SLOT] = asyncio.Semaphore(1)
    schedule = settings.schedule if settings is not None else None
    app[OPERATIONS] = Operations(pool, schedule_defaults=schedule) if pool is not None else None
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
        app.router.add_route(route.method, route.path, route.handler)
    return app


def _token(settings: Settings | None) -> bytes | None:
    secret = settings.api.resolved_token() if settings else None
    token = secret.get_secret_value().strip() if secret is not None else ""
    return token.encode() if token else None


def _public_paths(settings: Settings | None) -> set[str]:
    public = {route.path for route in ROUTES if route.doc.public}
    if settings is not None and not settings.api.metrics_public:
        public.discard("/metrics")
    return public
