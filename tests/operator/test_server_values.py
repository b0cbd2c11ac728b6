"""Server settings that could not be used safely later are refused with a 4xx (exit 2) naming
the field: credentials inside URLs, URLs that are not http(s), numbers that are not finite,
control and invisible characters in any string field, oversized strings."""

from __future__ import annotations

import json
import math
from typing import Any

import asyncpg
import pytest

from sync_service.db.store import NewServer, Store
from sync_service.operator.server_specs import InvalidInput, ServerChanges, new_server
from tests.operator.apiclient import AUTH, SERVER, api_client
from tests.operator.conftest import Cli, add_server_args

PASSWORD = "Hunter2pw"  # a canary typed into a URL, never a real secret
GRAPH = {
    "name": "online", "backend": "graph", "url": "https://graph.microsoft.com/v1.0",
    "tenant": "contoso.onmicrosoft.com", "client_id": "app-1", "secret_env": "EXCHANGE_GRAPH",
    "authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
    "scope": "https://graph.microsoft.com/.default",
}  # fmt: skip
# Every string field of a server, with a valid value: the hostile variants are built from it.
FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "name": (SERVER, "ex2"),
    "url": (SERVER, "https://ex1.example.com/EWS/Exchange.asmx"),
    "username": (SERVER, "svc-sync"),
    "secret_env": (SERVER, "EXCHANGE_EX2"),
    "time_zone": (SERVER, "Europe/Paris"),
    "express_interval": (SERVER, "15m"),
    "complete_at": (SERVER, "02:00"),
    "ca_file": (SERVER, "/run/secrets/ca.pem"),
    "tenant": (GRAPH, "contoso.onmicrosoft.com"),
    "client_id": (GRAPH, "app-1"),
    "authority": (GRAPH, "https://login.microsoftonline.com/contoso"),
    "scope": (GRAPH, "https://graph.microsoft.com/.default"),
    "certificate_file": ({**GRAPH, "secret_env": None}, "/run/secrets/app.pem"),
    "secret_file": ({**SERVER, "secret_env": None}, "/run/secrets/ex2.pw"),
}
CONTROLS = ("\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u200b", "\u202e", "\ud800")
USERINFO_URLS = (
    f"https://svc:{PASSWORD}@ex1.example.com/EWS/Exchange.asmx",
    f"https://{PASSWORD}@ex1.example.com/EWS/Exchange.asmx",
    f"http:svc:{PASSWORD}@ex1.example.com/EWS/Exchange.asmx",
)


def _body(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    merged = {**base, "name": "ex2", **changes}
    return {k: v for k, v in merged.items() if v is not None}


async def _refused(client: Any, method: str, path: str, field: str, **kwargs: Any) -> str:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    resp = await client.request(method, path, headers=headers, **kwargs)
    text = await resp.text()
    assert resp.status == 400, (path, kwargs, text)
    assert (await resp.json())["field"] == field, (kwargs, text)
    return text


async def test_credentials_in_urls_are_refused_and_never_echoed(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        assert (await client.post("/api/v1/servers", json=GRAPH, headers=AUTH)).status == 201
        for field, base in (("url", SERVER), ("authority", GRAPH), ("scope", GRAPH)):
            for url in USERINFO_URLS:
                value = f"{url.rsplit('/', 2)[0]}/.default" if field == "scope" else url
                body = _body(base, **{field: value})
                text = await _refused(client, "POST", "/api/v1/servers", field, json=body)
                assert PASSWORD not in text
                text = await _refused(
                    client, "PATCH", "/api/v1/servers/online", field, json={field: value}
                )
                assert PASSWORD not in text
        listed = await (await client.get("/api/v1/servers", headers=AUTH)).text()
    assert PASSWORD not in listed
    assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 1


async def test_a_url_with_credentials_stored_before_is_not_echoed(pool: asyncpg.Pool) -> None:
    url = f"https://svc:{PASSWORD}@ex1.example.com/EWS/Exchange.asmx"
    await Store(pool).add_server(
        NewServer("old", "ews", url, "basic", username="svc", secret_env="EXCHANGE_OLD")
    )
    async with api_client(pool) as client:
        listed = await (await client.get("/api/v1/servers", headers=AUTH)).json()
        one = await (await client.get("/api/v1/servers/old", headers=AUTH)).json()
    assert listed["servers"][0]["url"] == one["url"] == "https://ex1.example.com/EWS/Exchange.asmx"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ex1.example.com/",
        "javascript:alert(1)",
        "https://",
        "https://ex1.example.com:99999/EWS",
        "https://ex1.example.com:port/EWS",
        "http://[::1/EWS",
        "https://ex1 .example.com/EWS",
    ],
)
async def test_only_http_urls_with_a_host_are_accepted(pool: asyncpg.Pool, url: str) -> None:
    async with api_client(pool) as client:
        await _refused(client, "POST", "/api/v1/servers", "url", json=_body(SERVER, url=url))


async def test_numbers_must_be_finite_and_in_range(pool: asyncpg.Pool) -> None:
    """1e999 is valid JSON that Python reads as Infinity; NaN and Infinity are not JSON at
    all. Each is a 400, none is stored, and the listing stays valid JSON."""
    async with api_client(pool) as client:
        assert (await client.post("/api/v1/servers", json=SERVER, headers=AUTH)).status == 201
        json_header = {"Content-Type": "application/json"}
        numbers = ("1e999", "-1e999", "-1", "0", "1e7", "NaN", "Infinity", "-Infinity")
        for number in numbers:
            raw = f'{{"rate_per_second": {number}}}'
            # The JSON reader may refuse the constants already (then the field is the body).
            fields = ("rate_per_second",) if number[-1].isdigit() else ("rate_per_second", "body")
            for method, path, body in (
                ("POST", "/api/v1/servers", json.dumps(_body(SERVER))[:-1] + ", " + raw[1:]),
                ("PATCH", "/api/v1/servers/ex1", raw),
            ):
                resp = await client.request(
                    method, path, data=body, headers={**AUTH, **json_header}
                )
                problem = await resp.json()
                assert resp.status == 400 and problem["field"] in fields, (number, problem)
        listed = await (await client.get("/api/v1/servers", headers=AUTH)).text()

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    (server,) = json.loads(listed, parse_constant=no_constants)["servers"]
    assert server["rate_per_second"] == 100.0


@pytest.mark.parametrize(
    "rate",
    [math.nan, math.inf, -math.inf, 10**400, -1.0, 0.0, 1e7],
    ids=["nan", "inf", "-inf", "10**400", "-1", "0", "1e7"],
)
def test_the_specs_refuse_a_rate_that_is_not_a_finite_positive_number(rate: float) -> None:
    changes = ServerChanges(
        backend="ews", url="https://ex1.example.com/EWS/Exchange.asmx", username="svc",
        secret_env="EXCHANGE_EX1", rate_per_second=rate,
    )  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        new_server("ex1", changes)
    assert refused.value.field == "rate_per_second"


async def test_control_and_invisible_characters_are_refused_in_every_field(
    pool: asyncpg.Pool,
) -> None:
    async with api_client(pool) as client:
        for field, (base, valid) in FIELDS.items():
            for char in CONTROLS:
                hostile = valid[:3] + char + valid[3:]
                text = await _refused(
                    client, "POST", "/api/v1/servers", field, json=_body(base, **{field: hostile})
                )
                assert char not in json.loads(text)["detail"], (field, char)
            # the valid value itself is accepted: the refusal was the character's
            resp = await client.post(
                "/api/v1/servers", json=_body(base, **{field: valid}), headers=AUTH
            )
            assert resp.status == 201, (field, await resp.text())
            await client.delete("/api/v1/servers/ex2", headers=AUTH)
    assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 0


async def test_strings_over_their_bound_are_refused(pool: asyncpg.Pool) -> None:
    long_host = "a" * 3000
    cases = {
        "name": "x" * 64,
        "username": "u" * 300,
        "tenant": "t" * 300,
        "url": f"https://{long_host}.example/EWS",
        "secret_file": "/run/secrets/" + "s" * 5000,
        "secret_env": "EXCHANGE_" + "E" * 300,
    }
    async with api_client(pool) as client:
        for field, value in cases.items():
            base = GRAPH if field == "tenant" else SERVER
            if field == "secret_file":
                base = {**SERVER, "secret_env": None}
            await _refused(
                client, "POST", "/api/v1/servers", field, json=_body(base, **{field: value})
            )
    assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 0


def test_the_cli_refuses_the_same_values_with_exit_2(run_cli: Cli) -> None:
    assert run_cli(*add_server_args("ex1")).code == 0
    cases = [
        (["--rate", "nan"], "rate_per_second"),
        (["--rate", "inf"], "rate_per_second"),
        (["--rate", "1e999"], "rate_per_second"),
        (["--rate", "-1"], "rate_per_second"),
        (["--url", USERINFO_URLS[0]], "url"),
        (["--username", "svc\x1b[31m"], "username"),
        (["--timezone", "Europe/Paris\x00"], "time_zone"),
        (["--username", "u" * 300], "username"),
        (["--url", f"https://{'a' * 3000}.example/EWS"], "url"),
    ]
    for args, field in cases:
        for command in (["servers", "update", "ex1"], add_server_args("ex2")):
            result = run_cli(*command, *args)
            assert result.code == 2, (command, args, result)
            assert result.err.startswith(f"sync-service: {field}:"), (args, result.err)
            assert PASSWORD not in result.err + result.out and "\x1b" not in result.err
    listed = run_cli("servers", "list", "--json")
    (server,) = json.loads(listed.out)
    assert server["name"] == "ex1" and server["rate_per_second"] == 100.0


def test_an_empty_ca_file_removes_it(run_cli: Cli) -> None:
    assert run_cli(*add_server_args("ex1", "--ca-file", "/run/secrets/ca.pem")).code == 0
    shown = json.loads(run_cli("servers", "show", "ex1", "--json").out)
    assert shown["ca_file"] == "/run/secrets/ca.pem"
    assert run_cli("servers", "update", "ex1", "--ca-file", "").code == 0
    assert json.loads(run_cli("servers", "show", "ex1", "--json").out)["ca_file"] is None
