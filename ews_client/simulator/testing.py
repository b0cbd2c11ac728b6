"""Run the simulator in-process for tests: `async with running_simulator() as sim: ...`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from .app import make_app
from .config import SimulatorConfig
from .state import SimState


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    url: str  # base, e.g. http://127.0.0.1:PORT
    ews_url: str
    admin_url: str
    username: str
    password: str
    sim: SimState  # the in-memory state and counters, for direct assertions


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator on 127.0.0.1 (a free port) for the duration of the block.

    Response validation against the XSD is switched on: every response the simulator sends
    is checked, and failures are collected in `sim.invalid_responses`.
    """
    config = config or SimulatorConfig()
    config = dataclasses.replace(config, validate_responses=True)
    state = SimState(config)
    runner = web.AppRunner(make_app(state), shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = _bound_port(runner)
    base = f"http://127.0.0.1:{port}"
    try:
        yield RunningSimulator(
            base,
            f"{base}/EWS/Exchange.asmx",
            f"{base}/_sim",
            config.username,
            config.password,
            state,
        )
    finally:
        state.hub.break_all(forget=False)
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    # aiohttp exposes the port it bound (port 0: any free port) only through its addresses.
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the simulator is not listening")
