"""One container of the image, run the way an orchestrator runs it: read-only root, the image's
non-root user, secrets as files named by `_FILE` variables."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tests.container.engine import DockerEngine

SECRETS = "/run/secrets/sync"  # where the secret files appear inside the container


def write_secrets(folder: Path, values: dict[str, str]) -> Path:
    """One file per secret, readable by the container's user (uid 10001) and no other."""
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, value in values.items():
        path = folder / name
        path.write_text(value + "\n")
        path.chmod(0o400)
    for path in (folder, *folder.iterdir()):
        os.chown(path, 10001, 10001)
    return folder


@dataclass
class Container:
    engine: DockerEngine
    name: str
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of a GET; (0, {}) while nothing answers."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urlopen(Request(self.url(path), headers=headers), timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (URLError, ConnectionError, TimeoutError):
            return 0, {}

    def wait_for(self, path: str, status: int, timeout: float) -> dict[str, Any]:
        """The body of `path` once it answers `status`; AssertionError with the logs if not."""
        deadline = time.monotonic() + timeout
        seen: tuple[int, dict[str, Any]] = (0, {})
        while time.monotonic() < deadline:
            seen = self.get(path)
            if seen[0] == status:
                return seen[1]
            if self.state().get("Status") != "running":
                break
            time.sleep(0.5)
        raise AssertionError(
            f"{path} answered {seen} (wanted {status}); container {self.state()}\n{self.logs()}"
        )

    def inspect(self) -> dict[str, Any]:
        out = self.engine.docker("inspect", self.name).stdout
        return dict(json.loads(out)[0])

    def state(self) -> dict[str, Any]:
        return dict(self.inspect()["State"])

    def exec(self, *argv: str) -> tuple[int, str]:
        done = self.engine.docker("exec", self.name, *argv, check=False, timeout=60)
        return done.returncode, done.stdout + done.stderr

    def logs(self, chars: int = 4000) -> str:
        done = self.engine.docker("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-chars:]

    def wait_healthy(self, timeout: float) -> str:
        """Docker's own verdict of the HEALTHCHECK once it is no longer `starting`."""
        deadline = time.monotonic() + timeout
        status = "starting"
        while time.monotonic() < deadline and status == "starting":
            status = self.state().get("Health", {}).get("Status", "none")
            time.sleep(0.5)
        return str(status)


def run_container(
    engine: DockerEngine, image: str, name: str, port: int, secrets: Path, *, health_s: int
) -> Container:
    """`docker run` detached on the host's network; the health check every `health_s` s."""
    engine.docker(
        "run", "--detach", "--name", name, "--read-only", "--network", "host",
        "--volume", f"{secrets}:{SECRETS}:ro",
        "--env", f"SYNC_DATABASE_URL_FILE={SECRETS}/database-url",
        "--env", f"SYNC_API_TOKEN_FILE={SECRETS}/api-token",
        "--env", f"SYNC_API_BIND=127.0.0.1:{port}",
        "--health-interval", f"{health_s}s", "--health-start-period", "60s",
        image,
    )  # fmt: skip
    return Container(engine, name, port)
