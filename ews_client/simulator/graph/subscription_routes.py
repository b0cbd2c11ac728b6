"""Routes over the subscriptions (`GET /subscriptions[/{id}]`, `POST .../reauthorize`) and the
test-only trigger of lifecycle notifications, `POST /_sim/graph/subscriptions/{id}/lifecycle`
with `{"event": "reauthorizationRequired" | "subscriptionRemoved" | "missed"}`."""

from __future__ import annotations

import re
from urllib.parse import unquote

from aiohttp import web

from .errors import GraphError
from .handlers import Env, GReq, GResp
from .notify import Notifier


def list_subscriptions(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    """Every live subscription of the application, `env.page_size` a page."""
    values = env.notifier.listing()
    try:
        start = max(0, int(req.query.get("$skiptoken", "0")))
    except ValueError:
        raise GraphError(400, "BadRequest", "$skiptoken is not ours") from None
    body: dict[str, object] = {
        "@odata.context": f"{req.base}/$metadata#subscriptions",
        "value": values[start : start + env.page_size],
    }
    if start + env.page_size < len(values):
        body["@odata.nextLink"] = f"{req.base}/subscriptions?$skiptoken={start + env.page_size}"
    return GResp(200, body)


def get_subscription(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    return GResp(200, env.notifier.get(unquote(m["sid"])))


def reauthorize(env: Env, req: GReq, m: re.Match[str]) -> GResp:
    env.notifier.reauthorize(unquote(m["sid"]))
    return GResp(204)


def add_admin_routes(app: web.Application, notifier: Notifier) -> None:
    async def trigger(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            notifier.lifecycle(request.match_info["sid"], str(body.get("event", "")))
        except GraphError as exc:
            return web.json_response(exc.body(), status=exc.status)
        return web.json_response({"sent": body.get("event")}, status=202)

    app.router.add_post("/_sim/graph/subscriptions/{sid}/lifecycle", trigger)
