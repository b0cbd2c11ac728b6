"""A CLI flow and API calls with a known password and token: neither may appear in any log."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator
from sync_service.db.pool import create_pool
from sync_service.process.logs import JsonFormatter, KeyValueFormatter
from tests.operator.apiclient import api_client
from tests.operator.conftest import Cli

PASSWORD = "pw-Zq81-known-secret"
TOKEN = "tok-Hx44-known-secret"


@pytest.fixture
def simulator_config() -> SimulatorConfig:
    """The simulator accepts the known password, so that the probe really authenticates."""
    return SimulatorConfig(password=PASSWORD)


async def _api_calls(url: str, sim: RunningSimulator) -> list[int]:
    pool = await create_pool(url, 4)
    statuses = []
    env = {"SYNC_API_TOKEN": TOKEN, "SYNC_LOG_LEVEL": "DEBUG"}
    try:
        async with api_client(pool, env=env) as client:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            calls: list[tuple[str, str, dict[str, Any]]] = [
                ("GET", "/api/v1/status", {"headers": auth}),
                ("GET", "/api/v1/servers", {"headers": {"Authorization": f"Bearer {TOKEN}-x"}}),
                ("GET", "/api/v1/servers", {"headers": {"Authorization": TOKEN}}),
                ("POST", "/api/v1/servers/simtext/test", {"headers": auth, "json": {}}),
                (
                    "POST",
                    "/api/v1/servers",
                    {"headers": auth, "json": {"name": "x", "password": PASSWORD}},
                ),
                ("POST", "/api/v1/sync", {"headers": auth, "json": {"server": "simtext"}}),
            ]
            for method, path, kw in calls:
                resp = await client.request(method, path, **kw)
                body = await resp.text()
                assert PASSWORD not in body and TOKEN not in body
                statuses.append(resp.status)
    finally:
        await pool.close()
    return statuses


def test_no_password_or_token_in_logs(
    run_cli: Cli,
    cli_env: str,
    simulator_thread: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = simulator_thread
    monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", PASSWORD)
    monkeypatch.setenv("SYNC_API_TOKEN", TOKEN)
    monkeypatch.setenv("SYNC_LOG_LEVEL", "DEBUG")
    outputs = []
    for fmt in ("json", "text"):
        monkeypatch.setenv("SYNC_LOG_FORMAT", fmt)
        name = f"sim{fmt}"
        flow = [
            [
                "servers",
                "add",
                name,
                "--backend",
                "ews",
                "--url",
                sim.ews_url,
                "--username",
                sim.username,
                "--password-env",
                "EXCHANGE_SIM_PASSWORD",
            ],
            ["mailboxes", "import", "-"],
            ["servers", "test", name, "--mailbox", "alice@sim.example"],
            ["sync", "--server", name, "--mode", "complete"],
            ["mailboxes", "show", "alice@sim.example", "--json"],
            ["status"],
        ]
        csv = f"crm_user_id,email,server\nu1,alice@sim.example,{name}\n"
        for args in flow:
            result = run_cli(*args, stdin=csv if args[:2] == ["mailboxes", "import"] else None)
            outputs.append(result.out + result.err)
    logs = "\n".join(outputs)
    assert "event" in logs and "server added" in logs  # logs were captured at all
    assert "authenticate" in logs  # the probe ran and used the password
    assert PASSWORD not in logs and TOKEN not in logs

    captured = io.StringIO()
    root = logging.getLogger()
    handlers = []
    for formatter in (JsonFormatter(), KeyValueFormatter()):
        handler = logging.StreamHandler(captured)
        handler.setFormatter(formatter)
        handlers.append(handler)
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG)
    statuses = asyncio.run(_api_calls(cli_env, sim))
    assert statuses == [200, 401, 401, 200, 400, 202]
    api_logs = captured.getvalue()
    assert "sync requested" in api_logs
    assert PASSWORD not in api_logs and TOKEN not in api_logs
