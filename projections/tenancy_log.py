"""A tenant's tenancy changes as the ledger holds them: TenantCreated, AgentRegistered,
SpendPolicySet, KeyIssued and KeyRevoked leaves of `ledger_entries`, with the exact event
object each leaf hashes. Read-only.

Why the ledger's leaves and not a projection of their own: the admin audit trail must be what
is on the hash chain, byte for byte (each row comes with its leaf index, so it can be proven
against a signed checkpoint), and the key list is a fold of the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from projections.view import Session

TENANCY_EVENTS: Final = (
    "TenantCreated", "AgentRegistered", "SpendPolicySet", "KeyIssued", "KeyRevoked",
)
KEY_EVENTS: Final = ("KeyIssued", "KeyRevoked")

_SELECT = (
    "SELECT leaf_index, event_json FROM ledger_entries WHERE tenant_id = %s AND event_type IN "
)


@dataclass(frozen=True, slots=True)
class TenancyLeaf:
    leaf_index: int
    event: dict[str, Any]


def tenancy_leaves(session: Session, tenant_id: str, *, limit: int,
                   before: int | None = None) -> list[TenancyLeaf]:
    """The tenant's tenancy events, newest first, below leaf `before` when given."""
    sql = _SELECT + f"({', '.join(['%s'] * len(TENANCY_EVENTS))})"
    params: list[Any] = [tenant_id, *TENANCY_EVENTS]
    if before is not None:
        sql += " AND leaf_index < %s"
        params.append(before)
    sql += " ORDER BY leaf_index DESC LIMIT %s"
    params.append(limit)
    return [_leaf(row) for row in session.execute(sql, tuple(params))]


def key_leaves(session: Session, tenant_id: str) -> list[TenancyLeaf]:
    """Every KeyIssued and KeyRevoked event of the tenant, oldest first."""
    sql = _SELECT + "(%s, %s) ORDER BY leaf_index"
    return [_leaf(row) for row in session.execute(sql, (tenant_id, *KEY_EVENTS))]


def _leaf(row: tuple[Any, ...]) -> TenancyLeaf:
    return TenancyLeaf(int(row[0]), json.loads(row[1]) if row[1] is not None else {})
