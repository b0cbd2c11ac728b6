"""`servers test` against the simulator over HTTP: every step, and each way it can fail."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator
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
        monkeypatch.setenv("SIM_PASSWORD", sim.password)
        await _register(pool, client, sim, "SIM_PASSWORD")
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
        monkeypatch.setenv("SIM_PASSWORD", sim.password)
        await _register(pool, client, sim, "SIM_PASSWORD")

        denied = await _test(client, "bob@sim.example")
        assert denied["ok"] is False
        assert _statuses(denied)[1:4] == [
            ("authenticate", "ok"),
            ("impersonate", "failed"),
            ("create probe", "skipped"),
        ]
        assert "Impersonat" in denied["steps"][2]["detail"]

        monkeypatch.setenv("SIM_PASSWORD", "wrong-password")
        refused = await _test(client, "alice@sim.example")
        assert _statuses(refused)[1] == ("authenticate", "failed")
        assert "wrong-password" not in str(refused)

        monkeypatch.delenv("SIM_PASSWORD")
        unset = await _test(client, "alice@sim.example")
        assert _statuses(unset)[0] == ("connect", "failed")
        assert "SIM_PASSWORD" in unset["steps"][0]["detail"]

        unknown = await client.post(
            "/api/v1/servers/sim/test", json={"mailbox": "x@y.example"}, headers=AUTH
        )
        assert unknown.status == 404


def test_cli_servers_test(
    run_cli: Cli, simulator_thread: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = simulator_thread
    monkeypatch.setenv("SIM_PASSWORD", sim.password)
    args = ["servers", "add", "sim", "--backend", "ews", "--url", sim.ews_url]
    assert run_cli(*args, "--username", sim.username, "--password-env", "SIM_PASSWORD").code == 0
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
    monkeypatch.setenv("SIM_PASSWORD", "nope")
    failed = run_cli("servers", "test", "sim", "--mailbox", "alice@sim.example")
    assert failed.code == 1 and "authenticate  failed" in failed.out
