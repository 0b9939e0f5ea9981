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
from operator import itemgetter
from typing import Any, ClassVar

from projections.events import inference_key
from projections.view import Session, utc_text


class Sequenced:
    """One decoded event and its place in the application sequence, with the per-event facts
    several read models (and the ledger) write: computed on first use and then shared, since
    `str(UUID)` and formatting a timestamp cost microseconds each and a batch used to redo
    them in every model (up to four times per event)."""

    __slots__ = ("_key", "_recorded_at", "event", "notification_id")

    def __init__(self, notification_id: int, event: Any) -> None:
        self.notification_id = notification_id
        self.event = event
        self._key: str | None = None
        self._recorded_at: str | None = None

    @property
    def key(self) -> str:
        """The event's aggregate id as text (`projections.events.inference_key`)."""
        key = self._key
        if key is None:
            key = self._key = inference_key(self.event)
        return key

    @property
    def recorded_at(self) -> str:
        """When the event was recorded, as `utc_text` writes it."""
        at = self._recorded_at
        if at is None:
            at = self._recorded_at = utc_text(self.event.timestamp)
        return at

    def __repr__(self) -> str:
        return f"Sequenced({self.notification_id!r}, {self.event!r})"


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
            # A tuple per row in C rather than a generator per row; itemgetter of one name
            # gives the bare value, so that case is wrapped.
            pick = itemgetter(*self.columns)
            rows = ([pick(row) for row in self.created.values()] if len(self.columns) > 1
                    else [(pick(row),) for row in self.created.values()])
            session.execute_values(
                f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {{values}}", rows)
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, values in self.changed.items():
            columns = tuple(sorted(values))
            by_columns.setdefault(columns, []).append((*(values[c] for c in columns), key))
        for columns, rows in by_columns.items():
            assignments = ", ".join(f"{c} = %s" for c in columns)
            session.execute_many(
                f"UPDATE {self.table} SET {assignments} WHERE {self.key} = %s", rows)
