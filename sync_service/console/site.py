"""The console's route table and its application, mounted on the admin API's app."""

from __future__ import annotations

from aiohttp import web

from sync_service.console import actions, pages
from sync_service.console.base import (
    JINJA,
    PREFIX,
    REVOKED,
    STATIC,
    environment,
    errors_middleware,
    headers_middleware,
    see_other,
    session_middleware,
)
from sync_service.console.session import Revoked

MAILBOX = "/mailboxes/{email:[^/]+}"
ROUTES = (
    ("GET", "/", pages.overview),
    ("GET", "/sign-in", actions.sign_in_form),
    ("POST", "/sign-in", actions.sign_in),
    ("POST", "/sign-out", actions.sign_out),
    ("GET", "/mailboxes", pages.mailboxes),
    ("GET", MAILBOX, pages.mailbox),
    ("POST", f"{MAILBOX}/sync", actions.mailbox_sync),
    ("POST", f"{MAILBOX}/recover", actions.mailbox_recover),
    ("POST", f"{MAILBOX}/enable", actions.mailbox_enable),
    ("POST", f"{MAILBOX}/disable", actions.mailbox_disable),
    ("POST", "/item-errors/acknowledge", actions.acknowledge),
    ("GET", "/runs", pages.runs),
    ("GET", "/runs/{id}", pages.run),
    ("GET", "/servers", pages.servers),
    ("GET", "/servers/{name}", pages.server),
    ("POST", "/servers/{name}/test", actions.server_test),
)


def console_app() -> web.Application:
    """The console as a sub-application (its paths relative to PREFIX)."""
    app = web.Application(middlewares=[headers_middleware, errors_middleware, session_middleware])
    app[JINJA] = environment()
    app[REVOKED] = Revoked()
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
    return app


async def _to_console(_: web.Request) -> web.Response:
    return see_other(f"{PREFIX}/")


def mount(app: web.Application) -> None:
    """Serve the console under PREFIX on the API's `app` (`/console` itself redirects)."""
    app.router.add_get(PREFIX, _to_console)
    app.add_subapp(f"{PREFIX}/", console_app())
