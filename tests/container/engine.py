"""A private Docker engine for one test session: its own socket, data root and daemon.

No Docker engine runs here, and the machine's networking is not ours to change, so the daemon
gets the vfs storage driver (no overlay mounts needed), no bridge and no iptables rules:
builds and containers use the host's network (`--network host`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"  # Debian's docker.io, which `make container-test` installs
DOCKER = "/usr/bin/docker"


def unmount_under(root: Path) -> None:
    """Unmount whatever is mounted below `root` (dockerd's network namespace file, a
    chroot's /proc and /sys), deepest first, so that removing `root` cannot walk into them."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    inside = [m.split()[1] for m in mounts if m.split()[1].startswith(f"{root}/")]
    for point in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


class EngineError(RuntimeError):
    """The Docker engine or a docker command failed; the message carries its output."""


class DockerEngine:
    """`dockerd` under `root`, and the `docker` command pointed at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.log_path = root / "dockerd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        env["DOCKER_BUILDKIT"] = "0"  # the classic builder: Debian's docker.io has no buildx
        env["DOCKER_CONFIG"] = str(self.root / "client")  # no credential helpers of the host
        return env

    def start(self, timeout: float = 60.0) -> None:
        for tool in (DOCKERD, DOCKER):
            if not Path(tool).exists():
                raise EngineError(f"{tool} is missing: apt-get install docker.io")
        (self.root / "client").mkdir(parents=True, exist_ok=True)
        cmd = [
            DOCKERD,
            f"--host=unix://{self.socket}",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--bridge=none",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EngineError(f"dockerd exited {self._proc.returncode}:\n{self.log_tail()}")
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.5)
        raise EngineError(f"dockerd did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this engine, output captured; EngineError if it fails."""
        done = subprocess.run(
            [DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise EngineError(
                f"docker {' '.join(args[:4])} exited {done.returncode}:\n"
                f"{(done.stdout + done.stderr)[-4000:]}"
            )
        return done

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the daemon (it stops its containers), then remove its data root."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        unmount_under(self.root)  # dockerd leaves its network namespace file mounted
        shutil.rmtree(self.root, ignore_errors=True)
