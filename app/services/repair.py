"""Repair against the ledger: closing inferences whose process died mid-call (`abandoned`),
and reading today's settled spend back out of it so the spend counters can be rebuilt.

Both read the projections (usage_daily, agent_metrics), never the counters or memory: the
ledger is the truth, everything else is rebuilt from it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from adapters.database import Database
from adapters.store import AggregateMissingError, EventStore, StoreConflictError
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.services.read_side import ReadSide
from domain.context import audit_context
from domain.inference import Inference
from domain.money import from_nanos
from projections.usage_daily import spent_on
from projections.view import Session

log = logging.getLogger("ainfera.repair")

# How long repair waits for the projections to catch up with the store before reading them.
REPAIR_WAIT_S = 30.0

_OPEN = (
    "SELECT inference_id FROM agent_metrics WHERE status IS NULL AND created_at < %s "
    "ORDER BY created_at"
)


def spend_by_agent(session: Session, day: date) -> dict[str, Decimal]:
    """Settled spend per agent on a UTC day, as the ledger's Debited events add it up."""
    # Calls recorded without an agent ("") have no counter to rebuild.
    return {agent_id: from_nanos(nanos)
            for agent_id, nanos in spent_on(session, day).items() if agent_id}


def open_inferences(session: Session, routed_before: datetime) -> list[UUID]:
    stamp = routed_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [UUID(str(row[0])) for row in session.execute(_OPEN, (stamp,))]


def abandon(store: EventStore, save: Callable[[Inference], object],
            inference_ids: list[UUID]) -> int:
    """Closes each still-open inference with Completed(abandoned); returns how many.

    Blocking. An inference its own process completes meanwhile is left as that process
    recorded it (the store refuses our now-conflicting version)."""
    repaired = 0
    request_id = f"repair_{uuid.uuid4().hex}"
    for inference_id in inference_ids:
        try:
            inference = store.get(inference_id, Inference)
        except AggregateMissingError:
            continue
        if inference.is_completed:
            continue
        first = store.events_of(inference_id)[0]
        with audit_context(first.tenant_id, first.agent_id,  # type: ignore[attr-defined]
                           request_id):
            inference.complete("abandoned", None, None, None, None)
        try:
            save(inference)
        except (WriteFailedError, StoreConflictError) as exc:
            log.info("inference %s was closed by its own process meanwhile: %s",
                     inference_id, exc)
            continue
        repaired += 1
    if repaired:
        log.warning("closed %d inference(s) left open by a crashed process as abandoned",
                    repaired)
    return repaired


def abandon_cutoff(grace: timedelta) -> datetime:
    return datetime.now(UTC) - grace


def sweep_abandoned(database: Database, store: EventStore, grace: timedelta) -> int:
    """The same repair for a process without a gateway runtime (`ainfera project`)."""
    conn = database.connect()
    try:
        ids = open_inferences(Session(conn, database.kind), abandon_cutoff(grace))
    finally:
        conn.close()
    return abandon(store, lambda inference: store.save_events(inference.collect_events()), ids)


async def repair_abandoned(read_side: ReadSide, store: EventStore, writer: GroupCommitWriter,
                           grace: timedelta) -> int:
    """Closes inferences routed more than `grace` ago that never completed (a gateway's own
    repair: at start and every sweep)."""
    latest = await asyncio.to_thread(store.max_notification_id)
    await read_side.wait_until(["agent_metrics"], latest, within=REPAIR_WAIT_S)
    cutoff = abandon_cutoff(grace)
    ids = await read_side.read(lambda session: open_inferences(session, cutoff))
    return await asyncio.to_thread(abandon, store, writer.save_blocking, ids)
