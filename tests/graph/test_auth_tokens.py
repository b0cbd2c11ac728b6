"""The simulator's tokens and Graph's checks of them: audience, lifetime, signature, roles.

Tokens come from real msal over TLS (the client's OAuthClientCredentials); the refusals are
read on the wire, where Graph's 401 / 403 bodies can be checked field by field.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ews_client.errors import AuthError, MailboxError
from ews_client.io.auth import EWS_SCOPE, OAuthClientCredentials
from ews_client.io.graph import GraphClient
from ews_client.models import Contact
from ews_client.simulator.config import GraphPolicy, SimulatorConfig
from ews_client.simulator.graph import auth, permissions
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX, GRAPH_SCOPE

GRAPH = "https://graph.microsoft.com"


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def token_for(sim: RunningSimulator, scope: str) -> str:
    creds = OAuthClientCredentials(
        authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
        scope=scope, ca_file=sim.ca_file,
    )  # fmt: skip
    try:
        return (await creds.headers())["Authorization"].removeprefix("Bearer ")
    finally:
        creds.close()


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    url: str,
    token: str | None,
    method: str = "GET",
    body: Any = None,
) -> tuple[int, dict[str, Any], Any]:
    headers = {"client-request-id": "c0ffee00-0000-4000-8000-000000000001"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.request(method, url, headers=headers, json=body) as resp:
        return resp.status, dict(resp.headers), await resp.json()


def assert_graph_refusal(body: dict[str, Any], code: str) -> str:
    """Graph's error shape: code, message, innerError with date and both request ids."""
    error = body["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert inner["client-request-id"] == "c0ffee00-0000-4000-8000-000000000001"
    time.strptime(inner["date"], "%Y-%m-%dT%H:%M:%S")
    message: str = error["message"]
    return message


async def test_graph_token_carries_audience_tenant_app_and_roles(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    token = await token_for(sim, GRAPH_SCOPE)
    claims = claims_of(token)
    policy = sim.sim.config.graph
    assert claims["aud"] == GRAPH and claims["tid"] == policy.tenant_id
    assert claims["appid"] == claims["azp"] == sim.client_id
    assert set(claims["roles"]) == {"Contacts.ReadWrite", "Calendars.ReadWrite",
                                    "Tasks.ReadWrite.All", "User.ReadWrite.All"}  # fmt: skip
    assert claims["iat"] <= claims["nbf"] < claims["exp"]
    assert claims["exp"] - claims["iat"] == policy.token_lifetime_s
    # The signature verifies with the key the OpenID configuration publishes.
    async with http.get(f"{sim.authority}/v2.0/.well-known/openid-configuration") as resp:
        jwks_uri = (await resp.json())["jwks_uri"]
    async with http.get(jwks_uri) as resp:
        (jwk,) = (await resp.json())["keys"]
    header = json.loads(unb64(token.split(".")[0]))
    assert header["alg"] == "RS256" and header["kid"] == jwk["kid"]
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(unb64(jwk["e"]), "big"), int.from_bytes(unb64(jwk["n"]), "big")
    )
    head, body, signature = token.split(".")
    numbers.public_key().verify(
        unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


async def test_ews_audience_token_is_refused_with_graphs_401(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    token = await token_for(sim, EWS_SCOPE)
    assert claims_of(token)["aud"] == "https://outlook.office365.com"
    status, headers, body = await call(http, f"{sim.graph_url}/users/{BOX}/contacts", token)
    assert status == 401
    assert "audience" in assert_graph_refusal(body, "InvalidAuthenticationToken")
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert headers["client-request-id"] == body["error"]["innerError"]["client-request-id"]
    # The client with an EWS-scoped credential gets an AuthError, after one fresh token.
    creds = OAuthClientCredentials(
        authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
        scope=EWS_SCOPE, ca_file=sim.ca_file,
    )  # fmt: skip
    async with GraphClient(sim.graph_url, creds, ca_file=sim.ca_file) as client:
        with pytest.raises(AuthError):
            await client.read_marker(BOX)
    assert creds.acquisitions == 2


async def test_expired_forged_and_malformed_tokens_are_refused(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    policy = sim.sim.config.graph
    url = f"{sim.graph_url}/users/{BOX}/contacts"
    expired = auth.issue(policy, GRAPH, time.time() - 7200)
    status, _, body = await call(http, url, expired)
    assert status == 401 and "expired" in assert_graph_refusal(body, "InvalidAuthenticationToken")

    head, claims, signature = (await token_for(sim, GRAPH_SCOPE)).split(".")
    raised = {**claims_of(f"{head}.{claims}.x"), "roles": ["Directory.ReadWrite.All"]}
    forged = f"{head}.{b64(json.dumps(raised).encode())}.{signature}"
    status, _, body = await call(http, url, forged)
    assert status == 401 and "signature" in assert_graph_refusal(body, "InvalidAuthenticationToken")

    other_tenant = dataclasses.replace(policy, tenant_id="0ther000-0000-4000-8000-000000000000")
    status, _, body = await call(http, url, auth.issue(other_tenant, GRAPH, time.time()))
    assert status == 401 and "issuer" in assert_graph_refusal(body, "InvalidAuthenticationToken")

    for token in ("not-a-jwt", "a.b.c", None):
        status, _, body = await call(http, url, token)
        assert status == 401, token
        assert_graph_refusal(body, "InvalidAuthenticationToken")


@pytest.fixture
async def contacts_only() -> AsyncIterator[RunningSimulator]:
    """An app an admin granted Contacts.Read and nothing else."""
    config = SimulatorConfig(graph=GraphPolicy(roles=("Contacts.Read",)))
    async with running_simulator(config, tls=True) as running:
        running.sim.add_numbered(1)
        yield running


async def test_a_call_without_its_permission_is_refused_403(
    contacts_only: RunningSimulator,
) -> None:
    sim = contacts_only
    token = await token_for(sim, GRAPH_SCOPE)
    assert claims_of(token)["roles"] == ["Contacts.Read"]
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        users = f"{sim.graph_url}/users/{BOX}"
        status, _, _ = await call(http, f"{users}/contacts", token)
        assert status == 200  # reading contacts is granted
        for method, path, body in (
            ("POST", "contacts", {"givenName": "No"}),  # a write needs Contacts.ReadWrite
            ("GET", "events", None),
            ("GET", "todo/lists", None),
        ):
            status, _, answer = await call(http, f"{users}/{path}", token, method, body)
            assert status == 403, (method, path)
            message = assert_graph_refusal(answer, "ErrorAccessDenied")
            assert message == "Access is denied. Check credentials and try again."
        # Inside a $batch the refusal is the inner answer's; the batch itself is a 200.
        batch = {"requests": [
            {"id": "1", "method": "GET", "url": f"/users/{BOX}/contacts"},
            {"id": "2", "method": "GET", "url": f"/users/{BOX}/calendarView/delta"},
        ]}  # fmt: skip
        status, _, answer = await call(http, f"{sim.graph_url}/$batch", token, "POST", batch)
        assert status == 200
        by_id = {r["id"]: r for r in answer["responses"]}
        assert by_id["1"]["status"] == 200 and by_id["2"]["status"] == 403
        assert by_id["2"]["body"]["error"]["code"] == "ErrorAccessDenied"
        # A subscription needs the read permission of what it watches.
        sub = {"changeType": "created", "resource": f"users/{BOX}/events",
               "notificationUrl": "https://127.0.0.1:9/none",
               "expirationDateTime": "2099-01-01T00:00:00Z"}  # fmt: skip
        status, _, answer = await call(http, f"{sim.graph_url}/subscriptions", token, "POST", sub)
        assert status == 403 and answer["error"]["code"] == "ErrorAccessDenied"
        # The client reports the refusal with Graph's code, and nothing was written.
        creds = OAuthClientCredentials(
            authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
            scope=GRAPH_SCOPE, ca_file=sim.ca_file,
        )  # fmt: skip
        async with GraphClient(sim.graph_url, creds, ca_file=sim.ca_file) as client:
            with pytest.raises(MailboxError) as refused:
                await client.create_item(BOX, Contact(given_name="No", surname="Write"))
        assert refused.value.code == "ErrorAccessDenied"
        status, _, listing = await call(http, f"{users}/contacts", token)
        assert status == 200 and listing["value"] == []


async def test_token_endpoint_refuses_unknown_resources_and_bad_scopes(
    sim: RunningSimulator,
) -> None:
    for scope, error in (
        ("https://graph.example.com/.default", "invalid_resource"),
        ("https://graph.microsoft.com/Contacts.Read", "invalid_scope"),
    ):
        creds = OAuthClientCredentials(
            authority=sim.authority, client_id=sim.client_id, client_secret=sim.client_secret,
            scope=scope, ca_file=sim.ca_file,
        )  # fmt: skip
        with pytest.raises(AuthError) as refused:
            await creds.headers()
        creds.close()
        assert refused.value.code == error, scope


async def test_national_cloud_audience(http: aiohttp.ClientSession) -> None:
    """A simulator playing Graph for US Government accepts its audience, not the global one."""
    policy = GraphPolicy(audiences=("https://graph.microsoft.us",))
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as sim:
        sim.sim.add_numbered(1)
        ctx = ssl.create_default_context(cafile=sim.ca_file)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            url = f"{sim.graph_url}/users/{BOX}/contacts"
            us = await token_for(sim, "https://graph.microsoft.us/.default")
            assert claims_of(us)["aud"] == "https://graph.microsoft.us"
            assert (await call(session, url, us))[0] == 200
            assert (await call(session, url, await token_for(sim, GRAPH_SCOPE)))[0] == 401


def test_permission_of_each_route() -> None:
    def none(_: str) -> str | None:
        return None

    def watched(sub_id: str) -> str | None:
        return {"s1": f"users/{BOX}/todo/lists/L/tasks"}.get(sub_id)

    cases = [
        ("GET", f"users/{BOX}/contacts/delta()", None, "Contacts.Read"),
        ("GET", f"users/{BOX}/contactFolders/F/contacts/delta", None, "Contacts.Read"),
        ("PATCH", f"users/{BOX}/contacts/X", {}, "Contacts.ReadWrite"),
        ("GET", f"users/{BOX}/calendarView/delta", None, "Calendars.Read"),
        ("GET", f"users/{BOX}/calendar/events", None, "Calendars.Read"),
        ("POST", f"users/{BOX}/events/E/cancel", {}, "Calendars.ReadWrite"),
        ("DELETE", f"users/{BOX}/events/E", None, "Calendars.ReadWrite"),
        ("GET", f"users/{BOX}/todo/lists", None, "Tasks.Read.All"),
        ("POST", f"users/{BOX}/todo/lists/L/tasks", {}, "Tasks.ReadWrite.All"),
        ("POST", f"users/{BOX}/extensions", {}, "User.ReadWrite.All"),
        ("GET", f"users/{BOX}/extensions/com.crmsync.marker", None, "User.Read.All"),
        ("POST", "subscriptions", {"resource": f"/users/{BOX}/contacts"}, "Contacts.Read"),
    ]
    for method, path, body, needed in cases:
        assert permissions.required(method, path, body, none) == needed, (method, path)
    assert permissions.required("PATCH", "subscriptions/s1", {}, watched) == "Tasks.Read.All"
    assert permissions.required("GET", "subscriptions", None, none) is None
    assert permissions.granted(["Tasks.ReadWrite.All"], "Tasks.Read.All")
    assert permissions.granted(["Contacts.ReadWrite"], "Contacts.Read")
    assert not permissions.granted(["Contacts.Read"], "Contacts.ReadWrite")
    assert not permissions.granted(["Calendars.ReadWrite"], "Contacts.Read")
