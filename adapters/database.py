"""Database URLs: one setting (`AINFERA_DATABASE_URL`) mapped onto the event store's environment
and onto plain DB-API connections for our own projection tables.

`sqlite:///path` (the embedded default) or `postgresql://user[:pass]@host[:port]/db[?schema=s]`.
The optional `schema` parameter puts the event store and our tables in one PostgreSQL schema,
which is how tests keep two runs on one database apart.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from adapters.pg_recorder import (
    CONNECT_TIMEOUT_KEY,
    FACTORY_TOPIC,
    STATEMENT_TIMEOUT_KEY,
    connection_kwargs,
)

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# How long opening a PostgreSQL connection, or waiting for a pooled one, may take before the
# server counts as unreachable and the caller is refused (libpq's minimum is 2 s).
CONNECT_TIMEOUT_S = 2
# The longest a statement on the request path (event store, read and idempotency pools) may
# run; a server that slow is treated as unavailable rather than left holding the caller.
STATEMENT_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class Database:
    """Where the store lives: `kind` is "sqlite" or "postgres"."""

    kind: str
    url: str
    sqlite_path: str = ""
    pg_conninfo: str = ""
    pg_schema: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///"):]
            if not path:
                raise DatabaseUrlError("sqlite URL needs a path: sqlite:///var/ainfera.db")
            return cls(kind="sqlite", url=url, sqlite_path=path)
        if url.startswith(("postgresql://", "postgres://")):
            parts = urlsplit(url)
            query = parse_qs(parts.query)
            schema = query.pop("schema", [""])[0]
            if schema and not _SCHEMA_NAME.match(schema):
                raise DatabaseUrlError(f"invalid schema name {schema!r}")
            if not parts.hostname or not parts.path.strip("/"):
                raise DatabaseUrlError(
                    "PostgreSQL URL needs a host and a database: postgresql://user@host:5432/db"
                )
            conninfo = psycopg.conninfo.make_conninfo(
                host=parts.hostname,
                port=str(parts.port or 5432),
                dbname=unquote(parts.path.strip("/")),
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                **{k: v[0] for k, v in query.items()},
            )
            return cls(kind="postgres", url=url, pg_conninfo=conninfo, pg_schema=schema)
        raise DatabaseUrlError(
            f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads to pick and open its recorder."""
        if self.kind == "sqlite":
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        info = psycopg.conninfo.conninfo_to_dict(self.pg_conninfo)
        env = {
            "PERSISTENCE_MODULE": FACTORY_TOPIC,
            "POSTGRES_DBNAME": str(info.get("dbname", "")),
            "POSTGRES_HOST": str(info.get("host", "")),
            "POSTGRES_PORT": str(info.get("port", "5432")),
            "POSTGRES_USER": str(info.get("user", "")),
            "POSTGRES_PASSWORD": str(info.get("password", "")),
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            # The library's pool wait; the connection attempt itself is bounded below.
            "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
            CONNECT_TIMEOUT_KEY: str(CONNECT_TIMEOUT_S),
            STATEMENT_TIMEOUT_KEY: str(STATEMENT_TIMEOUT_MS),
        }
        if self.pg_schema:
            env["POSTGRES_SCHEMA"] = self.pg_schema
        return env

    def connect(self) -> Any:
        """A new DB-API connection for our own tables, in the same database and schema."""
        if self.kind == "sqlite":
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            _enable_wal(conn)
            return conn
        # No statement timeout: migrations, projections and rebuilds may run long.
        return psycopg.connect(self.pg_conninfo, autocommit=True,
                               **connection_kwargs(CONNECT_TIMEOUT_S, 0, self.pg_schema))

    def pool(self, name: str, max_size: int) -> ConnectionPool:
        """A PostgreSQL pool of autocommit connections in this database and schema, for the
        request path: a caller waits at most CONNECT_TIMEOUT_S for a connection, a statement
        runs at most STATEMENT_TIMEOUT_MS, and a connection is checked before it is handed out,
        so one that died with a server restart is replaced instead of failing its caller."""
        return ConnectionPool(
            self.pg_conninfo, min_size=1, max_size=max_size, open=True, name=name,
            timeout=CONNECT_TIMEOUT_S, check=ConnectionPool.check_connection,
            kwargs={"autocommit": True,
                    **connection_kwargs(CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS, self.pg_schema)})

    def sql(self, statement: str) -> str:
        """Our statements are written with `%s` parameters; SQLite's driver wants `?`."""
        return statement.replace("%s", "?") if self.kind == "sqlite" else statement


def _enable_wal(conn: sqlite3.Connection, attempts: int = 300) -> None:
    """Switches a new database to WAL. Two processes opening a fresh file at once can race
    for the switch, and SQLite answers the loser "database is locked" at once, without its
    busy handler, so retry briefly."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01)


class DatabaseUrlError(ValueError):
    """AINFERA_DATABASE_URL is not a URL we can use."""
