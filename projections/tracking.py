"""Each read model's position in the application sequence: one `projection_tracking` row per
projection (projection, application_name, notification_id), written in the same transaction as
the model's rows (DESIGN section 4).

The library's single-row tracking rule holds: a position only moves forward, and a write that
would not move it fails the transaction. Why our own table and not the library's tracking
recorders: the SQLite one keys tracking by application name only, so two projections in one
file would share one position, and both own their connections, so our rows could join their
transaction only through private cursor wrappers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventsourcing.persistence import IntegrityError

from projections.view import APPLICATION_NAME, Session

_SEED = (
    "INSERT INTO projection_tracking (projection, application_name, notification_id) "
    "VALUES {values} ON CONFLICT (projection, application_name) DO NOTHING"
)
_POSITIONS = (
    "SELECT projection, notification_id FROM projection_tracking WHERE application_name = %s"
)
_ADVANCE = (
    "UPDATE projection_tracking SET notification_id = %s "
    "WHERE application_name = %s AND notification_id < %s AND projection IN ({names}) "
    "RETURNING projection"
)
_RESET = (
    "UPDATE projection_tracking SET notification_id = 0 "
    "WHERE projection = %s AND application_name = %s"
)


def positions(session: Session, names: Iterable[str],
              application_name: str = APPLICATION_NAME) -> dict[str, int]:
    """Each named projection's position (0 before its first batch), from the tracking rows:
    the truth whichever process runs the projections."""
    found = {str(name): int(position)
             for name, position in session.execute(_POSITIONS, (application_name,))}
    return {name: found.get(name, 0) for name in names}


def lock(session: Session, names: Iterable[str],
         application_name: str = APPLICATION_NAME) -> dict[str, int]:
    """Inside a write transaction: the named positions, locked until it ends, so a second
    projector (or a rebuild) waits rather than applying the same events again. Rows are
    created at 0 first, and locked in name order, so two projectors never deadlock."""
    ordered = sorted(set(names))
    session.execute_values(_SEED, [(name, application_name, 0) for name in ordered])
    if session.kind == "postgres":
        # ORDER BY sits below the row locks in the plan: rows are locked in this order.
        marks = ", ".join(["%s"] * len(ordered))
        rows = session.execute(
            f"SELECT projection, notification_id FROM projection_tracking "
            f"WHERE application_name = %s AND projection IN ({marks}) "
            f"ORDER BY projection FOR UPDATE", (application_name, *ordered))
        found = {str(name): int(position) for name, position in rows}
        return {name: found[name] for name in ordered}
    # SQLite: BEGIN IMMEDIATE already holds the database's write lock.
    return positions(session, ordered, application_name)


def advance(session: Session, moves: Mapping[str, int],
            application_name: str = APPLICATION_NAME) -> None:
    """Inside the write transaction of a batch: moves each named position forward to its
    notification id (one statement per distinct id, usually one for the whole batch); fails
    with IntegrityError when a position would not move, which rolls the batch back."""
    by_position: dict[int, list[str]] = {}
    for name, position in moves.items():
        by_position.setdefault(position, []).append(name)
    for position, names in sorted(by_position.items()):
        statement = _ADVANCE.replace("{names}", ", ".join(["%s"] * len(names)))
        moved = {str(row[0]) for row in session.execute(
            statement, (position, application_name, position, *names))}
        if moved != set(names):
            stuck = sorted(set(names) - moved)
            raise IntegrityError(
                f"{', '.join(stuck)} already at or past notification {position} of "
                f"{application_name}")


def reset(session: Session, name: str, application_name: str = APPLICATION_NAME) -> None:
    """Inside a write transaction that holds the position's lock: back to 0."""
    session.execute(_RESET, (name, application_name))
