"""Reading a tenant's inferences back as a list: filters and keyset pagination over the read
models (`agent_metrics` for the outcome, `decisions` for the surface and models, `agents` for
names). Read-only: no projection writes here.

Order is newest first by the Routed time, ties broken by inference id, so a cursor (the last
row's (created_at, inference_id)) pages through a list that new calls keep growing without
skipping or repeating a row. An inference shows once both projections it joins have it (they
trail the ledger by milliseconds; a consistent read waits for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.view import Session

IN_FLIGHT = "in_flight"
"""The status filter for calls that have no Completed event yet."""

_SELECT = (
    "SELECT m.inference_id, d.api, m.agent_id, a.name, m.router, d.requested_model, "
    "d.chosen_model, d.alias_hit, m.status, m.latency_ms, m.cost_nano_usd, m.created_at, "
    "m.completed_at FROM agent_metrics m "
    "JOIN decisions d ON d.inference_id = m.inference_id "
    "LEFT JOIN agents a ON a.agent_id = m.agent_id "
    "WHERE m.tenant_id = %s"
)


@dataclass(frozen=True, slots=True)
class InferenceFilter:
    """What to list; every field narrows the list, None means any. `until` is exclusive."""

    tenant_id: str
    agent_id: str | None = None
    statuses: Sequence[str] = field(default=())
    model: str | None = None
    router: str | None = None
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True, slots=True)
class InferenceRow:
    inference_id: str
    api: str
    agent_id: str
    agent_name: str | None
    router: str
    requested_model: str
    chosen_model: str | None
    alias_hit: str | None
    status: str | None
    latency_ms: int | None
    cost_nano_usd: int | None
    created_at: str
    completed_at: str | None


def list_inferences(session: Session, where: InferenceFilter, limit: int,
                    after: tuple[str, str] | None = None) -> list[InferenceRow]:
    """Up to `limit` rows matching `where`, newest first, strictly after the cursor `after`
    ((created_at, inference_id) of the last row of the previous page)."""
    sql = [_SELECT]
    params: list[Any] = [where.tenant_id]
    if where.agent_id is not None:
        sql.append("AND m.agent_id = %s")
        params.append(where.agent_id)
    if where.statuses:
        named = [s for s in where.statuses if s != IN_FLIGHT]
        terms = []
        if named:
            terms.append(f"m.status IN ({', '.join(['%s'] * len(named))})")
            params.extend(named)
        if IN_FLIGHT in where.statuses:
            terms.append("m.status IS NULL")
        sql.append(f"AND ({' OR '.join(terms)})")
    if where.model is not None:
        sql.append("AND (d.requested_model = %s OR d.chosen_model = %s)")
        params.extend([where.model, where.model])
    if where.router is not None:
        sql.append("AND m.router = %s")
        params.append(where.router)
    if where.since is not None:
        sql.append("AND m.created_at >= %s")
        params.append(where.since)
    if where.until is not None:
        sql.append("AND m.created_at < %s")
        params.append(where.until)
    if after is not None:
        sql.append("AND (m.created_at < %s OR (m.created_at = %s AND m.inference_id < %s))")
        params.extend([after[0], after[0], after[1]])
    sql.append("ORDER BY m.created_at DESC, m.inference_id DESC LIMIT %s")
    params.append(limit)
    return [
        InferenceRow(str(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]),
                     str(r[4]), str(r[5]), r[6], r[7], r[8],
                     None if r[9] is None else int(r[9]), None if r[10] is None else int(r[10]),
                     str(r[11]), r[12])
        for r in session.execute(" ".join(sql), tuple(params))
    ]
