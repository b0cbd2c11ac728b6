from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from sync_service.db.migrations import (
    MigrationError,
    applied_versions,
    load_migrations,
    migrate,
)
from sync_service.db.pool import connect


async def _tables(url: str) -> list[str]:
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
        return [r["t"] for r in rows]
    finally:
        await conn.close()


async def test_migrating_twice_changes_nothing(empty_db_url: str) -> None:
    conn = await connect(empty_db_url)
    try:
        first = await migrate(conn)
        tables = await _tables(empty_db_url)
        second = await migrate(conn)
        assert first == [m.filename for m in load_migrations()]
        assert second == []
        assert await _tables(empty_db_url) == tables
        assert "sync.jobs" in tables
    finally:
        await conn.close()


async def test_changed_migration_is_refused_by_name(empty_db_url: str, tmp_path: Path) -> None:
    originals = load_migrations()
    for m in originals:
        (tmp_path / m.filename).write_text(m.sql)
    conn = await connect(empty_db_url)
    try:
        await migrate(conn, load_migrations(tmp_path))
        first = originals[0]
        (tmp_path / first.filename).write_text(first.sql + "\n-- edited\n")
        with pytest.raises(MigrationError, match=first.filename):
            await migrate(conn, load_migrations(tmp_path))
    finally:
        await conn.close()


async def test_failed_migration_rolls_back_and_names_file(
    empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT nonsense;")
    conn = await connect(empty_db_url)
    try:
        with pytest.raises(MigrationError, match=re.escape("0002_bad.sql")):
            await migrate(conn, load_migrations(tmp_path))
        assert set(await applied_versions(conn)) == {1}
        assert await conn.fetchval("SELECT to_regclass('public.half')") is None
    finally:
        await conn.close()


def test_badly_named_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=re.escape("1_oops.sql")):
        load_migrations(tmp_path)


async def test_two_processes_migrating_at_once_apply_each_once(empty_db_url: str) -> None:
    env = {**os.environ, "SYNC_DATABASE_URL": empty_db_url}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sync_service",
            "migrate",
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = [out.decode() for out, _ in outputs]
    expected = [m.filename for m in load_migrations()]
    # Exactly one process applied everything, the other found the database up to date.
    assert sorted(applied) == sorted(
        [f'{{"applied": {list(expected)}}}\n'.replace("'", '"'), '{"applied": []}\n']
    )
    conn = await connect(empty_db_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM public.sync_schema_migrations")
        assert count == len(expected)
    finally:
        await conn.close()
