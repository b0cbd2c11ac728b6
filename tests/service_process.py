"""Start `sync-service` as a real process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update(overrides)
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`python -m sync_service ARGS` to completion, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sync_service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ServiceProcess:
    """`python -m sync_service ARGS` with its output captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = int(env["SYNC_API_BIND"].rsplit(":", 1)[1])
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", *(args or ("run",))],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as resp:
                return resp.status, resp.read()
        except URLError as exc:
            code = getattr(exc, "code", None)
            if code is not None:
                return int(code), b""
            raise

    def wait_ready(self, path: str = "/readyz", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.output()}")
            try:
                if self.get(path)[0] == 200:
                    return
            except (URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"service not ready after {timeout}s:\n{self.output()}")

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")
