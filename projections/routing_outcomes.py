"""routing_outcomes: one row per routed inference (router "ainfera-inference"), keyed by
inference id. Routed creates the row; Completed fills in the outcome and latency; Debited the
cost. A passthrough (router "direct") never gets a row: no routing decision was made for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking

from domain.routing import ROUTER
from projections.events import Completed, Debited, Routed, agent_of, inference_key
from projections.view import Session, SqlProjection, text_or_none, utc_text

INSERT = (
    "INSERT INTO routing_outcomes (inference_id, tenant_id, agent_id, api, requested_model, "
    "alias_hit, chosen_model, min_quality, routing_preference, ruleset_hash, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
COMPLETE = (
    "UPDATE routing_outcomes SET outcome_status = %s, observed_latency_ms = %s, "
    "completed_at = %s WHERE inference_id = %s"
)
DEBIT = "UPDATE routing_outcomes SET cost_usd = %s WHERE inference_id = %s"
COUNT_STATUS_SINCE = (
    "SELECT COUNT(*) FROM routing_outcomes "
    "WHERE tenant_id = %s AND outcome_status = %s AND completed_at > %s AND completed_at <= %s"
)
IDS = "SELECT inference_id FROM routing_outcomes"


class RoutingOutcomes(SqlProjection):
    name = "routing_outcomes"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"routing_outcomes": ("inference_id",)}

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.transaction() as tx:
            match domain_event:
                case Routed() if domain_event.router == ROUTER:
                    policy = domain_event.policy or {}
                    tx.execute(INSERT, (
                        inference_key(domain_event), str(domain_event.tenant_id),
                        agent_of(domain_event), domain_event.api,
                        domain_event.requested_model, domain_event.alias_hit,
                        domain_event.chosen_model, text_or_none(policy.get("min_quality")),
                        text_or_none(policy.get("routing_preference")),
                        domain_event.ruleset_hash, utc_text(domain_event.timestamp),
                    ))
                case Completed():
                    # Zero rows for a passthrough, which has none: that is the rule, not a miss.
                    tx.execute(COMPLETE, (
                        domain_event.status, domain_event.latency_ms,
                        utc_text(domain_event.timestamp), inference_key(domain_event),
                    ))
                case Debited():
                    tx.execute(DEBIT, (domain_event.cost_usd, inference_key(domain_event)))
                case _:
                    pass  # every other event is ignored, and still moves the position
            self.view.track(tracking)


def count_status_since(session: Session, tenant_id: str, status: str, since: str,
                       until: str) -> int:
    """Routed calls of a tenant completed with `status` in (since, until]."""
    rows = session.execute(COUNT_STATUS_SINCE, (tenant_id, status, since, until))
    return int(rows[0][0])


def all_ids(session: Session) -> set[str]:
    return {str(row[0]) for row in session.execute(IDS)}
