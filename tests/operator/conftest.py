"""Fixtures of the operator-surface tests: the CLI in-process on a fresh test database."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator
from sync_service.process import main as cli


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _create(admin_url: str, name: str, template: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


_TABLES = (
    "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables"
    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'public') ORDER BY 1"
)
Seeds = dict[str, str]  # table -> its rows as a JSON array, as the migrations left them


async def _seeds(url: str) -> Seeds:
    """Rows the migrations themselves insert (e.g. a singleton state row)."""
    conn = await asyncpg.connect(url)
    try:
        seeds = {}
        for row in await conn.fetch(_TABLES):
            rows = await conn.fetchval(f"SELECT json_agg(t)::text FROM {row['t']} t")
            if rows:
                seeds[row["t"]] = rows
        return seeds
    finally:
        await conn.close()


async def _reset(url: str, seeds: Seeds) -> None:
    """Empty every table of the migrated schemas, then put the migrations' own rows back."""
    conn = await asyncpg.connect(url)
    try:
        names = ", ".join(r["t"] for r in await conn.fetch(_TABLES))
        async with conn.transaction():
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            for table, rows in seeds.items():
                await conn.execute(
                    f"INSERT INTO {table} OVERRIDING SYSTEM VALUE"
                    f" SELECT * FROM json_populate_recordset(NULL::{table}, $1::json)",
                    rows,
                )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def _module_db(pg_admin_url: str, template_db: str) -> Iterator[tuple[str, Seeds]]:
    """One migrated database per test module: creating one per test costs a second each on a
    busy machine; resetting the tables between tests costs milliseconds."""
    name = f"sync_op_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(pg_admin_url, name, template_db))
    url = with_database(pg_admin_url, name)
    yield url, asyncio.run(_seeds(url))
    asyncio.run(_drop(pg_admin_url, name))


@pytest.fixture
def db_url(_module_db: tuple[str, Seeds]) -> str:
    """Overrides the per-test database: the module's database, as freshly migrated."""
    url, seeds = _module_db
    asyncio.run(_reset(url, seeds))
    return url


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """`cli.main` installs its own log handler on the root logger; put pytest's back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("SYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_DATABASE_URL", db_url)
    return db_url


@pytest.fixture
def run_cli(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """`sync-service ARGS` in this process: exit code, stdout and stderr."""

    def run(*args: str, stdin: str | None = None) -> Result:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def add_server_args(name: str = "ex1", *extra: str) -> list[str]:
    return [
        "servers",
        "add",
        name,
        "--backend",
        "ews",
        "--url",
        "https://ex1.example.com/EWS/Exchange.asmx",
        "--username",
        "svc-sync",
        "--password-env",
        "EXCHANGE_EX1_PASSWORD",
        *extra,
    ]


@pytest.fixture
def simulator_config() -> SimulatorConfig:
    return SimulatorConfig()


@pytest.fixture
def simulator_thread(simulator_config: SimulatorConfig) -> Iterator[RunningSimulator]:
    """A simulator on its own event loop, for the CLI (which runs its own loop)."""
    ready: list[RunningSimulator] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with running_simulator(simulator_config) as sim:
            sim.sim.add_mailbox("alice@sim.example")
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
