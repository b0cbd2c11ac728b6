import subprocess
import sys
import zipfile
from pathlib import Path

from sync_service.db.migrations import load_migrations

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_every_migration_and_query(tmp_path: Path) -> None:
    """An installed service (the container) finds its migrations inside the package."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in load_migrations():
        assert f"sync_service/schema/{migration.filename}" in names
    queries = {p.name for p in (REPO / "sync_service" / "db" / "queries").glob("*.sql")}
    assert {n.rsplit("/", 1)[1] for n in names if "/db/queries/" in n} == queries
