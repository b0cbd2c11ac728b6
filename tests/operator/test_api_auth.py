from __future__ import annotations

import io

import asyncpg
from aiohttp import ClientResponse

from tests.operator.apiclient import AUTH, TOKEN, api_client

PROTECTED = ["/api/v1/status", "/api/v1/servers", "/openapi.json", "/api/v1/no-such-thing"]


async def _problem(resp: ClientResponse, status: int) -> dict[str, object]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, object] = await resp.json(content_type=None)
    assert body["status"] == status and {"type", "title", "detail"} <= body.keys()
    return body


async def test_without_a_token_configured_the_api_is_closed(pool: asyncpg.Pool) -> None:
    async with api_client(pool, env={}) as client:
        for path in PROTECTED:
            body = await _problem(await client.get(path, headers=AUTH), 503)
            assert "set SYNC_API_TOKEN" in str(body["detail"])
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/metrics")).status == 200

    # with a token, /metrics can be made private too
    env = {"SYNC_API_TOKEN": TOKEN, "SYNC_METRICS_PUBLIC": "false"}
    async with api_client(pool, env=env) as client:
        await _problem(await client.get("/metrics"), 401)
        assert (await client.get("/metrics", headers=AUTH)).status == 200
        assert (await client.get("/healthz")).status == 200


async def test_bearer_token_is_required_and_checked(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        for path in PROTECTED:
            missing = await client.get(path)
            body = await _problem(missing, 401)
            assert body["field"] == "Authorization"
            assert missing.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"})
            assert "not valid" in str((await _problem(wrong, 401))["detail"])
            basic = await client.get(path, headers={"Authorization": f"Basic {TOKEN}"})
            await _problem(basic, 401)
        ok = await client.get("/api/v1/status", headers=AUTH)
        assert ok.status == 200
        unknown = await client.get("/api/v1/no-such-thing", headers=AUTH)
        await _problem(unknown, 404)
        wrong_method = await client.delete("/api/v1/status", headers=AUTH)
        await _problem(wrong_method, 405)


async def test_request_bodies_are_capped(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        big = b"crm_user_id,email,server\n" + b"x" * (5 * 1024 * 1024)
        resp = await client.post("/api/v1/mailboxes/import", data=io.BytesIO(big), headers=AUTH)
        await _problem(resp, 413)
        assert await pool.fetchval("SELECT count(*) FROM sync.mailboxes") == 0


async def test_openapi_documents_every_route(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        resp = await client.get("/openapi.json", headers=AUTH)
        doc = await resp.json()
        routes = {
            (route.method.lower(), route.resource.canonical)
            for route in client.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    assert doc["openapi"] == "3.1.0"
    documented = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented == routes
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert doc["paths"][path]["get"]["security"] == []
