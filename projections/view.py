"""One connection to our own tables and the SQL shapes the read side writes with: plain DB-API
connections (sqlite3 or psycopg, handed in by the composition root; this package never opens a
database itself), statements written with `%s` parameters for both dialects.

Writes are set-based: `execute_values` sends many rows in one multi-row statement (chunked under
both drivers' parameter limits) and `execute_many` runs one statement over many parameter rows
(psycopg pipelines it: one round trip, not one per row). On PostgreSQL a multi-row statement is
written with native `$n` placeholders and sent through a raw cursor: psycopg would otherwise
re-parse every long statement to convert `%s` (uncached past 4 KB), which cost more CPU than
the rows themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from psycopg import RawCursor

# The name of the one application whose sequence every projection follows (LedgerApplication).
APPLICATION_NAME = "Ainfera"
# Parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
MAX_PARAMS: Final = 30_000

Connect = Callable[[], Any]
Row = tuple[Any, ...]


class Session:
    """One connection and its dialect. `statements` counts what it sent to the database (an
    executemany or a multi-row statement is one), which shows whether writes are set-based."""

    def __init__(self, conn: Any, kind: str) -> None:
        self.conn = conn
        self.kind = kind
        self.statements = 0

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.kind == "sqlite" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Runs one statement; returns its rows (empty for statements without a result)."""
        self.statements += 1
        cursor = self.conn.execute(self._sql(statement), tuple(params))
        if cursor.description is None:
            return []
        return [tuple(row) for row in cursor.fetchall()]

    def execute_many(self, statement: str, rows: Sequence[Row]) -> None:
        """One statement over many parameter rows."""
        if not rows:
            return
        self.statements += 1
        if self.kind == "sqlite":
            self.conn.executemany(self._sql(statement), rows)
            return
        with self.conn.cursor() as cursor:
            cursor.executemany(statement, rows)

    def execute_values(self, template: str, rows: Sequence[Row]) -> list[Row]:
        """Runs `template` with its `{values}` replaced by one `(%s, ...)` group per row, in as
        few statements as the parameter limit allows; returns the rows they return."""
        if not rows:
            return []
        width = len(rows[0])
        chunk = max(MAX_PARAMS // max(width, 1), 1)
        out: list[Row] = []
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            params = [value for row in part for value in row]
            self.statements += 1
            groups = _placeholders(self.kind == "sqlite", width, len(part))
            if self.kind == "sqlite":
                cursor = self.conn.execute(template.replace("{values}", groups), params)
                rows_out = cursor.fetchall() if cursor.description is not None else []
            else:
                with RawCursor(self.conn) as cursor:
                    cursor.execute(template.replace("{values}", groups), params)
                    rows_out = cursor.fetchall() if cursor.description is not None else []
            out += [tuple(row) for row in rows_out]
        return out

    def begin(self, *, write: bool) -> None:
        self.statements += 1
        if self.kind == "sqlite":
            # IMMEDIATE takes the write lock up front, so the positions read at the start of a
            # batch cannot change under it; a plain BEGIN gives readers one WAL snapshot.
            self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        else:
            self.conn.execute(
                "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            )

    def commit(self) -> None:
        self.statements += 1
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.statements += 1
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()


@lru_cache(maxsize=64)
def _placeholders(sqlite: bool, width: int, count: int) -> str:
    """`count` groups of `width` parameters: `(?, ?), (?, ?)` on SQLite, `($1, $2), ($3, $4)`
    on PostgreSQL. Cached: a batch writes a few shapes, and building the PostgreSQL groups
    (one f-string per parameter) cost more than binding the parameters themselves."""
    if sqlite:
        return ", ".join(["(" + ", ".join(["?"] * width) + ")"] * count)
    numbers = [f"${n}" for n in range(1, width * count + 1)]
    return ", ".join("(" + ", ".join(numbers[i:i + width]) + ")"
                     for i in range(0, width * count, width))


def utc_text(moment: datetime) -> str:
    """A timestamp as fixed-width ISO 8601 UTC text, so text order is time order on both
    dialects and a replay writes the same bytes."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime leaves such a year unpadded: keep its bytes
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same bytes as that strftime, at a quarter of its cost (a projector pass formats
    # every event's time several times).
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
