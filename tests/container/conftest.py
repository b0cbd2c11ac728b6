"""The container test runs only when tests/container is named on the command line
(`make container-test`): it starts a Docker engine and builds an image, minutes of work that
`make test` (pytest over its testpaths) leaves out."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.build import build_image, import_base, stage_context
from tests.container.engine import DockerEngine

HERE = Path(__file__).resolve().parent


def _named(config: pytest.Config) -> bool:
    """Whether a command-line argument is this folder or a path inside it."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and not _named(config):
        return True
    return None


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    """A private dockerd for the module, stopped (and its data root removed) at the end."""
    # Under /var/tmp, not /tmp: vfs keeps each layer as a full copy, a few gigabytes in all.
    root = Path(tempfile.mkdtemp(prefix="sync-docker-", dir="/var/tmp"))
    docker = DockerEngine(root)
    try:
        docker.start()
        yield docker
    finally:
        docker.stop()


@pytest.fixture(scope="module")
def image(engine: DockerEngine) -> str:
    """The Containerfile's image built on the Debian base: its tag."""
    base = import_base(engine)
    with tempfile.TemporaryDirectory(prefix="sync-context-") as context:
        return build_image(engine, base, stage_context(Path(context)), "crm-exchange-sync:test")
