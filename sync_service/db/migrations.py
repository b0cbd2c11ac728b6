"""Forward-only SQL migrations from `schema/NNNN_name.sql`, applied once under an advisory lock.

Each file runs in its own transaction. Applied versions are recorded with a checksum; a file
changed after it was applied stops the service, because the database no longer matches it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from sync_service.db.pool import Conn, connect
from sync_service.errors import DatabaseError

# Any fixed 64-bit number shared by every replica; spells "CRMSYNC1".
MIGRATION_LOCK_ID = 0x43524D53594E4331
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_TRACKING_TABLE = """
CREATE TABLE IF NOT EXISTS public.sync_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(DatabaseError):
    """A migration cannot be applied, or an applied one was changed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def schema_dir() -> Path:
    """The bundled SQL files: a package resource when installed, `schema/` in a checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "schema"  # wheels carry the files inside the package
    return packaged if packaged.is_dir() else package.parent / "schema"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every `NNNN_name.sql` file in order; other files are an error, not silently skipped."""
    directory = directory or schema_dir()
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


async def applied_versions(conn: Conn) -> dict[int, str]:
    """version -> checksum of what the database has applied (empty when never migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('public.sync_schema_migrations')")
    if exists is None:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM public.sync_schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


def check_unchanged(migrations: list[Migration], applied: dict[int, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"{migration.filename} was changed after it was applied; migrations are "
                "forward-only: restore the file and add a new migration instead"
            )


async def migrate(conn: Conn, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; return the file names applied (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(_TRACKING_TABLE)
        applied = await applied_versions(conn)
        check_unchanged(migrations, applied)
        done = []
        for migration in migrations:
            if migration.version not in applied:
                await _apply(conn, migration)
                done.append(migration.filename)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _apply(conn: Conn, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO public.sync_schema_migrations (version, name, checksum) "
                "VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{migration.filename} failed: {exc}") from exc


async def pending(conn: Conn) -> list[str]:
    """Files not yet applied (readiness: the service is ready only when this is empty)."""
    migrations = load_migrations()
    applied = await applied_versions(conn)
    check_unchanged(migrations, applied)
    return [m.filename for m in migrations if m.version not in applied]


async def run_migrations(url: str) -> list[str]:
    """Apply the pending migrations of the database at `url`; the names applied."""
    conn = await connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
