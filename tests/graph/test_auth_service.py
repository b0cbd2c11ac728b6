"""The service's Graph servers, built by runtime/backends.py from their database rows: they
ask msal (over TLS, against the simulator's token endpoint) for a token of the Graph audience,
or of the server's own scope, with a secret or a client certificate, and sync with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ews_client import GraphClient, OAuthClientCredentials
from ews_client.simulator.config import GraphPolicy, SimulatorConfig
from ews_client.simulator.graph.credentials import make_client_certificate
from sync_service.db.queue import PassKind
from sync_service.db.store import NewServer, Server
from sync_service.operator import probe
from sync_service.runtime import backends
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness
from tests.operator.apiclient import AUTH, api_client

from .test_auth_tokens import claims_of

EMAIL = "alice@sim.example"


async def token_claims(server: Server) -> dict[str, Any]:
    """The claims of the token the service's backend for `server` presents."""
    client = backends.build_backend(server, e2e_settings())
    assert isinstance(client, GraphClient)
    creds = client.transport.auth
    assert isinstance(creds, OAuthClientCredentials)
    try:
        header = (await creds.headers())["Authorization"]
    finally:
        creds.close()
    return claims_of(header.removeprefix("Bearer "))


async def contact_round_trip(h: Harness, pool: asyncpg.Pool, surname: str) -> None:
    user, _ = await h.add_user(EMAIL)
    await pool.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name) VALUES ($1, 'Ada', $2)",
        user,
        surname,
    )
    assert await h.sync(EMAIL, PassKind.INITIAL) == Done("ok")
    assert [i["fields"]["Surname"] for i in await h.items(EMAIL, "contacts")] == [surname]


async def reconfigure(h: Harness, **changes: Any) -> Server:
    """Change the harness's server row; the runner reads it afresh for the next pass."""
    spec = {f.name: getattr(h.server, f.name) for f in dataclasses.fields(h.server)}
    for name in ("id", "enabled"):
        spec.pop(name)
    spec.update(changes)
    assert await h.store.replace_server(h.server.name, NewServer(**spec))
    server = await h.store.server(h.server.id)
    assert server is not None
    return server


async def test_a_graph_server_gets_a_graph_token_through_msal_and_syncs(
    pool: asyncpg.Pool,
) -> None:
    async with harness(pool, backend="graph") as h:
        assert h.server.scope is None and h.sim.ca_file  # default scope, over TLS
        claims = await token_claims(h.server)
        assert claims["aud"] == "https://graph.microsoft.com"
        assert claims["appid"] == h.sim.client_id and claims["appidacr"] == "1"
        await contact_round_trip(h, pool, "Graph")


async def test_a_national_cloud_server_asks_for_its_own_scope(pool: asyncpg.Pool) -> None:
    policy = GraphPolicy(audiences=("https://graph.microsoft.us",))
    async with harness(pool, SimulatorConfig(graph=policy), backend="graph") as h:
        server = await reconfigure(h, scope="https://graph.microsoft.us/.default")
        assert (await token_claims(server))["aud"] == "https://graph.microsoft.us"
        await contact_round_trip(h, pool, "Government")


async def test_a_certificate_server_syncs(pool: asyncpg.Pool, tmp_path: Path) -> None:
    pair = make_client_certificate()
    pem = tmp_path / "sync-app.pem"
    pem.write_text(pair.combined_pem)
    policy = GraphPolicy(client_certificates=(pair.certificate_pem,))
    async with harness(pool, SimulatorConfig(graph=policy), backend="graph") as h:
        server = await reconfigure(h, secret_env=None, certificate_file=str(pem))
        assert (await token_claims(server))["appidacr"] == "2"
        await contact_round_trip(h, pool, "Certified")
        row = await pool.fetchrow("SELECT * FROM sync.servers WHERE id = $1", server.id)
        assert row["certificate_file"] == str(pem)  # the path, never the key
        assert all("PRIVATE KEY" not in str(v) for v in dict(row).values())


async def test_servers_test_names_the_certificate_setting(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    no_key = tmp_path / "cert-only.pem"
    no_key.write_text(make_client_certificate().certificate_pem)
    async with harness(pool, backend="graph") as h:
        await h.add_user(EMAIL)
        for path, reason in (
            (tmp_path / "missing.pem", "cannot read"),
            (no_key, "no private key"),
        ):
            server = await reconfigure(h, secret_env=None, certificate_file=str(path))
            steps = await probe.probe(server, EMAIL, e2e_settings(), backends.open_backend)
            failed = [s for s in steps if s.status == "failed"]
            assert [s.name for s in failed] == ["connect"], steps
            assert f"certificate_file: {path}" in failed[0].detail and reason in failed[0].detail
            assert all(s.status == "skipped" for s in steps[1:])


@pytest.mark.parametrize("scope", [None, "https://microsoftgraph.chinacloudapi.cn/.default"])
async def test_scope_and_certificate_round_trip_through_the_api(
    pool: asyncpg.Pool, scope: str | None
) -> None:
    body: dict[str, Any] = {
        "name": "online", "backend": "graph", "url": "https://graph.microsoft.com/v1.0",
        "tenant": "contoso.onmicrosoft.com", "client_id": "app-1",
        "certificate_file": "/run/secrets/sync-app.pem",
    }  # fmt: skip
    if scope:
        body["scope"] = scope
    async with api_client(pool) as client:
        resp = await client.post("/api/v1/servers", json=body, headers=AUTH)
        assert resp.status == 201, await resp.text()
        listed = await (await client.get("/api/v1/servers", headers=AUTH)).json()
        (server,) = listed["servers"]
        assert server["scope"] == scope
        assert server["certificate_file"] == "/run/secrets/sync-app.pem"
        assert server["secret_env"] is None and server["secret_file"] is None
        us = {"scope": "https://graph.microsoft.us/.default"}
        resp = await client.patch("/api/v1/servers/online", json=us, headers=AUTH)
        assert resp.status == 200, await resp.text()
        bad = {"scope": "http://graph.microsoft.us/Contacts.Read"}
        resp = await client.patch("/api/v1/servers/online", json=bad, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["field"] == "scope"
        # A secret replaces the certificate (one credential at a time).
        resp = await client.patch(
            "/api/v1/servers/online", json={"secret_env": "EXCHANGE_ONLINE_SECRET"}, headers=AUTH
        )
        assert resp.status == 200, await resp.text()
    row = await pool.fetchrow("SELECT * FROM sync.servers WHERE name = 'online'")
    assert row["scope"] == "https://graph.microsoft.us/.default"
    assert (row["secret_env"], row["certificate_file"]) == ("EXCHANGE_ONLINE_SECRET", None)
