"""`ainfera verify` and `ainfera rebuild`: proving the read side against the ledger, and
rebuilding one read model from zero while gateways keep serving.

verify: bring the live projections up to the ledger's end (unless told not to), snapshot
every live table with its tracking position, replay the sequence into scratch tables of a
throwaway SQLite database up to the same positions, and diff row by row; then check the
routing contract from the events alone. Every difference is named (per table, up to 20 rows
and a count of the rest), with inferences by their public ids, grouped by what it means.

rebuild: in one transaction set the projection's position back to 0 and delete its rows, then
catch up from the start. A projector elsewhere that was mid-batch finds the position moved
back and reads again from it (the others skip what they have), so nothing is applied twice;
reads meanwhile see a partial read model (a consistent read waits up to 2 s, then answers 503).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore, StoreError
from domain.ids import public_inference_id
from projections.decisions import routers_by_inference
from projections.events import Routed
from projections.ledger_verify import OpenCheckpoint, verify_ledger
from projections.registry import PROJECTIONS, build_projector
from projections.routing_outcomes import all_ids
from projections.tracking import positions as tracked_positions
from projections.verify import differences, dump_tables, replay, routing_contract
from projections.view import Session

# What a finding means, in the order a reader should act on them: an edited ledger first
# (nothing else can be trusted then), then read models that drifted from it (rebuild fixes
# them), then spend counters (the next rebuild from the ledger fixes them).
GROUPS = {
    "ledger": "ledger: the events or the ledger were edited",
    "read_models": "read models: a projection differs from a replay of the ledger "
                   "(`ainfera rebuild NAME` rebuilds one)",
    "counters": "spend counters: Redis differs from the ledger",
}


@dataclass
class VerifyReport:
    positions: dict[str, int]
    ledger_end: int
    events_checked: int
    rows: dict[str, int]
    findings: dict[str, list[str]] = field(
        default_factory=lambda: {group: [] for group in GROUPS})

    @property
    def problems(self) -> list[str]:
        """Every finding, the ledger's first."""
        return [line for group in GROUPS for line in self.findings[group]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, group: str, lines: list[str]) -> None:
        self.findings[group].extend(lines)

    def summary(self) -> str:
        counts = ", ".join(f"{len(self.findings[g])} {g.replace('_', '-')}" for g in GROUPS)
        return (f"{len(self.problems)} problems ({counts}) in {self.events_checked} events "
                f"and {len(self.positions)} read models")

    def as_dict(self) -> dict[str, Any]:
        problems = self.problems
        return {"ok": self.ok, "ledger_end": self.ledger_end, "positions": self.positions,
                "events_checked": self.events_checked, "rows": self.rows,
                "first_difference": problems[0] if problems else None,
                "problems": problems, "findings": self.findings}

    def as_text(self) -> str:
        """Every finding, grouped by what it means, then one summary line."""
        lines: list[str] = []
        for group, title in GROUPS.items():
            if self.findings[group]:
                lines.append(f"{title}:")
                lines += [f"  - {finding}" for finding in self.findings[group]]
        lines.append(f"verify failed: {self.summary()}")
        return "\n".join(lines)


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
    drift: list[str] = []
    for cls in PROJECTIONS:
        if positions[cls.name] < ledger_end and catch_up:
            drift.append(f"{cls.name} is at {positions[cls.name]} but the ledger ends at "
                         f"{ledger_end} after catching up")
        for table, key in cls.tables.items():
            drift += differences(table, key, live_dump[table], replay_dump[table])
    drift += routing_contract(ledger, (outcome_ids, positions["routing_outcomes"]),
                              (routers, positions["decisions"]))
    report.add("read_models", public_ids(store, drift))
    # The ledger: every leaf, link, subtree root and signed checkpoint against the store.
    report.add("ledger", verify_ledger(store, database.connect, database.kind, open_checkpoint))
    return report


_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def public_ids(store: EventStore, lines: list[str]) -> list[str]:
    """The lines with each inference's UUID replaced by its public id (`msg_...`,
    `chatcmpl-...`), the id the API and its users know; other ids stay as they are."""
    known: dict[str, str] = {}

    def public(match: re.Match[str]) -> str:
        text = match.group(0)
        if text not in known:
            known[text] = text
            try:
                events = store.events_of(UUID(text))
            except StoreError:
                events = []
            api = getattr(events[0], "api", None) if events else None
            if isinstance(api, str) and isinstance(events[0], Routed):
                known[text] = public_inference_id(UUID(text), api)
        return known[text]

    return [_UUID.sub(public, line) for line in lines]


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
