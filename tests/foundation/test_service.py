from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.service_process import ServiceProcess, free_port, run_cli, service_env


async def test_run_serves_healthz_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    env = service_env(
        SYNC_DATABASE_URL=db_url,
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        SYNC_ENGINE_NAME="replica-a",
    )
    service = ServiceProcess(env, tmp_path / "service.log")
    try:
        service.wait_ready()
        status, body = service.get("/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        conn = await asyncpg.connect(db_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM sync.engines") == 1
        finally:
            await conn.close()
    finally:
        code = service.terminate()
    assert code == 0, service.output()
    conn = await asyncpg.connect(db_url)
    try:  # a clean stop deregisters the replica
        assert await conn.fetchval("SELECT count(*) FROM sync.engines") == 0
    finally:
        await conn.close()


def test_embedded_postgres_starts_and_is_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = service_env(SYNC_DATA_DIR=str(data_dir), SYNC_API_BIND=f"127.0.0.1:{free_port()}")
    first = ServiceProcess(env, tmp_path / "first.log")
    try:
        first.wait_ready()
    finally:
        assert first.terminate() == 0, first.output()
    assert (data_dir / "PG_VERSION").exists()
    assert not (data_dir / "postmaster.pid").exists(), "embedded server left running"
    # A second start reuses the same cluster: nothing left to migrate.
    proc = run_cli(env, "migrate", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"applied": []}
    assert not (data_dir / "postmaster.pid").exists()


def test_sigterm_while_starting_is_a_clean_stop(db_url: str, tmp_path: Path) -> None:
    """Orchestrators may stop a replica that is still migrating: exit 0, not killed."""
    import signal
    import time

    env = service_env(SYNC_DATABASE_URL=db_url, SYNC_API_BIND=f"127.0.0.1:{free_port()}")
    path = tmp_path / "early.log"
    with path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "run"], env=env, stdout=log, stderr=log
        )
        # As soon as the process logs anything, the event loop and its handlers are up.
        deadline = time.monotonic() + 60
        while not path.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, path.read_text()


def test_a_pool_larger_than_the_server_allows_is_refused(db_url: str) -> None:
    env = service_env(
        SYNC_DATABASE_URL=db_url,
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        SYNC_DATABASE_POOL_SIZE="1000",
    )
    proc = run_cli(env, "run")
    assert proc.returncode == 2, proc.stderr
    assert "SYNC_DATABASE_POOL_SIZE" in proc.stderr and "max_connections" in proc.stderr
