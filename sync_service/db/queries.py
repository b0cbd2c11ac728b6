"""Named SQL queries kept in `.sql` files: `-- name: NAME` starts each one."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<sql>") -> dict[str, str]:
    """Split a file into {name: sql}; a duplicate name is an error."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{source}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


@cache
def load_queries() -> dict[str, str]:
    """All queries of `sync_service/db/sql/*.sql`; names are unique across files."""
    merged: dict[str, str] = {}
    folder = resources.files("sync_service.db") / "sql"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_queries(entry.read_text(), entry.name).items():
            if name in merged:
                raise ValueError(f"{entry.name}: query {name!r} already defined elsewhere")
            merged[name] = sql
    return merged
