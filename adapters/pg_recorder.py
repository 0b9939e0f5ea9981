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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import psycopg
import psycopg.errors
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType
from psycopg.sql import SQL, Identifier

log = logging.getLogger("ainfera.store")

F = TypeVar("F", bound=Callable[..., Any])

FACTORY_TOPIC = "adapters.pg_recorder:LedgerPostgresFactory"
# The advisory lock key that serialises the library's table creation (any fixed bigint that
# nothing else in the database uses for an advisory lock).
CREATE_TABLE_LOCK = 0x41494E4645524131  # "AINFERA1"
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
    """The library's application recorder with one retry, only on a dead connection, and
    each insert in one statement.

    A retried insert whose first attempt did commit (the connection broke while the commit
    was answered) fails on the version it already wrote: the caller sees a conflict and reads
    back what is recorded, never a duplicate.

    The library's insert is ten client-side steps (a pipeline, BEGIN, SET LOCAL, LOCK TABLE,
    a NOTIFY composed afresh each time, the INSERT, a sync, COMMIT): about 1.2 ms of the
    writer thread's CPU per commit, under the GIL the event loop needs. Here the same steps
    run server-side in one PL/pgSQL function, called as one prepared autocommit statement:
    the statement is the whole transaction, so the EXCLUSIVE lock (taken with the library's
    lock_timeout) is still held until the commit, the NOTIFY still goes out on the library's
    channel at that commit, the primary key still refuses a second event at a version (a
    unique violation, mapped by the library to its IntegrityError), and the ids still come
    back in insert order. The library's own function (POSTGRES_ENABLE_DB_FUNCTIONS) does not
    lock the table, so a tailing reader could skip an id committed late; it is not used.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_function_name = f"{events_table_name}_insert_locked"
        self.check_identifier_length(self.insert_function_name)
        schema = Identifier(self.datastore.schema)
        function = Identifier(self.insert_function_name)
        id_type = SQL(self.datastore.originator_id_type)  # "uuid" or "text", checked by it
        # Four arrays rather than the library's composite array: psycopg dumps them in C
        # (binary, so the states are not hex-encoded), where each composite value is built
        # and dumped field by field in Python. unnest(a, b, c, d) zips them in order.
        # The lock timeout is an argument, not baked in: processes started with different
        # settings share the one function.
        self.sql_create_insert_function = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "p_ids {id_type}[], p_versions bigint[], p_topics text[], p_states bytea[], "
            "p_lock_timeout text) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
            # Why the lock: PostgresApplicationRecorder._lock_table.
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} "
            "(originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(p_ids, p_versions, p_topics, p_states) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(schema=schema, function=function, id_type=id_type,
                 table=Identifier(self.events_table_name),
                 channel=Identifier(self.channel_name))
        # Created with the library's tables, at every start (a database set up by an
        # earlier version gets it then), and on first use when missing.
        self.sql_create_statements.append(self.sql_create_insert_function)
        self.sql_call_insert_function = SQL(
            "SELECT * FROM {schema}.{function}("
            "%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[], %b::text)"
        ).format(schema=schema, function=function, id_type=id_type).as_string()
        # The library's `SET LOCAL lock_timeout = '{n}s'`.
        self.lock_timeout_setting = f"{self.datastore.lock_timeout}s"

    @_once_more_on_a_dead_connection
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return None  # as the library: nothing written, no lock, no notification
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            self.lock_timeout_setting,
        )
        with self.datastore.get_connection() as conn:
            # The pool's connections are autocommit (the library's after_connect), so the
            # statement is its own transaction and the lock lasts until its commit.
            try:
                rows = conn.execute(self.sql_call_insert_function, params,
                                    prepare=True).fetchall()
            except psycopg.errors.UndefinedFunction:
                # A database whose tables were created without it (CREATE_TABLE=no).
                conn.execute(self.sql_create_insert_function)
                rows = conn.execute(self.sql_call_insert_function, params,
                                    prepare=True).fetchall()
        return [row[self.insert_function_name] for row in rows]

    def create_table(self) -> None:
        """The library's table creation, one process at a time per database.

        Its types, tables and functions are created at every start, and PostgreSQL refuses
        the same DDL run concurrently (a duplicate type, or "tuple concurrently updated" for
        CREATE OR REPLACE FUNCTION): gateways of a rolling deploy, or a gateway and a
        projector worker, starting at the same moment failed at random. A session advisory
        lock, held on a connection of its own outside the pool (the library's steps take
        theirs from the pool, which may hold a single connection), makes each wait for the
        one before; the server drops it with the session if this process dies meanwhile."""
        pool = self.datastore.pool
        conninfo = pool.conninfo if isinstance(pool.conninfo, str) else pool.conninfo()
        kwargs = pool.kwargs() if callable(pool.kwargs) else dict(pool.kwargs or {})
        with psycopg.connect(conninfo, **{**kwargs, "autocommit": True}) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_TABLE_LOCK,))
            super().create_table()

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
