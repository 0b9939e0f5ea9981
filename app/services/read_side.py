"""The read side of one gateway process: connections for reading projections, the in-process
projector (when `settings.run_projections`), lag, and consistent reads.

Reads never touch the projector's connection: on PostgreSQL they borrow from a small pool, on
SQLite each read opens its own connection (cheap, and sqlite3 connections are bound to the
thread that made them). Every read runs in one read-only snapshot, so a page built from
several tables sees one state of them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from adapters.database import Database
from adapters.store import EventStore, StoreUnavailableError
from projections.projector import Projector
from projections.registry import build_projector, names
from projections.tracking import positions as tracked_positions
from projections.view import Session
from projections.wakeup import ask_for_pass

log = logging.getLogger("ainfera.readside")

T = TypeVar("T")

# How long a consistent read may wait for the projections before answering 503.
CONSISTENT_READ_TIMEOUT_S = 2.0


@dataclass
class ReadSide:
    database: Database
    store: EventStore
    projector: Projector | None = None
    pool: ConnectionPool | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only snapshot of our tables (blocking: call it off the event loop). A
        database that is down or too slow raises ReadSideUnavailableError; the pool replaces
        connections that died with a server restart."""
        with translate_read_errors():
            if self.pool is not None:
                with self.pool.connection() as conn:
                    yield from _snapshot(Session(conn, self.database.kind))
                return
            conn = self.database.connect()
            try:
                yield from _snapshot(Session(conn, self.database.kind))
            finally:
                conn.close()

    def read_now(self, query: Callable[[Session], T]) -> T:
        """`read`, blocking (for callers already off the event loop)."""
        with self.session() as session:
            return query(session)

    async def read(self, query: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.session() as session:
                return query(session)

        return await asyncio.to_thread(run)

    def positions(self) -> dict[str, int]:
        """Every registered projection's tracking position (0 before its first batch)."""
        with self.session() as session:
            return tracked_positions(session, names())

    def lags(self) -> dict[str, int]:
        with translate_read_errors():
            latest = self.store.max_notification_id()
        return {name: max(latest - pos, 0) for name, pos in self.positions().items()}

    async def wait_until(self, projections: Iterable[str], notification_id: int,
                         within: float = CONSISTENT_READ_TIMEOUT_S) -> None:
        """Returns once every named projection has applied `notification_id`; raises
        ProjectionBehindError after `within` seconds. Polls the tracking rows (the truth whichever
        process runs the projections) and wakes a local projector so it does not sleep a poll."""
        wanted = list(projections)
        deadline = time.monotonic() + within
        delay = 0.005
        asked = False
        while True:
            positions = await asyncio.to_thread(self.positions)
            behind = {n: positions[n] for n in wanted if positions[n] < notification_id}
            if not behind:
                return
            if self.projector is not None:
                self.projector.nudge()
            elif not asked:
                # The projector is another process: ask it over PostgreSQL, once per read.
                asked = True
                await asyncio.to_thread(self._ask_for_pass)
            if time.monotonic() >= deadline:
                worst = min(behind.values())
                raise ProjectionBehindError(
                    f"read models are behind the ledger ({', '.join(sorted(behind))} at "
                    f"{worst}, wanted {notification_id}); retry shortly"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _ask_for_pass(self) -> None:
        channel = getattr(self.store.app.recorder, "channel_name", None)
        if self.pool is None or not channel:
            return  # SQLite: the projector polls every 50 ms and has no window to cut
        try:
            with self.pool.connection() as conn:
                ask_for_pass(conn, channel)
        except (psycopg.Error, OSError) as exc:
            # Only a hint: the projector still gets there, after its window.
            log.debug("could not ask the projector for a pass: %s", exc)

    def close(self) -> None:
        if self.projector is not None:
            self.projector.stop()
        if self.pool is not None:
            self.pool.close()


def _snapshot(session: Session) -> Iterator[Session]:
    session.begin(write=False)
    try:
        yield session
    finally:
        session.rollback()


def open_read_side(database: Database, store: EventStore, run_projections: bool) -> ReadSide:
    """Builds the read side; starts the projector when this process runs the projections."""
    pool = database.pool("ainfera-read", max_size=4) if database.kind == "postgres" else None
    projector = None
    if run_projections:
        channel = getattr(store.app.recorder, "channel_name", None)
        projector = build_projector(database.connect, database.kind, store,
                                    listen_connect=database.connect, channel=channel)
        projector.start()
    return ReadSide(database=database, store=store, projector=projector, pool=pool)


@contextmanager
def translate_read_errors() -> Iterator[None]:
    """The drivers' "cannot reach or use the database now" errors as ours."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError,
            StoreUnavailableError) as exc:
        text = str(exc).strip() or type(exc).__name__
        raise ReadSideUnavailableError(text.splitlines()[0]) from exc


class ProjectionBehindError(Exception):
    """A consistent read could not be served in time: the projections lag the ledger."""


class ReadSideUnavailableError(Exception):
    """The read models' database cannot be reached or answered too slowly; retry shortly."""
