"""Schema migrations for our own tables (projections, ledger entries, idempotency).

`migrations/NNNN_name.sql` files are applied in order, once each, and recorded in
`schema_migrations`, in one transaction per file. A dialect-specific `NNNN_name.postgres.sql`
or `NNNN_name.sqlite.sql` replaces the plain file for that dialect. Two processes migrating at
once are serialised: a PostgreSQL advisory lock, SQLite's BEGIN IMMEDIATE. The library's own
event tables are created by the library, never here.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
import psycopg.sql

from adapters.database import Database

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")
# Any constant works; it only has to be the same in every process of this project.
_ADVISORY_LOCK_KEY = 0x41494E4645524100

_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available(kind: str) -> list[Migration]:
    """The migrations shipped with the package for one dialect, in version order."""
    chosen: dict[int, tuple[bool, Migration]] = {}
    for entry in resources.files("migrations").iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        version, name, dialect = int(match[1]), match[2], match[3]
        if dialect and dialect != kind:
            continue
        specific = dialect is not None
        current = chosen.get(version)
        if current and current[1].name != name:
            raise MigrationError(f"two migrations share version {version:04d}")
        if current is None or (specific and not current[0]):
            chosen[version] = (specific, Migration(version, name, entry.read_text("utf-8")))
    return [chosen[v][1] for v in sorted(chosen)]


def migrate(database: Database, up_to: int | None = None) -> list[str]:
    """Applies what is missing (up to version `up_to`, for tests of a migration's own data
    conversion); returns the names applied (empty when up to date)."""
    conn = database.connect()
    try:
        if database.kind == "sqlite":
            return _migrate_sqlite(conn, up_to)
        return _migrate_postgres(conn, up_to, database.pg_schema)
    finally:
        conn.close()


def _wanted(kind: str, up_to: int | None) -> list[Migration]:
    return [m for m in available(kind) if up_to is None or m.version <= up_to]


def _migrate_sqlite(conn: sqlite3.Connection, up_to: int | None) -> list[str]:
    applied_now: list[str] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE_TABLE)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in _wanted("sqlite", up_to):
            if migration.version in done:
                continue
            for statement in _sqlite_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) "
                "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (migration.version, migration.name),
            )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise MigrationError(f"migration failed: {exc}") from exc
        raise
    return applied_now


def _sqlite_statements(script: str) -> list[str]:
    """Splits a script into statements the way SQLite itself would (triggers included)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        raise MigrationError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def _migrate_postgres(conn: Any, up_to: int | None, schema: str) -> list[str]:
    applied_now: list[str] = []
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            if schema:
                # `?schema=S` names where everything goes; a new one is created here (under the
                # lock, so two processes starting together do not race to create it).
                conn.execute(psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(schema)))
            conn.execute(_CREATE_TABLE)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in _wanted("postgres", up_to):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (%s, %s, to_char(now() AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))",
                        (migration.version, migration.name),
                    )
                applied_now.append(f"{migration.version:04d}_{migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    except psycopg.Error as exc:
        raise MigrationError(f"migration failed: {exc}") from exc
    return applied_now


def applied(database: Database) -> list[int]:
    conn = database.connect()
    try:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    finally:
        conn.close()
    return [int(r[0]) for r in rows]


class MigrationError(Exception):
    """A migration could not be applied; nothing of it was recorded."""
