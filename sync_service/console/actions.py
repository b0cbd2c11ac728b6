"""The console's actions (POST): sign-in and sign-out, and what an operator does to a
mailbox, an item error or a server. The session and CSRF checks ran before any of these
(`base.session_middleware`); each action calls the operation the CLI and the API call."""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import quote

from aiohttp import web
from multidict import MultiMapping

from sync_service.console import pages
from sync_service.console import session as sessions
from sync_service.console.base import (
    PREFIX,
    REVOKED,
    current,
    disabled,
    ops,
    render,
    see_other,
    token,
)
from sync_service.operator import probe
from sync_service.operator.http import OPENER, SETTINGS
from sync_service.operator.operations import InvalidInput

log = logging.getLogger("sync_service.console")
FormData = MultiMapping[object]


async def sign_in_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    """The sign-in form, with a fresh nonce in the form and in a short-lived cookie."""
    if token(request) is None:
        return disabled(request)
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        status,
        nonce=nonce,
        next=_console_path(request.query.get("next")),
        error=error,
    )
    _set_cookie(request, response, sessions.SIGNIN_COOKIE, nonce, sessions.SIGNIN_TTL)
    return response


async def sign_in(request: web.Request) -> web.Response:
    """The API token once, for a session cookie."""
    secret = token(request)
    if secret is None:
        return disabled(request)
    form = await request.post()
    cookie = request.cookies.get(sessions.SIGNIN_COOKIE)
    if not sessions.nonce_matches(cookie, _field(form, "nonce")):
        return await sign_in_form(request, error="The form expired; sign in again.", status=403)
    if not sessions.token_matches(secret, _field(form, "token") or ""):
        log.warning("console sign-in refused", extra={"client": request.remote})
        return await sign_in_form(request, error="That is not the API token.", status=401)
    session = sessions.new_session(time.time())
    response = see_other(_console_path(_field(form, "next")))
    value = sessions.encode(session, sessions.session_key(secret))
    _set_cookie(request, response, sessions.SESSION_COOKIE, value, sessions.SESSION_TTL)
    response.del_cookie(sessions.SIGNIN_COOKIE, path=PREFIX)
    log.info("console signed in", extra={"client": request.remote})
    return response


async def sign_out(request: web.Request) -> web.Response:
    request.app[REVOKED].add(current(request))
    response = see_other(f"{PREFIX}/sign-in")
    response.del_cookie(sessions.SESSION_COOKIE, path=PREFIX)
    log.info("console signed out", extra={"client": request.remote})
    return response


def _set_cookie(
    request: web.Request, response: web.Response, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def _console_path(value: str | None) -> str:
    """Where to go after a form: a console path of this site, else the overview (never another
    site: `//host` and `/console/../` are refused)."""
    ours = bool(value) and str(value).startswith(f"{PREFIX}/")
    if ours and value is not None and ".." not in value and "\\" not in value:
        return value
    return f"{PREFIX}/"


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _mailbox_page(email: str, notice: str) -> web.Response:
    return see_other(f"{PREFIX}/mailboxes/{quote(email, safe='@')}?notice={notice}")


async def mailbox_sync(request: web.Request) -> web.Response:
    email = request.match_info["email"]
    form = await request.post()
    mode = _field(form, "mode") or "express"
    dry_run = _field(form, "dry_run") == "1"
    await ops(request).request_sync(mailbox=email, mode=mode, dry_run=dry_run)
    return _mailbox_page(email, "sync-dry-run" if dry_run else "sync")


async def mailbox_recover(request: web.Request) -> web.Response:
    email = request.match_info["email"]
    dry_run = _field(await request.post(), "dry_run") == "1"
    await ops(request).recover(email, dry_run=dry_run)
    return _mailbox_page(email, "recover-dry-run" if dry_run else "recover")


async def mailbox_enable(request: web.Request) -> web.Response:
    email = request.match_info["email"]
    await ops(request).set_state(email, True)
    return _mailbox_page(email, "enabled")


async def mailbox_disable(request: web.Request) -> web.Response:
    email = request.match_info["email"]
    reason = (_field(await request.post(), "reason") or "").strip()[:500] or None
    await ops(request).set_state(email, False, reason)
    return _mailbox_page(email, "disabled")


async def acknowledge(request: web.Request) -> web.Response:
    form = await request.post()
    raw = [v for v in form.getall("id", []) if isinstance(v, str)]
    if not raw or not all(v.isascii() and v.isdigit() and len(v) <= 19 for v in raw):
        raise InvalidInput("id", "choose at least one item error")
    await ops(request).acknowledge_item_errors(ids=[int(v) for v in raw])
    back = _console_path(_field(form, "back"))
    return see_other(back + ("&" if "?" in back else "?") + "notice=acknowledged")


async def server_test(request: web.Request) -> web.Response:
    """`servers test` against a mailbox (or the server's first active one), its steps shown
    on the server's page."""
    operations = ops(request)
    found = await operations.server(request.match_info["name"])
    mailbox = (_field(await request.post(), "mailbox") or "").strip()
    if mailbox:
        await operations.mailbox(mailbox)
    else:
        page = await operations.list_mailboxes(server=found.name, state="active", limit=1)
        if not page.mailboxes:
            raise InvalidInput("mailbox", f"server {found.name} has no active mailbox; give one")
        mailbox = page.mailboxes[0]["email"]
    opener = request.config_dict[OPENER] or probe.default_opener()
    settings = request.config_dict[SETTINGS]
    if settings is None:
        raise web.HTTPServiceUnavailable(text="this replica has no settings to reach Exchange")
    steps = await probe.probe(found, mailbox, settings, opener)
    return await pages.server(request, tested=mailbox, steps=steps)
