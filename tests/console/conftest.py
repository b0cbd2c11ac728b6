"""The console's browser tests: one database (10,000 mailboxes plus Alice's, who needs a
recover), one simulator, one `sync-service run` (api and engine) and one Chromium for the whole
folder, so that its modules cost seconds of set-up, not minutes."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from ews_client.simulator.testing import RunningSimulator, running_simulator
from tests.conftest import with_database
from tests.console.dataset import seed
from tests.service_process import ServiceProcess, free_port, service_env

CHROMIUM = "/usr/bin/chromium"  # Debian's (tests/system/packages.txt); never a downloaded one
TOKEN = "console-test-token-3f9a7c"
SECRET_ENV = "EXCHANGE_CONSOLE_SIM_PASSWORD"
ALICE = "alice@sim.example"
T = TypeVar("T")


def run_apart(call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run(call()) in a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread, where asyncio.run would refuse to start another."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(call())))
    thread.start()
    thread.join()
    if not result:
        raise AssertionError("the database step failed; its traceback is above")
    return result[0]


@dataclass(frozen=True, slots=True)
class Console:
    base: str  # http://127.0.0.1:PORT
    db_url: str
    sim: RunningSimulator
    service: ServiceProcess

    def url(self, path: str = "/console/") -> str:
        return f"{self.base}{path}"

    def query(self, sql: str, *args: Any) -> Any:
        """One value from the service's database."""

        async def fetch() -> Any:
            conn = await asyncpg.connect(self.db_url)
            try:
                return await conn.fetchval(sql, *args)
            finally:
                await conn.close()

        return run_apart(fetch)


@pytest.fixture(scope="package")
def simulator() -> Iterator[RunningSimulator]:
    """The simulator on its own event loop in a thread: the service reaches it over HTTP."""
    ready: list[RunningSimulator] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with running_simulator() as sim:
            sim.sim.add_mailbox(ALICE)
            ready.append(sim)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(30)
    yield ready[0]
    stop.set()
    thread.join(10)


async def _alice(conn: asyncpg.Connection, sim: RunningSimulator) -> None:
    """Alice on the simulator's server, needing a recover: two CRM contacts not yet in her
    mailbox, and an open item error."""
    server = await conn.fetchval(
        "INSERT INTO sync.servers (name, backend, url, auth_kind, username, secret_env)"
        " VALUES ('sim', 'ews', $1, 'basic', $2, $3) RETURNING id",
        sim.ews_url,
        sim.username,
        SECRET_ENV,
    )
    user = await conn.fetchval(
        "INSERT INTO crm.users (email, display_name) VALUES ($1, 'Alice') RETURNING id", ALICE
    )
    await conn.execute(
        "INSERT INTO crm.contacts (owner_id, first_name, last_name, company) VALUES"
        " ($1, 'Rita', 'Recovered', 'Console Test'), ($1, 'Otto', 'Restored', 'Console Test')",
        user,
    )
    mailbox = await conn.fetchval(
        "INSERT INTO sync.mailboxes (crm_user_id, email, server_id, state, state_reason)"
        " VALUES ($1, $2, $3, 'needs_recovery', 'the mailbox marker is older than the"
        " database: a backup was restored?') RETURNING id",
        str(user),
        ALICE,
        server,
    )
    await conn.execute(
        "INSERT INTO sync.item_errors (mailbox_id, entity, crm_id, direction, reason, kind)"
        " VALUES ($1, 'contact', 'crm-alice-1', 'crm_to_exchange',"
        " 'ErrorInvalidPropertyValue: console test refusal', 'refused')",
        mailbox,
    )


@pytest.fixture(scope="package")
def console_db(pg_admin_url: str, template_db: str, simulator: RunningSimulator) -> Iterator[str]:
    name = f"sync_console_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(pg_admin_url, name))
        try:
            await seed(conn)
            await _alice(conn, simulator)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    run_apart(create)
    yield with_database(pg_admin_url, name)
    run_apart(drop)


@pytest.fixture(scope="package")
def console(
    console_db: str, simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """`sync-service run` with the api and engine roles: no dispatcher, so that nothing but
    the test queues passes for the 10,000 mailboxes that only the database holds."""
    port = free_port()
    env = service_env(
        SYNC_DATABASE_URL=console_db,
        SYNC_API_BIND=f"127.0.0.1:{port}",
        SYNC_API_TOKEN=TOKEN,
        SYNC_ROLES="api,engine",
        **{SECRET_ENV: simulator.password},
    )
    log = tmp_path_factory.mktemp("console-service") / "service.log"
    service = ServiceProcess(env, log)
    try:
        service.wait_ready()
        yield Console(f"http://127.0.0.1:{port}", console_db, simulator, service)
    finally:
        service.terminate()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (tests/system/install.sh)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose console messages are kept: a CSP
    violation or a script error fails the test that caused it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if re.search("Content Security Policy|Refused to", msg.text)
            else None
        ),
    )
    yield page
    context.close()
    assert problems == []


def sign_in(page: Page, console: Console, token: str = TOKEN) -> None:
    page.goto(console.url("/console/"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
