"""Repair against the ledger: closing inferences whose process died mid-call (`abandoned`),
and reading today's settled spend back out of it so the spend counters can be rebuilt.

Repair never touches a live call: every inference names the gateway instance that owns it
(Routed.instance_id), and it is closed only when that owner is gone (`Owners.gone`), never by
its age alone.

Both read the projections (usage_daily, agent_metrics), never the counters or memory: the
ledger is the truth, everything else is rebuilt from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.database import Database
from adapters.instances import Beat, GatewayInstances
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
# Inferences younger than this are not even looked at (they are certainly being served).
CANDIDATE_AGE = timedelta(seconds=1)
# How long an instance may go unheard before its calls count as abandoned.
DEFAULT_TTL = timedelta(seconds=15)

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


def heartbeat_interval(ttl: timedelta) -> float:
    """How often an instance refreshes its row: several times per TTL, at most every 2 s."""
    return min(2.0, ttl.total_seconds() / 5)


def recheck_wait(ttl: timedelta) -> float:
    """How long a live instance may take to beat again once the store answers."""
    return 3 * heartbeat_interval(ttl)


def gone_instances(first: Mapping[str, Beat], second: Mapping[str, Beat], now: datetime,
                   ttl: timedelta) -> frozenset[str]:
    """Instances that stopped, or whose heartbeat was older than `ttl` in the `first` reading
    and did not move by the `second`, taken `recheck_wait(ttl)` later. The second reading is
    what makes a store outage harmless: nobody could beat during it, but a live instance beats
    again within one interval of the store answering, so an old heartbeat that is still the
    same after that wait belongs to an instance that is gone."""
    gone = {i for i, beat in second.items() if beat.stopped_at is not None}
    for instance_id, beat in first.items():
        again = second.get(instance_id)
        if beat.heartbeat_at < now - ttl and again is not None \
                and again.heartbeat_at == beat.heartbeat_at:
            gone.add(instance_id)
    return frozenset(gone)


@dataclass(frozen=True)
class Owners:
    """Who may still be serving an open inference, as the instances table shows at `now`.

    An inference is abandoned only when its owner cannot be serving it any more:
    - owned by this process: it is not among the calls this process is serving;
    - owned by another instance: that instance is in `gone` (stopped, or silent for longer
      than the TTL and still silent after a recheck, `gone_instances`), or has no row at all
      (forgotten long ago);
    - recorded before owners were (no instance id): open longer than `legacy_grace`.
    """

    now: datetime
    ttl: timedelta
    known: frozenset[str]
    gone: frozenset[str]
    legacy_grace: timedelta
    me: str | None = None
    serving: Callable[[UUID], bool] = field(default=lambda _: False)

    def reason(self, inference_id: UUID, owner: str | None,
               routed_at: datetime) -> str | None:
        """Why the inference can no longer be served (None: it may still be)."""
        if owner is None:
            if routed_at < self.now - self.legacy_grace:
                return f"open for more than {self.legacy_grace.total_seconds():g} s"
            return None
        if owner == self.me:
            if self.serving(inference_id) or routed_at >= self.now - self.ttl:
                return None
            return "left open by this gateway (its end could not be recorded)"
        if owner in self.gone:
            return f"its gateway {owner} stopped or went silent"
        if owner not in self.known and routed_at < self.now - self.ttl:
            return f"its gateway {owner} is not known to the instances table"
        return None


def read_owners(instances: GatewayInstances, ttl: timedelta, legacy_grace: timedelta, *,
                me: str | None = None,
                serving: Callable[[UUID], bool] = lambda _: False) -> Owners:
    """Blocking: reads the heartbeats, and when some look stale, again after the recheck."""
    now = datetime.now(UTC)
    first = instances.beats()
    second = first
    if any(b.stopped_at is None and b.heartbeat_at < now - ttl and i != me
           for i, b in first.items()):
        time.sleep(recheck_wait(ttl))
        second = instances.beats()
    return Owners(now, ttl, frozenset(second), gone_instances(first, second, now, ttl),
                  legacy_grace, me, serving)


def abandon(store: EventStore, save: Callable[[Inference], object],
            inference_ids: list[UUID], owners: Owners) -> int:
    """Closes each still-open inference whose owner is gone with Completed(abandoned);
    returns how many.

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
        first: Any = store.events_of(inference_id)[0]
        reason = owners.reason(inference_id, getattr(first, "instance_id", None),
                               first.timestamp)
        if reason is None:
            continue
        with audit_context(first.tenant_id, first.agent_id, request_id):
            inference.complete("abandoned", None, None, None, None)
        try:
            save(inference)
        except (WriteFailedError, StoreConflictError) as exc:
            log.info("inference %s was closed by its own process meanwhile: %s",
                     inference_id, exc)
            continue
        log.warning("closed inference %s as abandoned: %s", inference_id, reason)
        repaired += 1
    return repaired


def abandon_cutoff(grace: timedelta) -> datetime:
    return datetime.now(UTC) - grace


def sweep_abandoned(database: Database, store: EventStore, grace: timedelta,
                    ttl: timedelta = DEFAULT_TTL) -> int:
    """The same repair for a process that serves no calls (`ainfera project`)."""
    conn = database.connect()
    try:
        ids = open_inferences(Session(conn, database.kind), abandon_cutoff(CANDIDATE_AGE))
    finally:
        conn.close()
    if not ids:
        return 0
    owners = read_owners(GatewayInstances(database), ttl, grace)
    return abandon(store, lambda inference: store.save_events(inference.collect_events()), ids,
                   owners)


async def repair_abandoned(read_side: ReadSide, store: EventStore, writer: GroupCommitWriter,
                           owners: Callable[[], Owners]) -> int:
    """Closes the open inferences whose owner is gone (a gateway's own repair: at start and
    every sweep). `owners` is blocking (it may wait for a recheck): run off the loop."""
    latest = await asyncio.to_thread(store.max_notification_id)
    await read_side.wait_until(["agent_metrics"], latest, within=REPAIR_WAIT_S)
    ids = await read_side.read(lambda session: open_inferences(
        session, abandon_cutoff(CANDIDATE_AGE)))
    if not ids:
        return 0
    judged = await asyncio.to_thread(owners)
    return await asyncio.to_thread(abandon, store, writer.save_blocking, ids, judged)
