"""The eventsourcing library's PostgreSQL recorder, made to fail fast when the server is gone.

The library retries every recorder call up to ten times, each time waiting up to the pool's
connect timeout for a connection: during an outage a single write or read hangs its caller for
most of a minute (a `/readyz` took 28 s) instead of being refused. Here each call is tried once,
and once more only when the connection it was given turned out to be dead (a PostgreSQL
restart leaves every pooled connection dead): the pool then discards its dead idle connections
(`ConnectionPool.check`) and the retry gets a live one. A call that cannot get a connection
at all (the server is down) is not retried; its caller is refused within the connect timeout.

Connections also get a connect timeout, TCP keepalives (a server that vanished without a
reset is noticed in seconds, not at the kernel's two hours) and a statement timeout.

The factory is named by its topic in `PERSISTENCE_MODULE` (`Database.eventsourcing_env`), so
the library builds it exactly as it would its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment, EnvType

log = logging.getLogger("ainfera.store")

F = TypeVar("F", bound=Callable[..., Any])

FACTORY_TOPIC = "adapters.pg_recorder:LedgerPostgresFactory"
# Our own settings, read from the same environment mapping the library reads.
CONNECT_TIMEOUT_KEY = "AINFERA_PG_CONNECT_TIMEOUT"
STATEMENT_TIMEOUT_KEY = "AINFERA_PG_STATEMENT_TIMEOUT_MS"


def connection_lost(exc: BaseException) -> bool:
    """True when a driver error means the connection or the server went away (as opposed to
    a statement the server refused): no SQLSTATE at all (a broken socket, a pool that could
    not hand out a connection), class 08 (connection exception) or 57P0x (the server is
    shutting down, crashed, or not yet accepting connections)."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if isinstance(cause, psycopg_pool.PoolTimeout):
        return True
    if not isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = cause.sqlstate
    return state is None or state.startswith("08") or state.startswith("57P")


def pool_exhausted(exc: BaseException) -> bool:
    """True when the pool could not hand out any connection in time (the server is down)."""
    return isinstance(exc.__cause__, psycopg_pool.PoolTimeout)


def _once_more_on_a_dead_connection(method: F) -> F:
    # The library's own function, without its ten-attempt retry decorator.
    inner: Callable[..., Any] = getattr(method, "__wrapped__", method)

    @functools.wraps(inner)
    def call(self: PostgresApplicationRecorder, *args: Any, **kwargs: Any) -> Any:
        try:
            return inner(self, *args, **kwargs)
        except (InterfaceError, OperationalError) as exc:
            if pool_exhausted(exc) or not connection_lost(exc):
                raise
            log.info("store connection lost (%s); dropping dead connections and retrying once",
                     str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            self.datastore.pool.check()
            return inner(self, *args, **kwargs)

    return cast(F, call)


class FailFastApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder with one retry, only on a dead connection.

    A retried insert whose first attempt did commit (the connection broke while the commit
    was answered) fails on the version it already wrote: the caller sees a conflict and reads
    back what is recorded, never a duplicate."""

    insert_events = _once_more_on_a_dead_connection(PostgresApplicationRecorder.insert_events)
    select_events = _once_more_on_a_dead_connection(PostgresApplicationRecorder.select_events)
    select_notifications = _once_more_on_a_dead_connection(
        PostgresApplicationRecorder.select_notifications)
    max_notification_id = _once_more_on_a_dead_connection(
        PostgresApplicationRecorder.max_notification_id)


class LedgerPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory with our recorder and connection settings."""

    application_recorder_class = FailFastApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        connect_timeout = int(self.env.get(CONNECT_TIMEOUT_KEY) or "2")
        statement_timeout = int(self.env.get(STATEMENT_TIMEOUT_KEY) or "0")
        # The pool has not connected yet (it opens on first use), so every connection it
        # makes gets these.
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        kwargs.update(connection_kwargs(connect_timeout, statement_timeout, ""))


def connection_kwargs(connect_timeout_s: int, statement_timeout_ms: int,
                      schema: str) -> dict[str, Any]:
    """psycopg connection parameters shared by every PostgreSQL connection we open."""
    options = []
    if schema:
        options.append(f"-c search_path={schema}")
    if statement_timeout_ms > 0:
        options.append(f"-c statement_timeout={statement_timeout_ms}")
    return {
        "connect_timeout": max(connect_timeout_s, 2),  # libpq's minimum
        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
        "options": " ".join(options),
    }
