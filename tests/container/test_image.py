"""The Containerfile built into an image and run as an orchestrator runs it (issue 21).

A private Docker engine builds the image on a Debian base made from packages (no registry is
reachable here), then runs it with a read-only root filesystem, as the image's non-root user,
with its database URL and API token in files named by `_FILE` variables, against the test
PostgreSQL over the host's network. `make container-test` runs this; `make test` does not.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.engine import DockerEngine
from tests.container.running import Container, run_container, write_secrets
from tests.service_process import free_port

GRACE_S = 30  # an orchestrator's default grace period (Kubernetes, `docker stop -t`)
UID = "10001"


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def container(
    engine: DockerEngine, image: str, empty_db_url: str, token: str, tmp_path: Path
) -> Iterator[Container]:
    secrets = write_secrets(
        tmp_path / "secrets", {"database-url": empty_db_url, "api-token": token}
    )
    name = f"sync-test-{uuid.uuid4().hex[:8]}"
    running = run_container(engine, image, name, free_port(), secrets, health_s=2)
    try:
        yield running
    finally:
        engine.docker("rm", "--force", name, check=False)


def test_image_runs_read_only_as_non_root_and_stops_gracefully(
    container: Container, token: str
) -> None:
    assert container.wait_for("/healthz", 200, timeout=60) == {"status": "ok"}
    # `run` migrates the empty database, then reports ready
    assert container.wait_for("/readyz", 200, timeout=90) == {"status": "ready"}

    # the token came from its file: the API takes it and refuses a request without it
    assert container.get("/api/v1/servers", token)[0] == 200
    assert container.get("/api/v1/servers")[0] == 401

    # the HEALTHCHECK as the image declares it: run by hand, and judged by Docker itself
    config = container.inspect()["Config"]
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    code, output = container.exec(*test[1:])
    assert code == 0, output
    assert container.wait_healthy(timeout=60) == "healthy", container.state().get("Health")

    # the image's user, not root, and a root filesystem nothing can write to
    assert config["User"] == f"{UID}:{UID}"
    code, status = container.exec("cat", "/proc/1/status")
    uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uids.split()[1:] == [UID] * 4, uids
    assert container.inspect()["HostConfig"]["ReadonlyRootfs"] is True
    for path in ("/probe", "/tmp/probe", "/usr/local/lib/probe"):
        code, output = container.exec("touch", path)
        assert code != 0 and "Read-only file system" in output, (path, output)

    # no compilers in the final stage
    code, output = container.exec("sh", "-c", "command -v gcc cc make || true")
    assert output.strip() == "", output

    # docker stop: SIGTERM, the service ends by itself with 0 within the grace period
    started = time.monotonic()
    container.engine.docker("stop", "--time", str(GRACE_S), container.name, timeout=GRACE_S + 30)
    stopped_in = time.monotonic() - started
    state = container.state()
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, container.logs())
    assert stopped_in < GRACE_S, f"stopped after {stopped_in:.1f}s (SIGKILL at {GRACE_S}s)"

    # the logs are one JSON event a line (SYNC_LOG_FORMAT=json in the image)
    lines = [line for line in container.logs(chars=1_000_000).splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    assert events and all("event" in e for e in events), lines[:5]
