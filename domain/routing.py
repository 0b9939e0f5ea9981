"""The routing brain: which model serves a request, and the record of why.

`route` is a pure function of the request, the catalog and one switch (the preference gate),
so the same inputs give a byte-identical decision and `ruleset_hash`, and a recorded decision
can be re-derived. It must never do I/O, read the clock or randomness, or raise for a request the
gateway should record: a request no model may serve is a decision with no chosen model (recorded
as `rejected_floor`), not an exception. Only an unknown model (404, nothing recorded) and a
malformed hint (400) raise.

`ruleset_hash` is taken over what decides the route and nothing else: the catalog (the
candidate set), the effective floor and the ordering rule. What the client asked for and the
gate's state are recorded beside it (`requested_preference`, `policy.preference_live`), so a
preference that moved nothing leaves the hash and the `policy` object exactly as `balanced`
(or no preference at all) would.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from domain.catalog import PROTOCOLS, Catalog, Model, canonical_json, decimal_str
from domain.pricing import estimated_cost

ROUTER: Final = "ainfera-inference"
DIRECT: Final = "direct"
BALANCED: Final = "balanced"
# How far a live routing_preference moves the default floor, and the band it may move it within.
PREFERENCE_STEP: Final = {
    "quality": Decimal("0.10"),
    "cost": Decimal("-0.10"),
    BALANCED: Decimal(0),
}
PREFERENCE_FLOOR_BAND: Final = (Decimal("0.50"), Decimal("0.85"))
# How `route` orders the eligible candidates (see the sort key there). It is part of the
# ruleset hash, so changing the ordering must change this text.
ORDERING_RULE: Final = "est_cost_usd asc, quality desc, model asc"


@dataclass(frozen=True)
class RoutingHint:
    """Raw values from the request body: any JSON value may arrive, so both are `object`."""

    min_quality: object = None
    routing_preference: object = None


@dataclass(frozen=True)
class RouteRequest:
    """`needs`: capabilities besides tools the answer requires (`structured_output`,
    `thinking`: a model's `supports_*` flags); `untranslatable`: per provider kind, the request
    fields a backend of that kind would have to refuse (`domain.protocols.fates`)."""

    requested_model: str
    needs_tools: bool = False
    estimated_input_tokens: int = 0
    max_output_tokens: int = 0
    routing_hint: RoutingHint = field(default_factory=RoutingHint)
    needs: frozenset[str] = frozenset()
    untranslatable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("estimated_input_tokens", "max_output_tokens"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise InvalidRouteRequest(f"{name} must be a non-negative integer, not {value!r}")


@dataclass(frozen=True)
class Policy:
    """The policy in force, whatever the client sent: the effective floor, the preference that
    moved it (`balanced` when none did: the gate was off, an explicit min_quality won, or the
    band left no room), and the gate as this call saw it."""

    min_quality: Decimal
    routing_preference: str
    preference_live: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_quality": decimal_str(self.min_quality),
            "routing_preference": self.routing_preference,
            "preference_live": self.preference_live,
        }

    def ruleset(self) -> dict[str, Any]:
        """What of the policy decides a route: the floor and the ordering rule. The preference
        and the gate are left out on purpose: they act only through the floor."""
        return {"min_quality": decimal_str(self.min_quality), "ordering": ORDERING_RULE}


@dataclass(frozen=True)
class Candidate:
    """One catalog model as judged for one request. Every ineligible candidate has a reason:
    what it cannot do (`tools_unsupported`, `structured_output_unsupported`,
    `thinking_unsupported`, `not_translatable`: a field its protocol would refuse,
    `context_too_small`, `max_output_too_small`) or, when it can serve the request,
    `below_floor`."""

    model: str
    provider: str
    quality: Decimal
    est_cost_usd: Decimal
    eligible: bool
    cleared_floor: bool
    rejection_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "quality": decimal_str(self.quality),
            "est_cost_usd": decimal_str(self.est_cost_usd),
            "eligible": self.eligible,
            "cleared_floor": self.cleared_floor,
            "rejection_reason": self.rejection_reason,
        }


@dataclass(frozen=True)
class RoutingDecision:
    """`fallback` is the order to try models in: the chosen one first, then the other eligible
    ones; empty when the request was rejected, whose human-readable reason is `rejection`.
    `requested_preference` is what the client asked for (normalised: absent or unknown is
    `balanced`), whether or not it acted."""

    requested_model: str
    router: str
    alias_hit: str | None
    candidates: tuple[Candidate, ...]
    fallback: tuple[Model, ...]
    policy: Policy
    ruleset_hash: str
    rejection: str | None = None
    requested_preference: str = BALANCED
    # What the request needs that no model of the catalog supports (over its protocol): a
    # routed call that needs it cannot be served whatever the floor. Not recorded: it follows
    # from the catalog and the request.
    unsupported: tuple[str, ...] = ()

    @property
    def chosen(self) -> Model | None:
        return self.fallback[0] if self.fallback else None

    @property
    def chosen_model(self) -> str | None:
        return self.fallback[0].slug if self.fallback else None

    @property
    def rejected_floor(self) -> bool:
        return not self.fallback


def route(request: RouteRequest, catalog: Catalog, preference_live: bool) -> RoutingDecision:
    """Decides who serves the request: a catalog slug is passed through as pinned, a router
    name (canonical or legacy alias) gets the cheapest eligible model, anything else raises
    UnknownModel."""
    requested = request.requested_model
    pinned = catalog.model(requested)
    names = catalog.router
    if pinned is None and requested != names.canonical and requested not in names.aliases:
        raise UnknownModel(f"model {requested!r} is neither in the catalog nor a router name")
    asked = requested_preference(request.routing_hint)
    policy = effective_policy(request.routing_hint, names.default_min_quality, preference_live)
    ruleset = _ruleset_hash(catalog.canonical_json(), policy.min_quality)
    if pinned is not None:
        return RoutingDecision(requested, DIRECT, None, (), (pinned,), policy, ruleset,
                               requested_preference=asked)
    # The sort key is ORDERING_RULE: keep the two in step.
    judged = sorted(
        ((judge(model, request, policy.min_quality, catalog.provider_of(model).kind), model)
         for model in catalog.models),
        key=lambda pair: (pair[0].est_cost_usd, -pair[0].quality, pair[0].model),
    )
    fallback = tuple(model for candidate, model in judged if candidate.eligible)
    return RoutingDecision(
        requested_model=requested,
        router=ROUTER,
        alias_hit=None if requested == names.canonical else requested,
        candidates=tuple(candidate for candidate, _ in judged),
        fallback=fallback,
        policy=policy,
        ruleset_hash=ruleset,
        rejection=None if fallback else rejection_of(c for c, _ in judged),
        requested_preference=asked,
        unsupported=() if fallback else unsupported_by_all(request, catalog),
    )


@functools.lru_cache(maxsize=256)
def _ruleset_hash(catalog_json: bytes, min_quality: Decimal) -> str:
    """The hash over the catalog and the ruleset: the same few floors recur on every call,
    and hashing the whole catalog each time was a measurable share of routing. (A bytes
    object keeps its own hash, so the cache key costs nothing after the first call.)"""
    ruleset = Policy(min_quality, "balanced", False).ruleset()
    return "sha256:" + hashlib.sha256(catalog_json + canonical_json(ruleset)).hexdigest()


def needs_of(request: RouteRequest) -> list[str]:
    """The capabilities the request needs, tools first."""
    return (["tools"] if request.needs_tools else []) + sorted(request.needs - {"tools"})


def unmet_needs(model: Model, request: RouteRequest,
                protocol: str | None = None) -> tuple[str, ...]:
    """The capabilities the request needs that the model lacks over `protocol` (the one its
    provider speaks), tools first."""
    return tuple(need for need in needs_of(request) if not model.supports(need, protocol))


def unsupported_by_all(request: RouteRequest, catalog: Catalog) -> tuple[str, ...]:
    """The capabilities the request needs that no model of the catalog has over its protocol."""
    return tuple(need for need in needs_of(request)
                 if not any(m.supports(need, catalog.protocol_of(m)) for m in catalog.models))


def unsupported_code(capability: str) -> str:
    """The error code of a call needing `capability` of a backend that lacks it, pinned or
    routed alike: `tools_not_supported_by_backend`, `structured_output_not_...`."""
    return f"{capability}_not_supported_by_backend"


def judge(model: Model, request: RouteRequest, floor: Decimal, kind: str = "") -> Candidate:
    """Capability first, then the floor, so the reason says what would have to change.
    `kind` is the model's provider kind, which decides what its protocol can carry."""
    needed_context = request.estimated_input_tokens + request.max_output_tokens
    output_limit = model.max_output_tokens
    reason = None
    unmet = unmet_needs(model, request, PROTOCOLS.get(kind))
    if unmet:
        reason = f"{unmet[0]}_unsupported"
    elif request.untranslatable.get(kind):
        reason = "not_translatable"
    elif model.context_window is not None and needed_context > model.context_window:
        reason = "context_too_small"
    elif output_limit is not None and request.max_output_tokens > output_limit:
        reason = "max_output_too_small"
    cleared = model.quality >= floor
    if reason is None and not cleared:
        reason = "below_floor"
    return Candidate(
        model=model.slug,
        provider=model.provider,
        quality=model.quality,
        est_cost_usd=estimated_cost(
            model, request.estimated_input_tokens, request.max_output_tokens
        ),
        eligible=reason is None,
        cleared_floor=cleared,
        rejection_reason=reason,
    )


def rejection_of(candidates: Iterable[Candidate]) -> str:
    reasons = sorted({c.rejection_reason or "" for c in candidates})
    if reasons == ["below_floor"]:
        return "no model that can serve this request meets the quality floor"
    return "no model can serve this request: " + ", ".join(reasons)


def requested_preference(hint: RoutingHint) -> str:
    """The preference the client asked for, read case- and space-insensitively; absent or
    unknown values read as `balanced`, so they are recorded exactly as `balanced` is."""
    raw = hint.routing_preference
    preference = raw.strip().lower() if isinstance(raw, str) else BALANCED
    return preference if preference in PREFERENCE_STEP else BALANCED


def effective_policy(hint: RoutingHint, default_floor: Decimal, preference_live: bool) -> Policy:
    """An explicit min_quality always wins. Otherwise a live `quality` or `cost` preference
    moves the default floor by one step towards its aim, within the band, and never the
    other way: a default already outside the band stays put rather than being pulled back
    into it by a preference that asked for the opposite. Unknown preferences act as balanced.
    A preference that did not move the floor is inert, and the policy says `balanced`."""
    preference = requested_preference(hint)
    explicit = parse_min_quality(hint.min_quality)
    if explicit is not None:
        return Policy(explicit, BALANCED, preference_live)
    floor = default_floor
    step = PREFERENCE_STEP[preference] if preference_live else Decimal(0)
    low, high = PREFERENCE_FLOOR_BAND
    if step > 0:
        floor = max(default_floor, min(default_floor + step, high))
    elif step < 0:
        floor = min(default_floor, max(default_floor + step, low))
    return Policy(floor, preference if floor != default_floor else BALANCED, preference_live)


def parse_min_quality(raw: object) -> Decimal | None:
    """A JSON number or a decimal string from 0 to 1; None when absent."""
    if raw is None:
        return None
    if isinstance(raw, float):
        raw = repr(raw)  # JSON's 0.7 arrives as a float: its shortest spelling is what was sent
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidRoutingHint(f"min_quality must be a number from 0 to 1, not {raw!r}")
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        raise InvalidRoutingHint(f"min_quality must be a number from 0 to 1, not {raw!r}") from None
    if not value.is_finite() or not 0 <= value <= 1:
        raise InvalidRoutingHint(f"min_quality must be a number from 0 to 1, not {raw!r}")
    return value


def decision_to_routed_fields(decision: RoutingDecision) -> dict[str, Any]:
    """Exactly the routing keyword arguments of `Inference(...)` (the Routed event)."""
    return {
        "router": decision.router,
        "alias_hit": decision.alias_hit,
        "candidates": [candidate.as_dict() for candidate in decision.candidates],
        "chosen_model": decision.chosen_model,
        "policy": decision.policy.as_dict(),
        "ruleset_hash": decision.ruleset_hash,
        "requested_preference": decision.requested_preference,
    }


class RoutingError(Exception):
    """Base of the routing rules' errors."""


class UnknownModel(RoutingError):
    """The requested model is neither a catalog slug nor a router name (answer 404)."""


class InvalidRoutingHint(RoutingError):
    """A routing hint the client sent that cannot be honoured as written (answer 400)."""


class InvalidRouteRequest(RoutingError):
    """A request whose token counts cannot be right; a gateway bug more than a client's."""
