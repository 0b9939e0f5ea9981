"""Idempotency records: who claimed a key first, and the response to replay to everyone after.

The table's primary key (tenant, key) is the lock: of any number of concurrent claims, on any
number of gateway processes, exactly one inserts; the others read the winner's row. Entries
older than the retention window are expired on the next claim of the same key.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from adapters.database import Database

RETENTION = timedelta(hours=24)

_CLAIM = (
    "INSERT INTO idempotency_keys (tenant_id, idem_key, request_digest, state, created_at) "
    "VALUES (%s, %s, %s, 'pending', %s) ON CONFLICT (tenant_id, idem_key) DO NOTHING"
)
_READ = (
    "SELECT request_digest, state, inference_id, status_code, content_type, headers, body, "
    "created_at FROM idempotency_keys WHERE tenant_id = %s AND idem_key = %s"
)
_EXPIRE = "DELETE FROM idempotency_keys WHERE tenant_id = %s AND idem_key = %s AND created_at < %s"
_FINISH = (
    "UPDATE idempotency_keys SET state = 'done', inference_id = %s, status_code = %s, "
    "content_type = %s, headers = %s, body = %s, completed_at = %s "
    "WHERE tenant_id = %s AND idem_key = %s AND state = 'pending'"
)
_RELEASE = (
    "DELETE FROM idempotency_keys WHERE tenant_id = %s AND idem_key = %s AND state = 'pending'"
)


@dataclass(frozen=True, slots=True)
class Record:
    request_digest: str
    state: str
    inference_id: str | None
    status_code: int | None
    content_type: str | None
    headers: str | None
    body: str | None


class IdempotencyStore:
    """Blocking: call from a worker thread, never on the event loop."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def claim(self, tenant_id: str, key: str, digest: str) -> Record | None:
        """None when this caller now owns the key; otherwise the record already there."""
        now = datetime.now(UTC)
        with self._connection() as conn:
            for _ in range(2):
                inserted = conn.execute(self._sql(_CLAIM), (tenant_id, key, digest, _ts(now)))
                if inserted.rowcount == 1:
                    return None
                row = conn.execute(self._sql(_READ), (tenant_id, key)).fetchone()
                if row is None:
                    continue  # released between our insert and read: claim again
                if row[7] < _ts(now - RETENTION):
                    conn.execute(self._sql(_EXPIRE), (tenant_id, key, _ts(now - RETENTION)))
                    continue
                return Record(*row[:7])
        raise IdempotencyError(f"could not claim idempotency key {key!r}")

    def read(self, tenant_id: str, key: str) -> Record | None:
        with self._connection() as conn:
            row = conn.execute(self._sql(_READ), (tenant_id, key)).fetchone()
        return Record(*row[:7]) if row else None

    def finish(self, tenant_id: str, key: str, inference_id: str | None, status_code: int,
               content_type: str, headers: str, body: str) -> None:
        with self._connection() as conn:
            conn.execute(self._sql(_FINISH), (inference_id, status_code, content_type, headers,
                                              body, _ts(datetime.now(UTC)), tenant_id, key))

    def release(self, tenant_id: str, key: str) -> None:
        """Gives a pending key back (the call failed before anything was recorded)."""
        with self._connection() as conn:
            conn.execute(self._sql(_RELEASE), (tenant_id, key))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _sql(self, statement: str) -> str:
        return self._database.sql(statement)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            if self._database.kind == "sqlite":
                conn = self._database.connect()
                try:
                    yield conn
                finally:
                    conn.close()
                return
            with self._pool_or_new().connection() as conn:
                yield conn
        except (psycopg.Error, sqlite3.Error) as exc:
            raise IdempotencyError(f"idempotency store unavailable: {exc}") from exc

    def _pool_or_new(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = self._database.pool("ainfera-idempotency", max_size=8)
            return self._pool


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IdempotencyError(Exception):
    """The idempotency table could not be read or written."""
