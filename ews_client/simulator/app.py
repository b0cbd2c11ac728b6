"""The aiohttp application: `POST /EWS/Exchange.asmx` with auth, throttling, faults, latency."""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import Callable

from aiohttp import web
from lxml import etree

from . import ops_config, ops_convert, ops_find, ops_items, ops_stream, ops_sync, soap
from .admin import add_admin_routes
from .context import Ctx
from .faults import post_fault, pre_fault
from .folder_ops import add_folder_routes, create_folder
from .graph.routes import add_graph_routes
from .mailbox_access import move_answer
from .ntlm import WindowsLogon, add_final_token
from .state import SimState
from .throttle import Refusal
from .xmlutil import XmlError, m, parse, validation_error

SIM_KEY = web.AppKey("sim", SimState)
LOGON_KEY = web.AppKey("windows_logon", WindowsLogon)
Handler = Callable[[Ctx, etree._Element, SimState], etree._Element]
OPERATIONS: dict[str, Handler] = {
    "GetFolder": lambda c, r, s: ops_find.get_folder(c, r),
    "FindFolder": lambda c, r, s: ops_find.find_folder(c, r),
    "CreateFolder": lambda c, r, s: create_folder(c, r),
    "FindItem": lambda c, r, s: ops_find.find_item(c, r),
    "SyncFolderItems": lambda c, r, s: ops_sync.sync_folder_items(c, r, s.config.secret),
    "GetItem": lambda c, r, s: ops_items.get_item(c, r),
    "CreateItem": lambda c, r, s: ops_items.create_item(c, r),
    "UpdateItem": lambda c, r, s: ops_items.update_item(c, r),
    "DeleteItem": lambda c, r, s: ops_items.delete_item(c, r),
    "CreateUserConfiguration": lambda c, r, s: ops_config.create_user_configuration(c, r),
    "GetUserConfiguration": lambda c, r, s: ops_config.get_user_configuration(c, r),
    "UpdateUserConfiguration": lambda c, r, s: ops_config.update_user_configuration(c, r),
    "Subscribe": lambda c, r, s: ops_stream.subscribe(c, r, s),
    "Unsubscribe": lambda c, r, s: ops_stream.unsubscribe(s, r),
    "ConvertId": lambda c, r, s: ops_convert.convert_id(s, r),
}
XML = "text/xml; charset=utf-8"


def make_app(sim: SimState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[SIM_KEY] = sim
    app[LOGON_KEY] = WindowsLogon(sim.config)
    app.on_response_prepare.append(add_final_token)
    app.router.add_post("/EWS/Exchange.asmx", ews)
    add_admin_routes(app, sim)
    add_folder_routes(app, sim)
    add_graph_routes(app, sim)  # Graph (/v1.0) and its token endpoint, same mailboxes
    return app


def _fault(code: str, backoff_ms: int | None = None, message: str | None = None) -> web.Response:
    body = soap.fault(code, message, backoff_ms)
    return web.Response(status=500, body=body, content_type="text/xml", charset="utf-8")


def _authorized(request: web.Request, sim: SimState) -> web.Response | None:
    """None when the request may be served, else the 401 answer (a challenge or a refusal):
    Basic per request, NTLM and Negotiate per connection (ntlm.py)."""
    logon = request.app[LOGON_KEY]
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and "Basic" in logon.schemes:
        return None if _basic_ok(credentials, sim) else logon.refusal()
    return logon.authorize(request, scheme, credentials)


def _basic_ok(credentials: str, sim: SimState) -> bool:
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except ValueError:
        return False
    expected = f"{sim.config.username}:{sim.config.password}".encode()
    return hmac.compare_digest(f"{user}:{password}".encode(), expected)


async def ews(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    refusal = sim.throttler.admit_frontend()
    if refusal is not None:
        return _http_503(refusal.backoff_ms // 1000)
    sim.throttler.inflight += 1
    try:
        return await _ews(request, sim)
    finally:
        sim.throttler.inflight -= 1


def _http_503(seconds: int) -> web.Response:
    return web.Response(
        status=503, text="Service Unavailable", headers={"Retry-After": str(seconds)}
    )


async def _ews(request: web.Request, sim: SimState) -> web.StreamResponse:
    refusal = _authorized(request, sim)
    if refusal is not None:
        return refusal
    early = await pre_fault(request, sim)
    if early is not None:
        return early
    try:
        req = soap.read_envelope(parse(await request.read()))
    except (XmlError, soap.EnvelopeError) as exc:
        return _fault("ErrorSchemaValidation", message=f"The request is not valid: {exc}")
    name = soap.operation_name(req.operation)
    sim.requests[name] += 1
    if sim.config.validate_requests:
        for element in (*req.headers, req.operation):
            problem = validation_error(element)
            if problem is not None:
                return _fault(
                    "ErrorSchemaValidation",
                    message=f"The request failed schema validation: {problem}",
                )
    if name == "GetStreamingEvents":
        return await _streaming(request, sim, req.operation)
    if name not in OPERATIONS:
        return _fault("ErrorInvalidRequest", message=f"{name} is not supported by the simulator")
    if req.impersonated is None:
        return _fault("ErrorMissingEmailAddress", message="Impersonation is required.")
    box = sim.mailboxes.get(req.impersonated)
    if box is None:
        return _fault("ErrorNonExistentMailbox")
    if sim.access.impersonation_refused(box.address, sim.config.impersonable):
        return _fault("ErrorImpersonateUserDenied")
    moved = move_answer(sim.access, box.address, req.operation)
    if moved is not None:
        return await _respond(request, sim, moved)
    if request.headers.get("X-AnchorMailbox", "").lower() != box.address:
        sim.missing_anchor += 1
    return await _run(request, sim, Ctx(box, sim.quota), name, req.operation)


async def _run(
    request: web.Request, sim: SimState, ctx: Ctx, name: str, operation: etree._Element
) -> web.StreamResponse:
    is_sync = name == "SyncFolderItems"
    refusal = sim.throttler.admit(ctx.box.address, is_sync)
    if refusal is not None:
        return _refused(sim, refusal, name)
    try:
        latency = sim.config.latency
        if latency.base_s:
            await asyncio.sleep(latency.base_s)
        result = OPERATIONS[name](ctx, operation, sim)
        if latency.per_item_s and ctx.items:
            await asyncio.sleep(latency.per_item_s * ctx.items)
    finally:
        sim.throttler.release(ctx.box.address, is_sync, ctx.items)
    return await _respond(request, sim, result)


def _refused(sim: SimState, refusal: Refusal, name: str) -> web.StreamResponse:
    if refusal.kind == "connections_fault":
        return _fault("ErrorExceededConnectionCount")
    if refusal.kind == "busy_fault":
        return _fault("ErrorServerBusy", refusal.backoff_ms)
    # Too many concurrent sync calls: a per-message ErrorServerBusy (HTTP 200).
    root, messages = soap.response_root(name)
    soap.error(
        messages, name, "ErrorServerBusy", soap.MESSAGES["ErrorServerBusy"], refusal.backoff_ms
    )
    _check(sim, root)
    return web.Response(body=soap.envelope(root), content_type="text/xml", charset="utf-8")


def _check(sim: SimState, element: etree._Element) -> None:
    if sim.config.validate_responses:
        problem = validation_error(element)
        if problem is not None:
            sim.invalid_responses.append(problem)


async def _respond(
    request: web.Request, sim: SimState, result: etree._Element
) -> web.StreamResponse:
    _check(sim, result)
    body = soap.envelope(result)
    late = await post_fault(request, sim, body)
    if late is not None:
        return late
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


async def _streaming(
    request: web.Request, sim: SimState, operation: etree._Element
) -> web.StreamResponse:
    checked = ops_stream.check_stream(sim, operation)
    if isinstance(checked, etree._Element):
        return await _respond(request, sim, checked)
    response = web.StreamResponse(headers={"Content-Type": XML})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def write(element: etree._Element) -> None:
        _check(sim, element)
        await response.write(soap.envelope(element))

    minutes = int(operation.findtext(m("ConnectionTimeout")) or "1")
    try:
        await ops_stream.stream(sim, checked, minutes * sim.config.stream_minute_s, write)
    except ConnectionResetError:
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response
