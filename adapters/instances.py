"""Gateway instances and their heartbeats: the `gateway_instances` table.

A gateway process has an id (`gw_<hex>`), stamped on every inference it routes
(Routed.instance_id), and a row here that it refreshes every few seconds. Crash repair reads
the rows to tell a call whose process is gone from a call still being served: age alone
cannot (a stream may run for minutes, an upstream may hang until the read timeout).

Blocking: call from a worker thread. Errors are `InstancesUnavailable`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from adapters.database import Database

_BEAT = (
    "INSERT INTO gateway_instances (instance_id, started_at, heartbeat_at, beats_since) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (instance_id) DO UPDATE SET "
    "heartbeat_at = excluded.heartbeat_at, beats_since = excluded.beats_since, "
    "stopped_at = NULL"
)
_STOP = "UPDATE gateway_instances SET stopped_at = %s WHERE instance_id = %s"
_ALL = "SELECT instance_id, heartbeat_at, beats_since, stopped_at FROM gateway_instances"
_PRUNE = "DELETE FROM gateway_instances WHERE heartbeat_at < %s"


@dataclass(frozen=True, slots=True)
class Beat:
    instance_id: str
    heartbeat_at: datetime
    beats_since: datetime
    stopped_at: datetime | None


class GatewayInstances:
    """`pool`: a PostgreSQL pool to borrow from (a gateway shares its read pool, so the
    heartbeat costs no connection of its own); without one, or once it is closed (the last
    word of a stopping gateway), each call opens its own."""

    def __init__(self, database: Database, pool: ConnectionPool | None = None) -> None:
        self._database = database
        self._pool = pool

    def beat(self, instance_id: str, started_at: datetime, now: datetime,
             beats_since: datetime) -> None:
        """Refreshes the instance's row (creating it on the first beat)."""
        with self._connection() as conn:
            conn.execute(self._database.sql(_BEAT), (instance_id, _ts(started_at), _ts(now),
                                                     _ts(beats_since)))

    def stopped(self, instance_id: str, now: datetime) -> None:
        """The instance stopped cleanly, after its calls in flight ended."""
        with self._connection() as conn:
            conn.execute(self._database.sql(_STOP), (_ts(now), instance_id))

    def beats(self) -> dict[str, Beat]:
        with self._connection() as conn:
            rows = conn.execute(self._database.sql(_ALL)).fetchall()
        return {row[0]: Beat(row[0], _parse(row[1]), _parse(row[2]),
                             _parse(row[3]) if row[3] else None) for row in rows}

    def prune(self, older_than: datetime) -> None:
        """Forgets instances silent since `older_than` (their calls were repaired long ago)."""
        with self._connection() as conn:
            conn.execute(self._database.sql(_PRUNE), (_ts(older_than),))

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            if self._pool is not None and not self._pool.closed:
                with self._pool.connection() as conn:
                    yield conn
                return
            conn = self._database.connect()
            try:
                yield conn
            finally:
                conn.close()
        except (psycopg.Error, sqlite3.Error) as exc:
            text = str(exc).strip() or type(exc).__name__
            raise InstancesUnavailable(f"gateway instances unavailable: "
                                       f"{text.splitlines()[0]}") from exc


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class InstancesUnavailable(Exception):
    """The instances table could not be read or written."""
