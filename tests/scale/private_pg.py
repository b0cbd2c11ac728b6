"""A private PostgreSQL server for the tests that restart or cut off the database.

The shared server at 127.0.0.1:5432 must never be restarted, so these tests run their own:
pgserver's bundled binaries (a project dependency, so present wherever the tests run),
initialised in a temporary directory and listening on TCP 127.0.0.1 on a free port (the
service connects by URL, and the outage tests put a TCP proxy in front of it). PostgreSQL
refuses to run as root; as root it runs as the `postgres` system user when there is one, else
as pgserver's own `pgserver` user (made by pgserver when it first ran as root).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from sync_service.db.migrations import migrate
from sync_service.db.pool import connect


def _bin(name: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True, capture_output=True)
    return "pgserver"


class PrivatePostgres:
    """`initdb` into a temporary directory, then `pg_ctl start / stop` on a fixed port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.user = _system_user()
        self.root = Path(tempfile.mkdtemp(prefix="scale-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=utf8", "--no-sync")  # fmt: skip

    def _run(self, *argv: str, timeout: float = 60.0) -> None:
        done = subprocess.run(
            list(argv), user=self.user, cwd=self.root, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr or done.stdout}")

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    def start(self) -> None:
        # fsync off: a test server, thrown away after the test; the restarts are clean stops.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=300 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: every session is ended (as a restart of the server does)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def cpu_s(self) -> float:
        """CPU seconds of this server: the postmaster, its live children, and what its ended
        children left in its children's times (/proc fields 14-17)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        total = 0
        for stat_path in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_path.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended while we looked
            if int(stat_path.parent.name) == pid or int(fields[1]) == pid:
                total += sum(int(f) for f in fields[11:15])
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def create_database(server: PrivatePostgres, name: str) -> str:
    """A new, migrated database on the private server; its URL."""
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = server.url(name)
    migrated = await connect(url)
    try:
        await migrate(migrated)
    finally:
        await migrated.close()
    return url


async def wait_answers(url: str, timeout: float = 30.0) -> None:
    """Until the server accepts a connection (after a start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        return
