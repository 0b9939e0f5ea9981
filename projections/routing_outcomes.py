"""routing_outcomes: one row per routed inference (router "ainfera-inference"), keyed by
inference id. Routed creates the row; Completed fills in the outcome, latency and the model
that served the call (`served_model`, which differs from `chosen_model` after a fallback);
Debited the cost (whole nano-dollars, rounded up: domain.money). A passthrough (router
"direct") never gets a row: no routing decision was made for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from domain.money import to_nanos
from domain.routing import ROUTER
from projections.events import Completed, Debited, Routed, agent_of
from projections.fold import KeyedRows, ReadModel, Sequenced
from projections.view import Session, text_or_none

TABLE = "routing_outcomes"
COLUMNS = (
    "inference_id", "tenant_id", "agent_id", "api", "requested_model", "alias_hit",
    "chosen_model", "min_quality", "routing_preference", "ruleset_hash", "outcome_status",
    "observed_latency_ms", "cost_nano_usd", "created_at", "completed_at", "served_model",
    "requested_preference",
)
COUNT_STATUS_SINCE = (
    "SELECT COUNT(*) FROM routing_outcomes "
    "WHERE tenant_id = %s AND outcome_status = %s AND completed_at > %s AND completed_at <= %s"
)
IDS = "SELECT inference_id FROM routing_outcomes"
LATENCIES_SINCE = (
    "SELECT observed_latency_ms FROM routing_outcomes WHERE tenant_id = %s "
    "AND completed_at > %s AND completed_at <= %s AND observed_latency_ms IS NOT NULL "
    "ORDER BY observed_latency_ms"
)


def fold(batch: Sequence[Sequenced]) -> KeyedRows:
    rows = KeyedRows(TABLE, "inference_id", COLUMNS)
    for item in batch:
        event = item.event
        match event:
            case Routed() if event.router == ROUTER:
                policy = event.policy or {}
                rows.create(
                    item.key, tenant_id=str(event.tenant_id),
                    agent_id=agent_of(event), api=event.api,
                    requested_model=event.requested_model, alias_hit=event.alias_hit,
                    chosen_model=event.chosen_model,
                    min_quality=text_or_none(policy.get("min_quality")),
                    routing_preference=text_or_none(policy.get("routing_preference")),
                    requested_preference=event.requested_preference,
                    ruleset_hash=event.ruleset_hash, created_at=item.recorded_at)
            case Routed():
                rows.skip(item.key)  # a passthrough: no row, now or later
            case Completed():
                # An UPDATE of no row for a passthrough routed earlier: that is the rule.
                rows.set(item.key, outcome_status=event.status,
                         observed_latency_ms=event.latency_ms,
                         completed_at=item.recorded_at,
                         served_model=event.served_model)
            case Debited():
                rows.set(item.key, cost_nano_usd=to_nanos(event.cost_usd, "up"))
            case _:
                pass
    return rows


class RoutingOutcomes(ReadModel):
    name = "routing_outcomes"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {TABLE: ("inference_id",)}

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        fold(batch).write(session)


def count_status_since(session: Session, tenant_id: str, status: str, since: str,
                       until: str) -> int:
    """Routed calls of a tenant completed with `status` in (since, until]."""
    rows = session.execute(COUNT_STATUS_SINCE, (tenant_id, status, since, until))
    return int(rows[0][0])


def latencies_since(session: Session, tenant_id: str, since: str, until: str) -> list[int]:
    """Observed latencies (ms, ascending) of a tenant's routed calls completed in
    (since, until]: a passthrough has no row here, so it never counts."""
    return [int(row[0]) for row in session.execute(LATENCIES_SINCE, (tenant_id, since, until))]


def all_ids(session: Session) -> set[str]:
    return {str(row[0]) for row in session.execute(IDS)}
