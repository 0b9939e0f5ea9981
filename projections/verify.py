"""Checking the read side against the ledger: replay the application sequence into scratch
tables, diff them row by row with the live ones, and check the routing contract straight from
the events (independently of any projection's code).

Each live projection is compared at its own tracking position, read in the same snapshot as
its rows, so a gateway writing meanwhile cannot produce a false difference. Rows are matched
by their key columns and compared as Python values; the DDL uses only TEXT and integer columns,
so a PostgreSQL table and a SQLite replay compare equal when they hold the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.routing import DIRECT, ROUTER
from projections.events import Dispatched, Routed, inference_key
from projections.fold import ReadModel, Sequenced
from projections.projector import NotificationSource, Projector
from projections.view import Row, Session

Dump = dict[str, tuple[list[str], list[Row]]]


@dataclass
class Ledger:
    """What the events say: each routed and each passthrough inference with the notification
    id of its Routed event, and any dispatch recorded without a Routed before it."""

    routed: dict[str, int] = field(default_factory=dict)
    direct: dict[str, int] = field(default_factory=dict)
    uncaptured_dispatches: list[str] = field(default_factory=list)
    events: int = 0


def dump_tables(session: Session, projections: Iterable[type[ReadModel]]) -> Dump:
    dumps: Dump = {}
    for cls in projections:
        for table, key in cls.tables.items():
            cursor = session.conn.execute(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
            dumps[table] = ([d[0] for d in cursor.description],
                            [tuple(row) for row in cursor.fetchall()])
    return dumps


def replay(source: NotificationSource, scratch: Projector, top: int,
           batch_size: int = 500) -> Ledger:
    """Feeds the sequence up to `top` once, through the same projector code the live side
    runs, into scratch read models (each stopping at its own limit), and reads the routing
    facts on the way."""
    ledger = Ledger()
    position = 0
    while position < top:
        page = [n for n in source.notifications(position + 1, batch_size) if n.id <= top]
        if not page:
            break
        batch = [Sequenced(n.id, source.decode(n)) for n in page]
        scratch.apply(batch, position + 1)
        for item in batch:
            _observe(ledger, item.notification_id, item.event)
        position = page[-1].id
    return ledger


def _observe(ledger: Ledger, nid: int, event: Any) -> None:
    ledger.events += 1
    key = inference_key(event)
    if isinstance(event, Routed):
        if event.router == ROUTER:
            ledger.routed[key] = nid
        elif event.router == DIRECT:
            ledger.direct[key] = nid
    elif isinstance(event, Dispatched) and key not in ledger.routed and key not in ledger.direct:
        ledger.uncaptured_dispatches.append(key)


def first_difference(table: str, key: Sequence[str], live: tuple[list[str], list[Row]],
                     replayed: tuple[list[str], list[Row]]) -> str | None:
    """The first row (in key order) that differs, named by its key; None when equal."""
    found = differences(table, key, live, replayed, limit=1)
    return found[0] if found else None


def differences(table: str, key: Sequence[str], live: tuple[list[str], list[Row]],
                replayed: tuple[list[str], list[Row]], limit: int = 20) -> list[str]:
    """Every row (in key order) that differs, named by its key, one line each; past `limit`
    one last line counts the rest."""
    (columns, live_rows), (replay_columns, replay_rows) = live, replayed
    if columns != replay_columns:
        return [f"{table}: columns differ: live {columns} vs replay {replay_columns}"]
    index = [columns.index(k) for k in key]

    def keyed(rows: list[Row]) -> dict[tuple[Any, ...], Row]:
        return {tuple(row[i] for i in index): row for row in rows}

    live_map, replay_map = keyed(live_rows), keyed(replay_rows)
    found: list[str] = []
    more = 0
    for row_key in sorted(live_map.keys() | replay_map.keys()):
        line = _row_difference(table, key, columns, row_key, live_map, replay_map)
        if line is None:
            continue
        if len(found) < limit:
            found.append(line)
        else:
            more += 1
    if more:
        found.append(f"{table}: ... and {more} more rows differ")
    return found


def _row_difference(table: str, key: Sequence[str], columns: list[str],
                    row_key: tuple[Any, ...], live_map: dict[tuple[Any, ...], Row],
                    replay_map: dict[tuple[Any, ...], Row]) -> str | None:
    name = ", ".join(f"{k}={v}" for k, v in zip(key, row_key, strict=True))
    if row_key not in live_map:
        return f"{table}: row {name} is missing from the live table"
    if row_key not in replay_map:
        return f"{table}: row {name} is in the live table but not in the replay"
    for column, got, want in zip(columns, live_map[row_key], replay_map[row_key], strict=True):
        if got != want:
            return (f"{table}: row {name}: column {column} is {got!r} live but "
                    f"{want!r} in the replay")
    return None


def routing_contract(ledger: Ledger, outcomes: tuple[set[str], int],
                     decisions: tuple[dict[str, str], int]) -> list[str]:
    """The routing promises, from the events alone: every routed inference has exactly one
    routing_outcomes row and nothing else has one; every passthrough has its `direct` Routed
    audit record; nothing was dispatched before its Routed was recorded. `outcomes` and
    `decisions` are the live rows with the position they were read at."""
    (outcome_ids, outcome_position), (routers, decision_position) = outcomes, decisions
    routed = {k for k, nid in ledger.routed.items() if nid <= outcome_position}
    direct = {k for k, nid in ledger.direct.items() if nid <= decision_position}
    problems: list[str] = []
    for missing in sorted(routed - outcome_ids):
        problems.append(f"routed inference {missing} has no routing_outcomes row")
    for extra in sorted(outcome_ids - routed):
        problems.append(f"routing_outcomes row {extra} has no routed Routed event")
    for inference in sorted(direct):
        if routers.get(inference) != DIRECT:
            problems.append(f"passthrough {inference} has no direct decision record")
    for inference, router in sorted(routers.items()):
        if router == DIRECT and inference not in direct:
            problems.append(f"decision {inference} says direct but the ledger has no direct "
                            "Routed event for it")
    for inference in ledger.uncaptured_dispatches:
        problems.append(f"inference {inference} was dispatched before its Routed was recorded")
    return problems
