"""`ainfera verify` and `ainfera rebuild`: proving the read side against the ledger, and
rebuilding one read model from zero while gateways keep serving.

verify: bring the live projections up to the ledger's end (unless told not to), snapshot
every live table with its tracking position, replay the sequence into scratch tables of a
throwaway SQLite database up to the same positions, and diff row by row; then check the
routing contract from the events alone. The first difference is named.

rebuild: in one transaction set the projection's position back to 0 and delete its rows, then
catch up from the start. A projector elsewhere that was mid-batch finds the position moved
back and reads again from it (the others skip what they have), so nothing is applied twice;
reads meanwhile see a partial read model (a consistent read waits up to 2 s, then answers 503).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from projections.decisions import routers_by_inference
from projections.ledger_verify import OpenCheckpoint, verify_ledger
from projections.registry import PROJECTIONS, build_projector
from projections.routing_outcomes import all_ids
from projections.tracking import positions as tracked_positions
from projections.verify import dump_tables, first_difference, replay, routing_contract
from projections.view import Session


@dataclass
class VerifyReport:
    positions: dict[str, int]
    ledger_end: int
    events_checked: int
    rows: dict[str, int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "ledger_end": self.ledger_end, "positions": self.positions,
                "events_checked": self.events_checked, "rows": self.rows,
                "first_difference": self.problems[0] if self.problems else None,
                "problems": self.problems}


def verify(database: Database, store: EventStore, catch_up: bool = True,
           open_checkpoint: OpenCheckpoint | None = None) -> VerifyReport:
    # Read first: events written while verify runs are not this run's business.
    ledger_end = store.max_notification_id()
    if catch_up:
        live_projector = build_projector(database.connect, database.kind, store)
        try:
            live_projector.catch_up()
        finally:
            live_projector.close()
    conn = database.connect()
    try:
        live = Session(conn, database.kind)
        live.begin(write=False)
        try:
            positions = tracked_positions(live, (cls.name for cls in PROJECTIONS))
            live_dump = dump_tables(live, PROJECTIONS)
            outcome_ids, routers = all_ids(live), routers_by_inference(live)
        finally:
            live.rollback()
    finally:
        conn.close()
    with tempfile.TemporaryDirectory(prefix="ainfera-verify-") as scratch_dir:
        scratch = Database.from_url(f"sqlite:///{Path(scratch_dir) / 'replay.db'}")
        migrate(scratch)
        projector = build_projector(scratch.connect, scratch.kind, store, limits=positions)
        try:
            ledger = replay(store, projector, max(positions.values(), default=0))
        finally:
            projector.close()
        conn = scratch.connect()
        try:
            replay_dump = dump_tables(Session(conn, scratch.kind), PROJECTIONS)
        finally:
            conn.close()
    report = VerifyReport(positions, ledger_end, ledger.events,
                          {t: len(rows) for t, (_, rows) in live_dump.items()})
    for cls in PROJECTIONS:
        if positions[cls.name] < ledger_end and catch_up:
            report.problems.append(f"{cls.name} is at {positions[cls.name]} but the ledger "
                                   f"ends at {ledger_end} after catching up")
        for table, key in cls.tables.items():
            difference = first_difference(table, key, live_dump[table], replay_dump[table])
            if difference:
                report.problems.append(difference)
    report.problems += routing_contract(
        ledger, (outcome_ids, positions["routing_outcomes"]),
        (routers, positions["decisions"]))
    # The ledger: every leaf, link, subtree root and signed checkpoint against the store.
    report.problems += verify_ledger(store, database.connect, database.kind, open_checkpoint)
    return report


def rebuild(database: Database, store: EventStore, name: str) -> dict[str, Any]:
    """Rebuilds one projection from zero; returns how many events it applied."""
    # An unknown name fails here, before anything is touched.
    projector = build_projector(database.connect, database.kind, store, [name])
    try:
        projector.reset(name)
        applied = projector.catch_up()
        return {"projection": name, "applied": applied, "position": projector.position()}
    finally:
        projector.close()
