"""The Graph endpoint: `/v1.0/{path}` with bearer auth, per-mailbox throttling and `$batch`
(inner requests run one after another, each admitted by the throttle on its own, so an inner
request can be a 429 of its own inside a 200 batch)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web

from ews_client.models import EntityKind

from ..state import SimState
from . import (
    auth,
    batch,
    calendar_list,
    conform,
    extensions,
    folders,
    handlers,
    prefer,
    subscription_routes,
    translate,
)
from .errors import GraphError, bad_request
from .handlers import Env, GReq, GResp
from .ids import route_path
from .notify import Notifier
from .throttle import GraphThrottler

Json = dict[str, Any]
Route = Callable[..., GResp | Awaitable[GResp]]
BATCH_MAX = 20
U = r"users/(?P<user>[^/]+)"
C = r"(?P<coll>contacts|events|todo/lists/(?P<lid>[^/]+)/tasks)"
CF = r"contactFolders/(?P<fid>[^/]+)"
CAL = r"calendars/(?P<cid>[^/]+)"
XT = extensions.ITEM_EXTENSIONS
KINDS = {"contacts": EntityKind.CONTACT, "events": EntityKind.APPOINTMENT}


@dataclass(slots=True)
class GraphState:
    sim: SimState
    throttler: GraphThrottler
    notifier: Notifier
    requests: Counter[str] = field(default_factory=Counter)
    without_immutable: list[str] = field(default_factory=list)  # requests lacking IdType
    admitted_urls: Counter[str] = field(default_factory=Counter)  # "GET /users/..", not 429ed

    @classmethod
    def create(cls, sim: SimState) -> GraphState:
        policy = sim.config.graph
        return cls(sim, GraphThrottler(policy), Notifier(policy))

    def env(self) -> Env:
        cfg = self.sim.config
        return Env(self.sim.mailboxes, self.sim.quota, self.notifier, cfg.secret,
                   cfg.graph.page_size, cfg.graph.delta_max_age_s)  # fmt: skip

    def counters(self) -> Json:
        return {
            "requests": dict(self.requests),
            "admitted": self.throttler.admitted,
            "throttled": dict(self.throttler.throttled),
            "early_retries": self.throttler.early_retries,
            "subscriptions": len(self.notifier.subscriptions),
            "notifications": dict(self.notifier.counters),
            "without_immutable_id": len(self.without_immutable),
        }


GRAPH_KEY = web.AppKey("graph", GraphState)


def _kind(coll: str) -> EntityKind:
    return KINDS.get(coll, EntityKind.TASK)


def _coll(fn: Callable[..., GResp]) -> Route:
    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        box = handlers.mailbox(env, m["user"])
        args = [m[k] for k in ("id",) if m.groupdict().get(k)]
        kind, lid = _kind(m["coll"]), m["lid"]
        if kind is EntityKind.APPOINTMENT and args:
            # An event by its id alone, in whichever of the user's calendars it is.
            lid = handlers.event_calendar(box, args[0]).id
        return fn(env, req, box, kind, lid, *args)

    return call


def _in_calendar(fn: Callable[..., GResp]) -> Route:
    """An event collection of a calendar (`calendars/{id}/events`)."""

    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        box = handlers.mailbox(env, m["user"])
        args = [m[k] for k in ("id",) if m.groupdict().get(k)]
        cid = folders.calendar_of(box, m["cid"]).id
        return fn(env, req, box, EntityKind.APPOINTMENT, cid, *args)

    return call


def _calendar_events(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    """`GET calendars/{id}/events`: a filtered lookup, or the calendar's listing."""
    box = handlers.mailbox(env, m["user"])
    folder = folders.calendar_of(box, m["cid"])
    if "$filter" in req.query:
        return handlers.list_items(env, req, box, EntityKind.APPOINTMENT, folder.id)
    return calendar_list.list_events(env, req, box, folder)


def _calendar_view(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    box = handlers.mailbox(env, m["user"])
    return calendar_list.calendar_delta(env, req, box, folders.calendar_of(box, m["cid"]))


def _in_folder(fn: Callable[..., GResp]) -> Route:
    """An item collection of a contact folder (`contactFolders/{id}/contacts`)."""

    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        box = handlers.mailbox(env, m["user"])
        args = [m[k] for k in ("id",) if m.groupdict().get(k)]
        fid = folders.contact_folder_of(box, m["fid"]).id
        return fn(env, req, box, EntityKind.CONTACT, fid, *args)

    return call


def _delta(kind: EntityKind | None) -> Route:
    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        box = handlers.mailbox(env, m["user"])
        lid = m.groupdict().get("lid")
        return handlers.delta_query(env, req, box, kind or EntityKind.TASK, lid)

    return call


def _user(fn: Callable[..., GResp], *names: str) -> Route:
    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        return fn(env, req, handlers.mailbox(env, m["user"]), *(m[n] for n in names))

    return call


def _ext(fn: Callable[..., extensions.Answer], *names: str) -> Route:
    def call(env: Env, req: GReq, m: re.Match[str]) -> GResp:
        box = handlers.mailbox(env, m["user"])
        return GResp(*fn(env.quota, box, req.body, *(m[n] for n in names)))

    return call


async def _subscribe(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    return await handlers.create_subscription(env, req)


def _renew(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    return GResp(200, env.notifier.renew(unquote(m["sid"]), req.body or {}))


def _unsubscribe(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    env.notifier.delete(unquote(m["sid"]))
    return GResp(204)


ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (meth, re.compile(f"^{pattern}$"), fn)
    for meth, pattern, fn in (
        ("GET", f"{U}/contacts/delta", _delta(EntityKind.CONTACT)),
        ("GET", f"{U}/contactFolders/(?P<lid>[^/]+)/contacts/delta", _delta(EntityKind.CONTACT)),
        ("GET", f"{U}/contactFolders", _user(folders.contact_folders)),
        ("POST", f"{U}/contactFolders", _user(folders.create_contact_folder)),
        ("GET", f"{U}/contactFolders/(?P<fid>[^/]+)", _user(folders.contact_folder, "fid")),
        ("GET", f"{U}/{CF}/childFolders", _user(folders.child_folders, "fid")),
        ("POST", f"{U}/{CF}/childFolders", _user(folders.create_child_folder, "fid")),
        ("GET", f"{U}/{CF}/contacts", _in_folder(handlers.list_items)),
        ("POST", f"{U}/{CF}/contacts", _in_folder(handlers.create_item)),
        ("GET", f"{U}/{CF}/contacts/(?P<id>[^/]+)", _in_folder(handlers.get_item)),
        ("PATCH", f"{U}/{CF}/contacts/(?P<id>[^/]+)", _in_folder(handlers.patch_item)),
        ("DELETE", f"{U}/{CF}/contacts/(?P<id>[^/]+)", _in_folder(handlers.delete_item)),
        ("GET", f"{U}/calendarView/delta", _user(calendar_list.calendar_delta)),
        ("GET", f"{U}/calendar", _user(folders.default_calendar)),
        ("GET", f"{U}/calendars", _user(folders.calendars)),
        ("POST", f"{U}/calendars", _user(folders.create_calendar)),
        ("GET", f"{U}/{CAL}", _user(folders.calendar, "cid")),
        ("GET", f"{U}/{CAL}/calendarView/delta", _calendar_view),
        ("GET", f"{U}/{CAL}/events", _calendar_events),
        ("POST", f"{U}/{CAL}/events", _in_calendar(handlers.create_item)),
        ("GET", f"{U}/{CAL}/events/(?P<id>[^/]+)", _in_calendar(handlers.get_item)),
        ("PATCH", f"{U}/{CAL}/events/(?P<id>[^/]+)", _in_calendar(handlers.patch_item)),
        ("DELETE", f"{U}/{CAL}/events/(?P<id>[^/]+)", _in_calendar(handlers.delete_item)),
        ("GET", f"{U}/calendar/events", _user(calendar_list.list_events)),
        ("GET", f"{U}/todo/lists/(?P<lid>[^/]+)/tasks/delta", _delta(None)),
        ("GET", f"{U}/todo/lists", _user(folders.todo_lists)),
        ("POST", f"{U}/todo/lists", _user(folders.create_todo_list)),
        ("GET", f"{U}/todo/lists/(?P<lid>[^/]+)", _user(folders.todo_list, "lid")),
        ("GET", f"{U}/events/(?P<id>[^/]+)/instances", _user(calendar_list.instances, "id")),
        ("POST", f"{U}/events/(?P<id>[^/]+)/cancel", _user(handlers.cancel_event, "id")),
        (
            "POST",
            f"{U}/events/(?P<id>[^/]+)/(?P<action>accept|tentativelyAccept|decline)",
            _user(handlers.respond_event, "id", "action"),
        ),
        (
            "POST",
            f"{U}/todo/lists/(?P<lid>[^/]+)/tasks/(?P<id>[^/]+)/linkedResources",
            _user(handlers.add_link, "lid", "id"),
        ),
        ("POST", f"{U}/{XT}", _ext(extensions.create, "coll", "id")),
        ("GET", f"{U}/{XT}/(?P<name>[^/]+)", _ext(extensions.get, "coll", "id", "name")),
        ("PATCH", f"{U}/{XT}/(?P<name>[^/]+)", _ext(extensions.patch, "coll", "id", "name")),
        ("DELETE", f"{U}/{XT}/(?P<name>[^/]+)", _ext(extensions.delete, "coll", "id", "name")),
        ("GET", f"{U}/{C}", _coll(handlers.list_items)),
        ("POST", f"{U}/{C}", _coll(handlers.create_item)),
        ("GET", f"{U}/{C}/(?P<id>[^/]+)", _coll(handlers.get_item)),
        ("PATCH", f"{U}/{C}/(?P<id>[^/]+)", _coll(handlers.patch_item)),
        ("DELETE", f"{U}/{C}/(?P<id>[^/]+)", _coll(handlers.delete_item)),
        ("POST", f"{U}/translateExchangeIds", _user(translate.translate_ids)),
        ("POST", f"{U}/extensions", _user(handlers.create_extension)),
        ("GET", f"{U}/extensions/(?P<name>[^/]+)", _user(handlers.get_extension, "name")),
        ("PATCH", f"{U}/extensions/(?P<name>[^/]+)", _user(handlers.patch_extension, "name")),
        ("POST", "subscriptions", _subscribe),
        ("GET", "subscriptions", subscription_routes.list_subscriptions),
        ("GET", "subscriptions/(?P<sid>[^/]+)", subscription_routes.get_subscription),
        ("POST", "subscriptions/(?P<sid>[^/]+)/reauthorize", subscription_routes.reauthorize),
        ("PATCH", "subscriptions/(?P<sid>[^/]+)", _renew),
        ("DELETE", "subscriptions/(?P<sid>[^/]+)", _unsubscribe),
    )
]
_USER = re.compile(r"^users/([^/]+)")


async def _dispatch(graph: GraphState, req: GReq) -> GResp:
    for method, pattern, fn in ROUTES:
        m = pattern.match(route_path(req.path))
        if m is not None and method == req.method:
            graph.requests[f"{req.method} {pattern.pattern[:40]}"] += 1
            result = fn(graph.env(), req, m)
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[return-value]
    raise GraphError(400, "BadRequest", f"unsupported request {req.method} /{req.path}")


async def run_one(graph: GraphState, req: GReq) -> GResp:
    """One request (top level or inside a batch) under the mailbox's throttling rules."""
    if not batch.immutable(req.headers):
        graph.without_immutable.append(f"{req.method} /{req.path}")
    user = _USER.match(req.path)
    box = graph.sim.mailboxes.get(unquote(user.group(1)).lower()) if user else None
    if box is not None:
        retry = graph.throttler.admit(box.address)
        if retry is not None:
            # Graph: "429 Too Many Requests" with Retry-After (whole seconds).
            err = GraphError(429, "ApplicationThrottled", "Application is over its limit.")
            return GResp(429, err.body(), {"Retry-After": str(retry)})
        graph.admitted_urls[f"{req.method} /{req.path}"] += 1
    try:
        auth.authorize(req.method, req.path, req.body, req.headers, graph.notifier.subscriptions)
        if graph.sim.config.latency.base_s:
            await asyncio.sleep(graph.sim.config.latency.base_s)
        conform.check_request(graph.sim, req.method, req.path, req.body)
        res = prefer.apply(req.headers, await _dispatch(graph, req))  # outlook.timezone
        conform.check_response(graph.sim, req.method, req.path, res.status, res.body)
        return _id_type_applied(req.headers, res)
    except GraphError as exc:
        return GResp(exc.status, exc.body(), exc.headers)
    finally:
        if box is not None:
            graph.throttler.release(box.address)


def _id_type_applied(headers: dict[str, str], res: GResp) -> GResp:
    """Graph names the id format it answered in when the request asked for immutable ids."""
    if batch.immutable(headers):
        earlier = res.headers.get(prefer.APPLIED)
        applied = 'IdType="ImmutableId"'
        res.headers[prefer.APPLIED] = f"{applied}, {earlier}" if earlier else applied
    return res


async def run_batch(graph: GraphState, req: GReq) -> GResp:
    inner = batch.check_requests((req.body or {}).get("requests"))
    if not batch.immutable(req.headers):
        graph.without_immutable.append(f"{req.method} /{req.path}")
    out = []
    for one in inner:
        url = urlsplit(str(one.get("url", "")))
        headers = batch.request_headers(one.get("headers"))
        sub = GReq(str(one.get("method", "GET")).upper(), batch.inner_path(unquote(url.path)),
                   dict(parse_qsl(url.query)), headers, one.get("body"), req.base)  # fmt: skip
        res = await run_one(graph, sub)
        headers = batch.inner_headers(res.headers, res.body is not None)
        out.append({"id": one.get("id"), "status": res.status, "headers": headers,
                    "body": res.body})  # fmt: skip
    return _id_type_applied(req.headers, GResp(200, {"responses": out}))


async def graph_endpoint(request: web.Request) -> web.StreamResponse:
    graph = request.app[GRAPH_KEY]
    refused = auth.refusal(graph.sim.config.graph, request)  # 401: bad, expired, not for Graph
    if refused is not None:
        return refused
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return web.json_response(bad_request("the body is not JSON").body(), status=400)
    req = GReq(request.method, request.match_info["tail"], dict(request.query),
               {k.lower(): ", ".join(request.headers.getall(k)) for k in request.headers}, body,
               f"{request.scheme}://{request.host}/v1.0")  # fmt: skip
    try:
        res = await (run_batch(graph, req) if req.path == "$batch" else run_one(graph, req))
    except GraphError as exc:
        res = GResp(exc.status, exc.body())
    if res.body is None:
        return web.Response(status=res.status, headers=res.headers)
    return web.json_response(res.body, status=res.status, headers=res.headers)


async def _counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[GRAPH_KEY].counters())


def add_graph_routes(app: web.Application, sim: SimState, graph: GraphState | None = None) -> None:
    """Mount Graph, the token endpoint and `/_sim/graph/counters`; run the notifier."""
    state = graph or GraphState.create(sim)
    app[GRAPH_KEY] = state
    auth.add_auth_routes(app, sim.config.graph)
    app.router.add_route("*", "/v1.0/{tail:.*}", graph_endpoint)
    app.router.add_get("/_sim/graph/counters", _counters)
    subscription_routes.add_admin_routes(app, state.notifier)

    async def notifier(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(state.notifier.run(), name="graph-notifier")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await state.notifier.close()

    app.cleanup_ctx.append(notifier)
