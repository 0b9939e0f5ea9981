"""The read side's answers (inference events, decisions, receipts, the ledger, dashboards,
models, health) as msgspec structs, for the OpenAPI document only; the handlers build plain
dicts and a test validates them against the document.

Money is always a decimal string in US dollars (never a float, never an exponent); times are
ISO 8601 UTC ending in `Z`; hashes are standard base64.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

Usd = Annotated[str, Meta(pattern=r"^-?\d+(\.\d+)?$", description="US dollars, a plain decimal",
                          examples=["0.00004"])]
UtcTime = Annotated[str, Meta(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$",
                              examples=["2026-11-29T08:28:42.360123Z"])]
Base64 = Annotated[str, Meta(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
PublicId = Annotated[str, Meta(pattern=r"^(msg_|chatcmpl-)[0-9a-f]{32}$",
                               examples=["msg_35d298869b9f4bee8174ef4d13a9d99f"])]


class LedgerEvent(Struct):
    """One event as recorded; its own fields (Routed's candidates, Completed's usage, ...)
    follow these, named as in docs/gateway.md."""

    type: Literal["Routed", "Dispatched", "Streamed", "Completed", "Debited"]
    version: int
    recorded_at: UtcTime
    tenant_id: str | None
    agent_id: str | None
    request_id: str | None


class InferenceEvents(Struct):
    id: PublicId
    object: Literal["inference"]
    events: list[LedgerEvent]


class Candidate(Struct):
    model: str
    provider: str
    quality: str
    est_cost_usd: Usd
    eligible: bool
    cleared_floor: bool
    rejection_reason: str | None


class DashboardCandidate(Struct):
    model: str
    provider: str
    quality: str
    est_cost_usd: Usd
    chosen: bool
    excluded: str | None


class Decision(Struct):
    id: PublicId
    object: Literal["inference.decision"]
    api: Literal["messages", "chat.completions"]
    router: Literal["ainfera-inference", "direct"]
    requested_model: str
    alias_hit: str | None
    chosen: Annotated[str | None, Meta(description="The router's choice (the pinned model for a "
                                                   "passthrough); null when none could serve")]
    served_model: Annotated[str | None, Meta(
        description="The model whose answer the client got: `chosen`, or the fallback that "
                    "answered after it failed; null while open, when no upstream served the "
                    "call, and for calls recorded before Completed carried it")]
    policy: Annotated[dict[str, Any], Meta(
        description="The policy in force: min_quality (the effective floor), "
                    "routing_preference (the one that moved it, else balanced), preference_live "
                    "(the gate as the call saw it)")]
    requested_preference: Annotated[str | None, Meta(
        description="What the client asked for (absent or unknown reads as balanced); null for "
                    "calls recorded before Routed carried it")]
    preference_live: Annotated[bool | None, Meta(
        description="The preference gate as this call saw it (= policy.preference_live)")]
    ruleset_hash: Annotated[str, Meta(
        description="sha256 over the catalog, the effective floor and the ordering rule")]
    candidates: list[Candidate]
    dashboard_candidates: list[DashboardCandidate]
    routed_at: UtcTime


class ReceiptEntry(Struct):
    leaf_index: int
    event: Annotated[dict[str, Any], Meta(description="The event object the leaf hashes: "
                                                      "SHA-256(0x00 || JCS(event)).")]
    leaf_hash: Base64
    prev_chain_hash: Base64
    chain_hash: Base64
    inclusion_proof: list[Base64]


class Consistency(Struct):
    from_checkpoint: str
    proof: list[Base64]


class Receipt(Struct):
    """Verify it offline: `ainfera receipt verify FILE --vkey VKEY` (docs/compliance.md)."""

    format: Literal["ainfera-receipt/v1"]
    inference_id: PublicId
    origin: str
    checkpoint: Annotated[str, Meta(description="The signed checkpoint, C2SP signed-note text.")]
    entries: list[ReceiptEntry]
    consistency: Consistency | UnsetType = UNSET


class TlogProof(Struct):
    leaf_index: int
    tlog_proof: str


class TlogProofs(Struct):
    inference_id: PublicId
    proofs: list[TlogProof]


class ReceiptPending(Struct):
    """202: an event is not yet inside a signed checkpoint; retry after `retry-after`."""

    status: Literal["pending"]
    inference_id: PublicId
    detail: str


class ConsistencyProof(Struct):
    first: int
    second: int
    proof: list[Base64]


class PublicKey(Struct):
    vkey: Annotated[str, Meta(description="C2SP note verifier key: name+hex id+base64 key",
                              examples=["ainfera.local/ledger+8c9006ce+AcK48Phbqgf..."])]


class StatusCounts(Struct):
    ok: int
    fallback: Annotated[int, Meta(description="A subset of ok: served after a fallback.")]
    error: int


class UsageDay(Struct):
    date: Annotated[str, Meta(pattern=r"^\d{4}-\d\d-\d\d$")]
    calls: int
    cost_usd: Usd
    by_status: StatusCounts


class UsageTotals(Struct):
    calls: int
    cost_usd: Usd
    by_status: StatusCounts


class UsageDaily(Struct):
    days: Annotated[list[UsageDay], Meta(description="The UTC dates of the window that had "
                                                     "calls, oldest first ([] for none); with "
                                                     "fill=zero every date of the window, "
                                                     "zeros included.")]
    totals: UsageTotals


class LiveSpend(Struct):
    counters: Literal["ok", "unavailable"]
    settled_usd: Usd | None
    reserved_usd: Usd | None


class Budget(Struct):
    set: Usd
    used_usd: Usd
    counters: Literal["ok", "unavailable"]
    settled_usd: Usd | None
    reserved_usd: Usd | None


class Breaches(Struct):
    quality: int
    reliability: int


class CapsRollup(Struct):
    agents: int
    policies_set: int
    budget: Budget
    latency_p50_ms: Annotated[int | None, Meta(
        description="Median latency of the tenant's routed calls (routing_outcomes) completed "
                    "in the last 24 h; null when there were none")]
    breaches: Breaches
    window_hours: int
    as_of: UtcTime


class AgentMetrics(Struct):
    agent_id: str
    window_hours: int
    as_of: UtcTime
    calls: int
    cost_usd: Usd
    error_rate: float
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    spend_today: LiveSpend


class AnthropicModel(Struct):
    type: Literal["model"]
    id: str
    display_name: str
    created_at: str


class AnthropicModelList(Struct):
    """With an `anthropic-version` header (the Anthropic SDK sends it)."""

    data: list[AnthropicModel]
    has_more: bool
    first_id: str | None
    last_id: str | None


class OpenAIModel(Struct):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class OpenAIModelList(Struct):
    """Without an `anthropic-version` header."""

    object: Literal["list"]
    data: list[OpenAIModel]


class Health(Struct):
    status: Literal["ok"]


class Readiness(Struct):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]
