"""What every console page shares: the keys, rendering, and the middlewares.

The API's bearer-token middleware lets /console/ through (see `is_console_path`); this
application's own middlewares then give every answer its security headers, ask for a session
on every page but the sign-in and the static files, check the CSRF token of every POST, and
render errors as pages instead of problem documents.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from sync_service.console import session as sessions
from sync_service.console.session import Revoked, Session
from sync_service.console.views import FILTERS
from sync_service.errors import FieldError
from sync_service.operator.api import CONSOLE_PREFIX
from sync_service.operator.http import OPERATIONS, TOKEN, Handler
from sync_service.operator.operations import Conflict, NotFound, Operations

log = logging.getLogger("sync_service.console")
PREFIX = CONSOLE_PREFIX  # the API's auth middleware leaves this prefix to the console
STATIC = Path(__file__).parent / "static"
# No inline script or style anywhere: scripts and styles come from /console/static/ only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PUBLIC = (f"{PREFIX}/sign-in", f"{PREFIX}/static/")
NOTICES = {
    "sync": "Pass queued.",
    "sync-dry-run": "Dry run queued: its plan appears under Last runs once it ran.",
    "recover-dry-run": "Recover dry run queued: its plan appears below once it ran.",
    "recover": "Recover pass queued.",
    "enabled": "Mailbox enabled.",
    "disabled": "Mailbox disabled.",
    "acknowledged": "Item errors acknowledged.",
}
JINJA: web.AppKey[Environment] = web.AppKey("console_jinja")
REVOKED: web.AppKey[Revoked] = web.AppKey("console_revoked")
SESSION = "console_session"  # the request's key of its Session
# The database cannot answer now (the API's own list, less what a page cannot cause).
UNAVAILABLE = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


def is_console_path(path: str) -> bool:
    """Whether the console answers `path` (and checks its own sessions there)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def ops(request: web.Request) -> Operations:
    found = request.config_dict[OPERATIONS]
    if found is None:
        raise web.HTTPServiceUnavailable(text="this replica serves no console (no database)")
    return found


def token(request: web.Request) -> bytes | None:
    return request.config_dict[TOKEN]


def current(request: web.Request) -> Session:
    """The request's session (set by `session_middleware`)."""
    found: Session = request[SESSION]
    return found


def render(request: web.Request, name: str, http_status: int = 200, **values: Any) -> web.Response:
    """Template `name` with `values`, the request and its session's CSRF token."""
    template = request.app[JINJA].get_template(name)
    session = request.get(SESSION)
    csrf = session.csrf if session is not None else ""
    html = template.render(
        request=request,
        csrf=csrf,
        signed_in=session is not None,
        static=lambda name: static_url(request, name),
        notice=NOTICES.get(request.query.get("notice", "")),
        **values,
    )
    response = web.Response(text=html, status=http_status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def static_url(request: web.Request, name: str) -> str:
    """The URL of a static file, with its content's hash (so a new version is fetched)."""
    return str(request.app.router["static"].url_for(filename=name))


def see_other(location: str) -> web.Response:
    """After a POST: the browser GETs `location` (a console path)."""
    return web.Response(status=303, headers={"Location": location})


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.update(HEADERS)
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Operator errors and HTTP errors as pages naming what was wrong."""
    try:
        return await handler(request)
    except FieldError as exc:
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
        return error_page(request, status, f"{exc.field}: {exc.message}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_page(request, exc.status, exc.text or exc.reason)
    except UNAVAILABLE:
        return error_page(request, 503, "the database is not available; try again later")


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status, status=status, message=message)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the public ones needs a session; every POST its CSRF token."""
    if request.path.startswith(PUBLIC):
        return await handler(request)
    secret = token(request)
    if secret is None:
        return disabled(request)
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    found = sessions.decode(cookie, sessions.session_key(secret), time.time())
    if found is None or found in request.app[REVOKED]:
        if request.method == "GET":
            return see_other(f"{PREFIX}/sign-in?next={_next(request)}")
        return error_page(request, 401, "sign in first: this action needs a console session")
    request[SESSION] = found
    if request.method == "POST":
        form = await request.post()
        presented = form.get("csrf")
        if not same_origin(request) or not sessions.csrf_matches(found, _text(presented)):
            log.warning("console post refused: CSRF token", extra={"client": request.remote})
            return error_page(request, 403, "the form's CSRF token is missing or wrong; reload")
    return await handler(request)


def disabled(request: web.Request) -> web.Response:
    message = "the console is disabled: set SYNC_API_TOKEN (or SYNC_API_TOKEN_FILE) to enable it"
    return error_page(request, 503, message)


def same_origin(request: web.Request) -> bool:
    """A browser names the page a POST comes from (Origin): it must be this console's host.
    Without the header (an older browser, a script) the CSRF token decides alone."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def _next(request: web.Request) -> str:
    return quote(request.path_qs, safe="")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sync_service.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(prefix=PREFIX)
    return env
