"""What a read model is to the projector: a fold from a batch of events to rows, whose SQL lives
in the model's own module. The projector owns everything else: reading and decoding the batch
once, transactions, positions, retries and reconnects (projections.projector).

`KeyedRows` is the fold most read models share: rows keyed by one column, created by one event
and filled in by later ones. A row created in the batch gets the later events' values before it
is written (one multi-row INSERT); a row created by an earlier batch gets one UPDATE with every
value the batch set (executemany, grouped by the columns set). Nothing is read back first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from projections.view import Session


class Sequenced(NamedTuple):
    """One decoded event and its place in the application sequence."""

    notification_id: int
    event: object


class ReadModel(ABC):
    """One projection. `tables` maps each table it owns (and only it writes) to the columns
    that key one row: dumps are ordered by them and `ainfera verify` names a row by them."""

    name: ClassVar[str]
    tables: ClassVar[Mapping[str, tuple[str, ...]]]

    @abstractmethod
    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        """Writes what `batch` (events past this model's position, in sequence order) changes,
        inside the projector's transaction; ignored events simply change nothing."""

    def prepare(self, batch: Sequence[Sequenced]) -> None:  # noqa: B027 - an optional hook
        """Called before the batch's transaction with the events this model is expected to
        apply: work that needs no database can be done here, so the transaction (on SQLite,
        the database's write lock) is held for less time. `apply` must check it still holds."""

    def committed(self) -> None:  # noqa: B027 - a hook: most models cache nothing
        """Called once the batch's transaction committed (a model caching state moves it)."""


class KeyedRows:
    """The rows of one table that a batch creates or changes, keyed by `key`."""

    def __init__(self, table: str, key: str, columns: Sequence[str]) -> None:
        self.table = table
        self.key = key
        self.columns = tuple(columns)
        self.created: dict[Any, dict[str, Any]] = {}
        self.changed: dict[Any, dict[str, Any]] = {}
        self._absent: set[Any] = set()

    def create(self, key: Any, **values: Any) -> None:
        row = dict.fromkeys(self.columns)
        row.update(values, **{self.key: key})
        self.created[key] = row

    def skip(self, key: Any) -> None:
        """`key` has no row (its creating event made none): later changes to it are dropped."""
        self._absent.add(key)

    def set(self, key: Any, **values: Any) -> None:
        if key in self.created:
            self.created[key].update(values)
        elif key not in self._absent:
            self.changed.setdefault(key, {}).update(values)

    def write(self, session: Session) -> None:
        if self.created:
            session.execute_values(
                f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {{values}}",
                [tuple(row[c] for c in self.columns) for row in self.created.values()])
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, values in self.changed.items():
            columns = tuple(sorted(values))
            by_columns.setdefault(columns, []).append((*(values[c] for c in columns), key))
        for columns, rows in by_columns.items():
            assignments = ", ".join(f"{c} = %s" for c in columns)
            session.execute_many(
                f"UPDATE {self.table} SET {assignments} WHERE {self.key} = %s", rows)
