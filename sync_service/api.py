"""Admin HTTP API: probes now; operator endpoints are added under /api/v1/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

ReadyCheck = Callable[[], Awaitable[list[str]]]
READY_CHECK: web.AppKey[ReadyCheck] = web.AppKey("ready_check")


async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the check returns no problems (database, migrations, workers)."""
    problems = await request.app[READY_CHECK]()
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


def build_app(ready_check: ReadyCheck) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[READY_CHECK] = ready_check
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
