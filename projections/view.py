"""The materialised view our projections write to: our own tables plus one tracking row per
projection, changed together in ONE transaction on a plain DB-API connection (sqlite3 or
psycopg, handed in by the composition root; this package never opens a database itself).

Why not the library's SQLite/PostgreSQL tracking recorders as they are: the SQLite one keeps a
single `tracking` table keyed by application name only, so two projections in one database file
would share one position; and both own their connection pools, so our rows could share their
transaction only through the library's private cursor wrappers. `SqlView` implements the
library's `TrackingRecorder` interface instead (so `Projection[SqlView]`, `has_tracking_id` and
`wait` behave as documented) with the library's single-row tracking rule: a position only moves
forward, and a write that would not move it raises `IntegrityError`, rolling back the rows
written with it.

A view's connection belongs to the thread that first uses it (sqlite3 refuses cross-thread
use): one view per runner thread. Readers use their own connections.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, ClassVar

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection

# The name of the one application whose sequence every projection follows (LedgerApplication).
APPLICATION_NAME = "Ainfera"

Connect = Callable[[], Any]
Row = tuple[Any, ...]

_SEED = (
    "INSERT INTO projection_tracking (projection, application_name, notification_id) "
    "VALUES (%s, %s, 0) ON CONFLICT (projection, application_name) DO NOTHING"
)
_POSITION = (
    "SELECT notification_id FROM projection_tracking "
    "WHERE projection = %s AND application_name = %s"
)
_ADVANCE = (
    "INSERT INTO projection_tracking (projection, application_name, notification_id) "
    "VALUES (%s, %s, %s) ON CONFLICT (projection, application_name) DO UPDATE "
    "SET notification_id = excluded.notification_id "
    "WHERE projection_tracking.notification_id < excluded.notification_id "
    "RETURNING notification_id"
)
_RESET = (
    "UPDATE projection_tracking SET notification_id = 0 "
    "WHERE projection = %s AND application_name = %s"
)


class Session:
    """One connection and its dialect. Statements are written with `%s` parameters."""

    def __init__(self, conn: Any, kind: str) -> None:
        self.conn = conn
        self.kind = kind

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[Row]:
        """Runs one statement; returns its rows (empty for statements without a result)."""
        sql = statement.replace("%s", "?") if self.kind == "sqlite" else statement
        cursor = self.conn.execute(sql, params)
        if cursor.description is None:
            return []
        return [tuple(row) for row in cursor.fetchall()]

    def begin(self, *, write: bool) -> None:
        if self.kind == "sqlite":
            # IMMEDIATE takes the write lock up front, so the position read at the start of a
            # batch cannot change under it; a plain BEGIN gives readers one WAL snapshot.
            self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        else:
            self.conn.execute(
                "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            )

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()


class SqlView(TrackingRecorder):
    """The tables of one projection and its position in the application sequence."""

    def __init__(self, projection: str, connect: Connect, kind: str,
                 application_name: str = APPLICATION_NAME) -> None:
        self.projection = projection
        self.application_name = application_name
        self.kind = kind
        self._connect = connect
        self._session: Session | None = None
        self._depth = 0
        self._pending: Tracking | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self._connect(), self.kind)
        return self._session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction; nested calls join the open one (a runner's batch), so a
        projection's `process_event` commits on its own only when called on its own."""
        if self._depth:
            self._depth += 1
            try:
                yield self.session
            finally:
                self._depth -= 1
            return
        session = self.session
        session.begin(write=True)
        self._depth = 1
        self._pending = None
        try:
            yield session
            self._write_tracking()
        except BaseException:
            self._abandon(session)
            raise
        else:
            try:
                session.commit()
            except BaseException:
                self._abandon(session)
                raise
        finally:
            self._depth = 0
            self._pending = None

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction: every read inside it sees one consistent state."""
        session = self.session
        session.begin(write=False)
        try:
            yield session
        finally:
            try:
                session.rollback()
            except Exception:
                self._drop()

    def _abandon(self, session: Session) -> None:
        try:
            session.rollback()
        except Exception:
            # A connection that cannot even roll back is broken: open a new one next time.
            self._drop()

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def close(self) -> None:
        self._drop()

    def lock_position(self) -> int:
        """Inside a write transaction: this projection's position, locked until commit, so a
        second runner (or a rebuild) waits rather than applying the same events again."""
        session = self.session
        session.execute(_SEED, (self.projection, self.application_name))
        lock = " FOR UPDATE" if self.kind == "postgres" else ""
        rows = session.execute(_POSITION + lock, (self.projection, self.application_name))
        return int(rows[0][0])

    def track(self, tracking: Tracking) -> None:
        """Inside a write transaction: moves the position to `tracking` when the transaction
        commits (a batch writes its last position once, not one row update per event), or
        fails the commit with IntegrityError when it is not ahead (applied already)."""
        if not self._depth:
            raise RuntimeError("track() belongs inside view.transaction()")
        pending = self._pending
        if pending is None or tracking.notification_id > pending.notification_id:
            self._pending = tracking

    def _write_tracking(self) -> None:
        tracking = self._pending
        if tracking is None:
            return
        rows = self.session.execute(
            _ADVANCE, (self.projection, tracking.application_name, tracking.notification_id)
        )
        if not rows:
            raise IntegrityError(
                f"{self.projection} is already at or past notification "
                f"{tracking.notification_id} of {tracking.application_name}"
            )

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.transaction():
            self.track(tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        if self._depth:
            rows = self.session.execute(_POSITION, (self.projection, application_name))
        else:
            with self.snapshot() as session:
                rows = session.execute(_POSITION, (self.projection, application_name))
        # Notification ids start at 1, so the seeded 0 means "nothing yet" (the library's None).
        return (int(rows[0][0]) or None) if rows else None

    def reset(self, tables: Iterable[str]) -> None:
        """Back to zero in one transaction: the position first (which waits for a runner's
        batch in flight to commit), then every row of the projection's tables."""
        with self.transaction() as session:
            self.lock_position()
            session.execute(_RESET, (self.projection, self.application_name))
            for table in tables:
                session.execute(f"DELETE FROM {table}")


class SqlProjection(Projection[SqlView]):
    """Base of our projections. `tables` maps each table a projection owns (and only it
    writes) to the columns that key one row: dumps are ordered by them and verify names a
    differing row by them. Subclasses implement `process_event` with a `match` on event
    classes, write through `self.view.transaction()` and call `self.view.track(tracking)`
    for every event, ignored ones included."""

    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @abstractmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Applies one event and records its position, in one transaction."""


def tracked_positions(session: Session, names: Iterable[str],
                      application_name: str = APPLICATION_NAME) -> dict[str, int]:
    """Each named projection's position (0 before its first batch), from the tracking rows:
    the truth whichever process runs the projections."""
    found = {str(name): int(position) for name, position in session.execute(
        "SELECT projection, notification_id FROM projection_tracking "
        "WHERE application_name = %s", (application_name,))}
    return {name: found.get(name, 0) for name in names}


def utc_text(moment: datetime) -> str:
    """A timestamp as fixed-width ISO 8601 UTC text, so text order is time order on both
    dialects and a replay writes the same bytes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
