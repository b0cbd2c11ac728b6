"""The pieces every harness needs: a fresh database, the simulator and the service as separate
processes, the CLI, /proc readings of a process, and the machine's description.

All traffic goes to 127.0.0.1; every wait is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SIM_USER = "svc-sync@sim.example"
SIM_PASSWORD = "sim-password"
SIM_PASSWORD_ENV = "EXCHANGE_BENCH_SIM_PASSWORD"
API_TOKEN = "bench-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def arg_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse `type` that shows the parser's own message (argparse hides a
    ValueError's text behind "invalid value")."""

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = parse.__name__
    return checked


def address_of(n: int) -> str:
    return f"user{n:05d}@sim.example"


# ---------------------------------------------------------------- /proc readings


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float
    rss_kb: int
    hwm_kb: int


def sample(pid: int) -> ProcSample:
    """utime+stime (fields 14, 15 of /proc/PID/stat) and VmRSS / VmHWM of /proc/PID/status."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            status[key] = int(value.split()[0])
    return ProcSample(cpu, status.get("VmRSS", 0), status.get("VmHWM", 0))


def postgres_cpu_s() -> float:
    """CPU seconds of the local PostgreSQL server: its live processes, plus what its ended
    backends left in the postmaster's children's times (fields 16, 17). Shared with anything
    else using the server at the time; the benchmarks run alone."""
    total = 0.0
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue  # ended while we looked
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name != "postgres" and not name.startswith("postgres:"):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "sync_service", "ews_client"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit + ("+uncommitted service changes" if dirty else ""),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        # Other work on the machine when the figures were taken (1, 5, 15 minutes).
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------- database


@contextlib.asynccontextmanager
async def fresh_database(prefix: str = "bench") -> AsyncIterator[str]:
    """A new database for one run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def group_counts(conn: asyncpg.Connection, sql: str) -> dict[str, int]:
    """A `SELECT key, count(*) ... GROUP BY 1` as a dict."""
    return {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}


async def queue_depth(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM sync.jobs WHERE status IN ('queued', 'running')")
    )


async def wait_drained(url: str, timeout: float, settle: float = 0.0) -> float:
    """Wait until no job is queued or running; the time it took."""
    started = time.monotonic()
    conn = await asyncpg.connect(url)
    try:
        while time.monotonic() - started < timeout:
            if await queue_depth(conn) == 0:
                await asyncio.sleep(settle)
                if await queue_depth(conn) == 0:
                    return time.monotonic() - started
            await asyncio.sleep(0.25)
    finally:
        await conn.close()
    raise TimeoutError(f"queue not drained within {timeout:.0f}s")


# ---------------------------------------------------------------- processes


def service_env(url: str, api_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update(
        SYNC_DATABASE_URL=url,
        SYNC_API_BIND=f"127.0.0.1:{api_port}",
        SYNC_API_TOKEN=API_TOKEN,
        SYNC_LOG_LEVEL="WARNING",
        **{SIM_PASSWORD_ENV: SIM_PASSWORD},
    )
    env.update(extra)
    return env


async def cli(env: dict[str, str], *args: str, timeout: float = 300.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sync_service",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"sync-service {' '.join(args)}: {out.decode()}{err.decode()}")
    return out.decode()


class Proc:
    """A child process with a log file; stopped with SIGTERM, then SIGKILL after a grace."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = Path(f"/tmp/bench-{name}-{os.getpid()}-{time.monotonic_ns()}.log")
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.popen.pid

    def sample(self) -> ProcSample:
        return sample(self.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{proc.name} did not answer {url} within {timeout:.0f}s")


async def start_simulator(
    mailboxes: int,
    counts: tuple[int, int, int],
    latency: str = "20,1",
    validation: bool = False,
    throttling: bool = True,
) -> tuple[Proc, str]:
    """The simulator on a free port; returns the process and its base URL (no path)."""
    port = free_port()
    argv = [
        sys.executable, str(ROOT / "benchmarks" / "sim_server.py"), "--port", str(port),
        "--mailboxes", str(mailboxes), "--contacts", str(counts[0]),
        "--appointments", str(counts[1]), "--tasks", str(counts[2]), "--latency-ms", latency,
    ]  # fmt: skip
    if not validation:
        argv.append("--no-validation")
    if not throttling:
        argv.append("--no-throttling")
    proc = Proc("simulator", argv)
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/_sim/counters", proc, timeout=600.0)
    return proc, base


async def start_service(env: dict[str, str]) -> Proc:
    proc = Proc("service", [sys.executable, "-m", "sync_service", "run"], env)
    await wait_http(f"http://{env['SYNC_API_BIND']}/healthz", proc)
    return proc


async def sim_counters(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/counters") as resp:
        resp.raise_for_status()
        return dict(await resp.json())


async def sim_tallies(base: str) -> dict[str, Any]:
    """Per-mailbox requests, items and requests in flight (benchmarks/sim_server.py)."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_bench/mailboxes") as resp:
        resp.raise_for_status()
        return dict(await resp.json())


def counter_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Per-operation request and throttle counts between two counter snapshots."""
    out: dict[str, Any] = {}
    for key in ("requests", "throttled"):
        a, b = after.get(key, {}), before.get(key, {})
        out[key] = {k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0)}
    out["early_retries"] = after.get("early_retries", 0) - before.get("early_retries", 0)
    return out


async def register(
    env: dict[str, str], sim_base: str, csv_path: Path | None, rate: float, concurrency: int
) -> None:
    """Migrate, add the simulator as server `sim`, import the mailboxes (as an operator).

    The daily complete pass is put 12 hours away: a benchmark run that happens to fall into
    the server's complete window (default 02:00) would otherwise measure complete passes.
    """
    complete_at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    await cli(env, "migrate")
    await cli(
        env, "servers", "add", "sim", "--backend", "ews",
        "--url", f"{sim_base}/EWS/Exchange.asmx", "--username", SIM_USER,
        "--password-env", SIM_PASSWORD_ENV, "--rate", str(rate),
        "--max-concurrency", str(concurrency), "--complete-at", complete_at,
    )  # fmt: skip
    if csv_path is not None:
        await cli(env, "mailboxes", "import", str(csv_path), timeout=600.0)
