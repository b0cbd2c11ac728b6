"""`servers test` against the simulator over HTTP: every step, and each way it can fail,
reported honestly: "connect" is ok only when the server answered; a failure says what failed
(the policy, a redirect, TLS, a timeout, an HTTP status, the credentials) and every failure to
connect reads alike (no port scanning through the probe)."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator
from sync_service.config import Settings
from sync_service.db.store import Server
from sync_service.operator import probe
from sync_service.runtime.backends import open_backend
from tests.dispatcher.conftest import make_settings
from tests.ews.listeners import http_server, redirect_to, sink
from tests.operator.apiclient import AUTH, api_client
from tests.operator.conftest import Cli

OK_STEPS = ["connect", "authenticate", "impersonate", "create probe", "find probe", "delete probe"]


async def _register(pool: asyncpg.Pool, client: Any, sim: RunningSimulator, env: str) -> None:
    server = {
        "name": "sim",
        "backend": "ews",
        "url": sim.ews_url,
        "username": sim.username,
        "secret_env": env,
    }
    assert (await client.post("/api/v1/servers", json=server, headers=AUTH)).status == 201
    csv = "crm_user_id,email,server\nu1,alice@sim.example,sim\nu2,bob@sim.example,sim\n"
    assert (await client.post("/api/v1/mailboxes/import", data=csv, headers=AUTH)).status == 200


async def _test(client: Any, mailbox: str | None = None) -> dict[str, Any]:
    body = {"mailbox": mailbox} if mailbox else {}
    resp = await client.post("/api/v1/servers/sim/test", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


def _statuses(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["name"], s["status"]) for s in result["steps"]]


async def test_probe_passes_and_leaves_nothing_behind(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_simulator() as sim, api_client(pool) as client:
        sim.sim.add_mailbox("alice@sim.example")
        sim.sim.add_mailbox("bob@sim.example")
        monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", sim.password)
        await _register(pool, client, sim, "EXCHANGE_SIM_PASSWORD")
        result = await _test(client)
        assert result["ok"] is True and result["mailbox"] == "alice@sim.example"
        assert _statuses(result) == [(name, "ok") for name in OK_STEPS]
        box = sim.sim.mailboxes["alice@sim.example"]
        assert not box.items  # the probe was removed
        requests = sim.sim.counters()["requests"]
        assert isinstance(requests, dict)
        assert requests.get("CreateItem") == 1 and requests.get("DeleteItem") == 1, requests


async def test_probe_reports_the_failing_step(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimulatorConfig(impersonable=frozenset({"alice@sim.example"}))
    async with running_simulator(config) as sim, api_client(pool) as client:
        sim.sim.add_mailbox("alice@sim.example")
        sim.sim.add_mailbox("bob@sim.example")
        monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", sim.password)
        await _register(pool, client, sim, "EXCHANGE_SIM_PASSWORD")

        denied = await _test(client, "bob@sim.example")
        assert denied["ok"] is False
        assert _statuses(denied)[1:4] == [
            ("authenticate", "ok"),
            ("impersonate", "failed"),
            ("create probe", "skipped"),
        ]
        assert "Impersonat" in denied["steps"][2]["detail"]

        monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", "wrong-password")
        refused = await _test(client, "alice@sim.example")
        assert _statuses(refused)[:2] == [("connect", "ok"), ("authenticate", "failed")]
        assert refused["steps"][1]["detail"].startswith("authentication refused: ")
        assert "wrong-password" not in str(refused)

        monkeypatch.delenv("EXCHANGE_SIM_PASSWORD")
        unset = await _test(client, "alice@sim.example")
        assert _statuses(unset)[0] == ("connect", "failed")
        assert "EXCHANGE_SIM_PASSWORD" in unset["steps"][0]["detail"]

        unknown = await client.post(
            "/api/v1/servers/sim/test", json={"mailbox": "x@y.example"}, headers=AUTH
        )
        assert unknown.status == 404


def test_cli_servers_test(
    run_cli: Cli, simulator_thread: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = simulator_thread
    monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", sim.password)
    args = ["servers", "add", "sim", "--backend", "ews", "--url", sim.ews_url]
    password = ["--password-env", "EXCHANGE_SIM_PASSWORD"]
    assert run_cli(*args, "--username", sim.username, *password).code == 0
    nobody = run_cli("servers", "test", "sim")
    assert nobody.code == 2 and "give --mailbox" in nobody.err
    csv = "crm_user_id,email,server\nu1,alice@sim.example,sim\n"
    assert run_cli("mailboxes", "import", "-", stdin=csv).code == 0
    result = run_cli("servers", "test", "sim")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["STEP", "RESULT", "DETAIL"]
    assert [line[: len("delete probe")].strip() for line in lines[1:]] == OK_STEPS
    assert all(line.split()[-1] != "failed" for line in lines[1:])
    monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", "nope")
    failed = run_cli("servers", "test", "sim", "--mailbox", "alice@sim.example")
    assert failed.code == 1 and "authenticate  failed" in failed.out


# -- honest steps, the probe run directly (no database needed) -------------------------------
PASSWORD_ENV = "EXCHANGE_PROBE_PASSWORD"
PASSWORD = "probe-pw-7d1f"  # looked for where it must not be


def _server(url: str, **fields: Any) -> Server:
    base: dict[str, Any] = {
        "id": 1, "name": "probed", "backend": "ews", "url": url, "auth_kind": "basic",
        "username": "svc-sync", "tenant": None, "client_id": None, "authority": None,
        "secret_env": PASSWORD_ENV, "secret_file": None, "ca_file": None, "time_zone": "UTC",
        "express_interval": timedelta(minutes=15), "complete_at": time(2),
        "max_concurrency": 4, "rate_per_second": 50.0, "enabled": True,
    }  # fmt: skip
    return Server(**{**base, **fields})


async def _probe(server: Server, settings: Settings | None = None) -> list[tuple[str, str, str]]:
    steps = await probe.probe(
        server, "alice@sim.example", settings or make_settings(), open_backend
    )
    return [(s.name, s.status, s.detail) for s in steps]


def _failed_at(steps: list[tuple[str, str, str]], name: str) -> str:
    """The detail of the one failed step, which must be `name`; the later ones are skipped."""
    names = [n for n, _, _ in steps]
    at = names.index(name)
    assert all(status == "ok" for _, status, _ in steps[:at]), steps
    assert steps[at][1] == "failed", steps
    assert all(status == "skipped" for _, status, _ in steps[at + 1 :]), steps
    return steps[at][2]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD


async def _silent(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.Response(status=200)


@pytest.mark.usefixtures("password")
async def test_every_failure_to_connect_reads_alike() -> None:
    """Closed port, a listener that hangs up, one that never answers: one sentence each, the
    same but for the address the operator gave."""
    settings = make_settings(SYNC_HTTP_TIMEOUT="1")
    async with sink() as hangs_up:
        closed = hangs_up.port
    async with sink() as listener, http_server(_silent) as silent:
        urls = [
            f"http://127.0.0.1:{closed}/EWS/Exchange.asmx",
            f"http://127.0.0.1:{listener.port}/EWS/Exchange.asmx",
            silent.url + "/EWS/Exchange.asmx",
        ]
        details = [_failed_at(await _probe(_server(u), settings), "connect") for u in urls]
    hosts = [u.split("/")[2] for u in urls]
    assert details == [f"could not connect to {host}" for host in hosts]


@pytest.mark.usefixtures("password")
async def test_denied_addresses_are_refused_before_any_byte() -> None:
    async with sink() as target:
        on = make_settings(SYNC_OUTBOUND_DENY_PRIVATE="true")
        for host in ("127.0.0.1", "localhost"):
            url = f"http://{host}:{target.port}/EWS/Exchange.asmx"
            detail = _failed_at(await _probe(_server(url), on), "connect")
            assert detail.startswith(f"refused by the outbound policy: {host}")
            assert "loopback (127.0.0.0/8)" in detail
        for url, said in (
            ("http://169.254.169.254/EWS/Exchange.asmx", "169.254.169.254 is link-local"),
            ("http://2852039166/EWS/Exchange.asmx", "(that is 169.254.169.254) is link-local"),
            (f"http://0.0.0.0:{target.port}/EWS/Exchange.asmx", "0.0.0.0 is unspecified"),
        ):
            assert said in _failed_at(await _probe(_server(url)), "connect")
        assert target.connections == 0 and not target.received


async def test_a_redirect_is_refused_and_its_target_gets_nothing(password: str) -> None:
    async with sink() as target:
        elsewhere = f"http://127.0.0.1:{target.port}/EWS/Exchange.asmx"
        async with http_server(redirect_to(elsewhere, 307)) as origin:
            steps = await _probe(_server(origin.url + "/EWS/Exchange.asmx"))
    host = origin.url.split("/")[2]
    assert steps[0] == ("connect", "ok", f"{host} answered (HTTP 307)")
    detail = _failed_at(steps, "authenticate")
    assert detail.startswith("redirect refused: the server answered HTTP 307 to ")
    assert elsewhere in detail
    assert target.connections == 0 and password.encode() not in target.received


@pytest.mark.usefixtures("password")
async def test_tls_verification_failure_says_so() -> None:
    async with running_simulator(tls=True) as sim:
        steps = await _probe(_server(sim.ews_url))  # no ca_file: the test CA is unknown
    detail = _failed_at(steps, "connect")
    assert detail.startswith(f"TLS verification failed for {sim.url.split('/')[2]}: ")
    assert "certificate" in detail


@pytest.mark.usefixtures("password")
async def test_an_http_status_is_named_and_not_taken_for_an_identity() -> None:
    async def not_found(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="<html>nothing here</html>")

    async with http_server(not_found) as origin:
        steps = await _probe(_server(origin.url + "/EWS/Exchange.asmx"))
    assert steps[0][:2] == ("connect", "ok")
    assert _failed_at(steps, "authenticate") == "HTTP status 404 from the server"
    # One GET to connect, one POST: a diagnostic reports the first answer, no retries.
    assert [method for method, _, _ in origin.requests] == ["GET", "POST"]


@pytest.mark.usefixtures("password")
async def test_a_server_that_stops_answering_times_out() -> None:
    async def answers_get_only(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            await asyncio.sleep(5)
        return web.Response(status=401)

    async with http_server(answers_get_only) as origin:
        steps = await _probe(
            _server(origin.url + "/EWS/Exchange.asmx"), make_settings(SYNC_HTTP_TIMEOUT="1")
        )
    host = origin.url.split("/")[2]
    assert steps[0] == ("connect", "ok", f"{host} answered (HTTP 401)")
    assert _failed_at(steps, "authenticate") == f"timed out waiting for {host}"


@pytest.mark.usefixtures("password")
async def test_an_unreachable_token_endpoint_is_named() -> None:
    async with sink() as gone:
        closed = gone.port
    async with running_simulator() as sim:
        server = _server(
            sim.ews_url, auth_kind="oauth", client_id="app", tenant="contoso",
            authority=f"https://127.0.0.1:{closed}/contoso",
        )  # fmt: skip
        steps = await _probe(server)
    assert steps[0][:2] == ("connect", "ok")
    detail = _failed_at(steps, "authenticate")
    assert detail == f"could not connect to the token endpoint 127.0.0.1:{closed}"
