"""Run the simulator in-process for tests: `async with running_simulator() as sim: ...`.

`tls=True` serves everything over HTTPS with a throwaway certificate authority (trustme):
msal accepts only an https:// authority, so Graph tests need it (ews_client/PROTOCOL_NOTES.md,
"Testing msal"); `ca_file` is the CA's PEM for clients to trust.

Every simulator records, when it stops, what a real server would have mailed to people
(`SENT_LOG`): the test suite fails if any simulator counted a message, except those opened
with `count_invitations=True` by the tests that count them on purpose (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .app import make_app
from .config import SimulatorConfig
from .graph.routes import GRAPH_KEY, GraphState
from .state import SimState


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    url: str  # base, e.g. http://127.0.0.1:PORT
    ews_url: str
    admin_url: str
    username: str
    password: str
    sim: SimState  # the in-memory state and counters, for direct assertions
    graph: GraphState | None = None  # the Graph endpoint's state (throttling, subscriptions)
    graph_url: str = ""  # e.g. https://127.0.0.1:PORT/v1.0
    authority: str = ""  # msal authority: https://127.0.0.1:PORT/<tenant>
    client_id: str = ""
    client_secret: str = ""
    ca_file: str | None = None  # PEM of the test CA when served over TLS


@dataclass(frozen=True, slots=True)
class SentRecord:
    """What one simulator would have mailed, recorded when it stopped."""

    test: str  # the pytest node running when it stopped ("" outside pytest)
    counting: bool  # opened with count_invitations=True: its messages are expected
    messages: int
    sent: dict[str, object]  # Outbox.counters(): per kind, recipients, per mailbox


SENT_LOG: list[SentRecord] = []


def unexpected_messages(log: list[SentRecord] | None = None) -> list[SentRecord]:
    """The simulators that counted a message nobody opened them to count."""
    return [r for r in (SENT_LOG if log is None else log) if r.messages and not r.counting]


def _record_sent(state: SimState, counting: bool) -> None:
    outbox = state.outbox
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    SENT_LOG.append(SentRecord(test, counting, len(outbox.messages), outbox.counters()))


def _server_tls(directory: Path) -> tuple[ssl.SSLContext, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "sim-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None, *, tls: bool = False, count_invitations: bool = False
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator on 127.0.0.1 (a free port) for the duration of the block.

    Response validation against the XSD is switched on: every response the simulator sends
    is checked, and failures are collected in `sim.invalid_responses`. `count_invitations`
    says the block means to make the simulator count meeting messages (only the tests of
    that feature do); any other simulator that counts one fails the test session.
    """
    config = config or SimulatorConfig()
    config = dataclasses.replace(config, validate_responses=True)
    state = SimState(config)
    app = make_app(state)
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="sim-tls-") as tmp:
        context, ca_file = _server_tls(Path(tmp)) if tls else (None, None)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = _bound_port(runner)
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        graph = app[GRAPH_KEY]
        policy = config.graph
        try:
            yield RunningSimulator(
                base,
                f"{base}/EWS/Exchange.asmx",
                f"{base}/_sim",
                config.username,
                config.password,
                state,
                graph,
                f"{base}/v1.0",
                f"{base}/{policy.tenant}",
                policy.client_id,
                policy.client_secret,
                ca_file,
            )
        finally:
            _record_sent(state, count_invitations)
            state.hub.break_all(forget=False)
            await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    # aiohttp exposes the port it bound (port 0: any free port) only through its addresses.
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the simulator is not listening")
