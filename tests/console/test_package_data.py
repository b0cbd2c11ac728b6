"""The wheel carries the console's templates, static files and SQL: every such file matches
one of pyproject.toml's package-data patterns (tests/foundation/test_packaging.py builds the
wheel itself)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONSOLE = REPO / "sync_service" / "console"


def test_every_console_data_file_is_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["sync_service"]
    files = [
        str(p.relative_to(REPO / "sync_service"))
        for folder in ("templates", "static", "sql")
        for p in (CONSOLE / folder).rglob("*")
        if p.is_file()
    ]
    assert len(files) > 15
    assert [f for f in files if not any(_glob(f, pattern) for pattern in patterns)] == []


def _glob(path: str, pattern: str) -> bool:
    """setuptools' glob: a `*` stays within one folder."""
    return path.count("/") == pattern.count("/") and fnmatch(path, pattern)
