"""decisions: the routing decision of every inference, keyed by inference id.

`candidates` is the candidate list exactly as Routed recorded it (same order, same values) in
canonical JSON text (sorted keys, no whitespace), so a rebuild writes the same bytes.
`dashboard_candidates` collapses each candidate's eligibility into two fields for display:
`chosen` (it is the chosen model) and `excluded` (why it could not be chosen, or null). An
explicit `rejection_reason` wins over "ineligible", which wins over "below_floor".

A passthrough (router "direct") has a decision too: no candidates, the pinned model chosen.
Completed adds `served_model`, the model that delivered the answer: the chosen one, or the
fallback that answered instead (NULL until the call completes, when no upstream served it, and
for calls completed before Completed carried it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from domain.catalog import canonical_json
from projections.events import Completed, Routed, agent_of
from projections.fold import KeyedRows, ReadModel, Sequenced
from projections.view import Session

TABLE = "decisions"
COLUMNS = (
    "inference_id", "tenant_id", "agent_id", "api", "router", "requested_model", "alias_hit",
    "chosen_model", "policy", "ruleset_hash", "candidates", "dashboard_candidates", "created_at",
    "served_model", "requested_preference",
)
READ = (
    "SELECT api, router, requested_model, alias_hit, chosen_model, policy, ruleset_hash, "
    "candidates, dashboard_candidates, created_at, served_model, requested_preference "
    "FROM decisions WHERE inference_id = %s AND tenant_id = %s"
)
ROUTERS = "SELECT inference_id, router FROM decisions"


def fold(batch: Sequence[Sequenced]) -> KeyedRows:
    rows = KeyedRows(TABLE, "inference_id", COLUMNS)
    for item in batch:
        event = item.event
        match event:
            case Routed():
                candidates = list(event.candidates or [])
                chosen = event.chosen_model
                rows.create(
                    item.key, tenant_id=str(event.tenant_id),
                    agent_id=agent_of(event), api=event.api, router=event.router,
                    requested_model=event.requested_model, alias_hit=event.alias_hit,
                    chosen_model=chosen, policy=json_text(event.policy or {}),
                    ruleset_hash=event.ruleset_hash, candidates=json_text(candidates),
                    dashboard_candidates=json_text(dashboard_candidates(candidates, chosen)),
                    created_at=item.recorded_at,
                    requested_preference=event.requested_preference)
            case Completed():
                rows.set(item.key, served_model=event.served_model)
            case _:
                pass
    return rows


class Decisions(ReadModel):
    name = "decisions"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {TABLE: ("inference_id",)}

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        fold(batch).write(session)


def dashboard_candidates(candidates: Sequence[Mapping[str, Any]],
                         chosen_model: str | None) -> list[dict[str, Any]]:
    return [
        {
            "model": c.get("model"),
            "provider": c.get("provider"),
            "quality": c.get("quality"),
            "est_cost_usd": c.get("est_cost_usd"),
            "chosen": chosen_model is not None and c.get("model") == chosen_model,
            "excluded": excluded_because(c),
        }
        for c in candidates
    ]


def excluded_because(candidate: Mapping[str, Any]) -> str | None:
    reason = candidate.get("rejection_reason")
    if reason:
        return str(reason)
    if candidate.get("eligible") is False:
        return "ineligible"
    if candidate.get("cleared_floor") is False:
        return "below_floor"
    return None


def json_text(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


def read_decision(session: Session, tenant_id: str, inference_id: str) -> dict[str, Any] | None:
    """The decision of one of the tenant's inferences; None for unknown or another tenant's."""
    rows = session.execute(READ, (inference_id, tenant_id))
    if not rows:
        return None
    (api, router, requested, alias_hit, chosen, policy, ruleset_hash, candidates, dashboard,
     created_at, served_model, requested_preference) = rows[0]
    recorded_policy = json.loads(policy)
    return {
        "api": api,
        "router": router,
        "requested_model": requested,
        "alias_hit": alias_hit,
        "chosen": chosen,  # the router's choice (the pinned model for a passthrough)
        "served_model": served_model,  # who answered: `chosen`, or a fallback after it failed
        "policy": recorded_policy,
        "requested_preference": requested_preference,
        # The preference gate as this call saw it (also in `policy`, said here plainly).
        "preference_live": recorded_policy.get("preference_live"),
        "ruleset_hash": ruleset_hash,
        "candidates": json.loads(candidates),
        "dashboard_candidates": json.loads(dashboard),
        "routed_at": created_at,
    }


def routers_by_inference(session: Session) -> dict[str, str]:
    return {str(i): str(r) for i, r in session.execute(ROUTERS)}
