"""Shared fixtures: a real PostgreSQL, a fresh database per test cloned from a migrated template.

Server choice: SYNC_TEST_DATABASE_URL if set; else the local server at 127.0.0.1:5432 if it
answers; else an embedded pgserver in a temporary directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from sync_service.db.migrations import migrate
from sync_service.db.pool import connect, create_pool

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _embedded_url(tmp_root: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp_root / "pg", cleanup_mode="stop")
    return str(server.get_uri("postgres"))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a maintenance database on the chosen server."""
    explicit = os.environ.get("SYNC_TEST_DATABASE_URL")
    if explicit:
        return explicit
    if asyncio.run(_answers(LOCAL_URL)):
        return LOCAL_URL
    return _embedded_url(tmp_path_factory.mktemp("embedded"))


async def _create_db(admin_url: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()


async def _drop_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _build_template(admin_url: str, name: str) -> None:
    await _create_db(admin_url, name)
    conn = await connect(with_database(admin_url, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated template database, built once per test session."""
    name = f"sync_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_build_template(pg_admin_url, name))
    yield name
    asyncio.run(_drop_db(pg_admin_url, name))


@pytest.fixture
async def empty_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A brand-new, unmigrated database."""
    name = f"sync_t_{uuid.uuid4().hex[:12]}"
    await _create_db(pg_admin_url, name)
    yield with_database(pg_admin_url, name)
    await _drop_db(pg_admin_url, name)


@pytest.fixture
async def db_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"sync_t_{uuid.uuid4().hex[:12]}"
    await _create_db(pg_admin_url, name, template=template_db)
    yield with_database(pg_admin_url, name)
    await _drop_db(pg_admin_url, name)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, size=10)
    yield pool
    await pool.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the logging configuration back after each test.

    `setup_logging` (run by `cli.main` when a test calls it in-process) replaces the root
    logger's handlers and sets the levels of the root and `aiohttp.access` loggers; without
    this, every later test of the session would log through the handlers of that one.
    """
    root, access = logging.getLogger(), logging.getLogger("aiohttp.access")
    handlers, root_level, access_level = root.handlers[:], root.level, access.level
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    access.setLevel(access_level)
    logging.captureWarnings(False)  # setup_logging routes warnings into logging


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any simulator counted a meeting message it was not opened to count:
    a sync write must never make Exchange mail an invitation, update or cancellation."""
    from ews_client.simulator.testing import unexpected_messages

    if unexpected_messages() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from ews_client.simulator.testing import unexpected_messages

    stray = unexpected_messages()
    if not stray:
        return
    terminalreporter.section("meeting messages a real Exchange would have sent", red=True)
    for record in stray:
        terminalreporter.line(f"{record.test or '(outside a test)'}: {record.sent}")
