import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sync_service.db.migrations import load_migrations

REPO = Path(__file__).resolve().parents[2]
IGNORED = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".sync-data")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The files of the product wheel, built offline with the backend the dev extras install."""
    out = tmp_path_factory.mktemp("wheel")
    # a copy of the sources, so no build/ directory left by an earlier build leaks into this one
    source = tmp_path_factory.mktemp("source") / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_carries_every_migration_and_query(wheel_names: set[str]) -> None:
    """An installed service (the container) finds its migrations inside the package."""
    for migration in load_migrations():
        assert f"sync_service/schema/{migration.filename}" in wheel_names
    queries = {p.name for p in (REPO / "sync_service" / "db" / "sql").glob("*.sql")}
    assert {n.rsplit("/", 1)[1] for n in wheel_names if "/db/sql/" in n} == queries


def test_the_wheel_leaves_the_simulator_out(wheel_names: set[str]) -> None:
    """The simulator is a test double: the product wheel carries no module of it."""
    assert any(n.startswith("ews_client/io/") for n in wheel_names)
    assert not [n for n in wheel_names if n.startswith("ews_client/simulator/")]
