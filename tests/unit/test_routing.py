"""The routing brain: names, capability filters, the quality floor, ties, rejection, what the
ruleset hash covers (and what it must not), and a lock on the exact bytes a balanced decision
records."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest

from domain.catalog import Catalog, canonical_json, catalog_from_dict
from domain.context import audit_context
from domain.inference import Inference
from domain.pricing import InvalidUsage, estimate_input_tokens
from domain.routing import (
    ORDERING_RULE,
    InvalidRouteRequest,
    InvalidRoutingHint,
    RouteRequest,
    RoutingDecision,
    RoutingHint,
    UnknownModel,
    decision_to_routed_fields,
    route,
    unsupported_code,
)

CANDIDATE_KEYS = {"model", "provider", "quality", "est_cost_usd", "eligible", "cleared_floor"}
CANDIDATE_KEYS |= {"rejection_reason"}


def model(slug: str, provider: str, quality: str, prices: str, **extra: Any) -> dict[str, Any]:
    input_price, output_price = prices.split()
    return {
        "slug": slug,
        "provider": provider,
        "upstream_model": f"{slug}-upstream",
        "quality": quality,
        "input_usd_per_mtok": input_price,
        "output_usd_per_mtok": output_price,
        "supports_tools": True,
    } | extra


def catalog(floor: str = "0.50", models: list[dict[str, Any]] | None = None) -> Catalog:
    return catalog_from_dict(
        {
            "providers": {
                "p1": {"kind": "anthropic", "base_url": "https://p1.test", "api_key_env": "P1"},
                "p2": {"kind": "openai", "base_url": "https://p2.test", "api_key_env": "P2"},
            },
            "models": models
            or [
                model("cheap", "p2", "0.55", "0.10 0.40", supports_tools=False),
                model("mid", "p2", "0.70", "1.00 4.00", context_window=10_000),
                model("good", "p1", "0.80", "3.00 15.00"),
                model("best", "p1", "0.90", "15.00 75.00", max_output_tokens=4096),
            ],
            "router": {"default_min_quality": floor},
        }
    )


def ask(
    model_name: str = "ainfera-inference",
    *,
    tools: bool = False,
    tokens: tuple[int, int] = (1000, 1000),
    min_quality: object = None,
    preference: object = None,
    live: bool = False,
    floor: str = "0.50",
) -> RoutingDecision:
    request = RouteRequest(
        model_name, tools, tokens[0], tokens[1], RoutingHint(min_quality, preference)
    )
    return route(request, catalog(floor), preference_live=live)


def reasons(decision: RoutingDecision) -> dict[str, str | None]:
    return {c.model: c.rejection_reason for c in decision.candidates}


def test_the_canonical_name_routes_to_the_cheapest_eligible_model() -> None:
    decision = ask()
    assert decision.router == "ainfera-inference"
    assert decision.alias_hit is None
    assert decision.chosen_model == "cheap"
    assert [m.slug for m in decision.fallback] == ["cheap", "mid", "good", "best"]
    assert decision.chosen is decision.fallback[0]
    assert not decision.rejected_floor
    assert decision.rejection is None
    costs = [Decimal("0.0005"), Decimal("0.005"), Decimal("0.018"), Decimal("0.09")]
    assert [c.est_cost_usd for c in decision.candidates] == costs


@pytest.mark.parametrize("alias", ["ainfera-mithril", "ainfera-auto", "ainfera/auto"])
def test_every_legacy_alias_routes_and_is_recorded(alias: str) -> None:
    decision = ask(alias)
    assert decision.router == "ainfera-inference"
    assert decision.alias_hit == alias
    assert decision.chosen_model == "cheap"
    assert decision.ruleset_hash == ask().ruleset_hash


def test_candidates_are_every_model_with_exactly_the_contract_keys() -> None:
    fields = decision_to_routed_fields(ask())
    assert [c["model"] for c in fields["candidates"]] == ["cheap", "mid", "good", "best"]
    assert all(set(c) == CANDIDATE_KEYS for c in fields["candidates"])
    assert fields["candidates"][0] == {
        "model": "cheap",
        "provider": "p2",
        "quality": "0.55",
        "est_cost_usd": "0.0005",
        "eligible": True,
        "cleared_floor": True,
        "rejection_reason": None,
    }
    assert fields["policy"] == {
        "min_quality": "0.5", "routing_preference": "balanced", "preference_live": False}


def test_a_catalog_slug_is_a_pinned_passthrough_that_still_records_the_policy() -> None:
    decision = ask("best", tools=True, tokens=(50_000, 9000), preference="quality", live=True)
    assert (decision.router, decision.alias_hit, decision.chosen_model) == ("direct", None, "best")
    assert decision.candidates == ()
    assert [m.slug for m in decision.fallback] == ["best"]
    fields = decision_to_routed_fields(decision)
    assert fields["candidates"] == []
    assert fields["policy"] == {
        "min_quality": "0.6", "routing_preference": "quality", "preference_live": True}


def test_an_unknown_model_raises() -> None:
    with pytest.raises(UnknownModel, match="'claude-3' is neither in the catalog"):
        ask("claude-3")


def test_tools_exclude_models_without_them() -> None:
    decision = ask(tools=True)
    assert decision.chosen_model == "mid"
    assert reasons(decision)["cheap"] == "tools_unsupported"
    assert decision.candidates[0].cleared_floor is True
    assert decision.candidates[0].eligible is False


def test_context_window_and_max_output_limits_exclude_models() -> None:
    decision = ask(tokens=(9500, 5000))
    assert reasons(decision) == {
        "cheap": None, "mid": "context_too_small", "good": None, "best": "max_output_too_small"}
    assert [m.slug for m in decision.fallback] == ["cheap", "good"]


@pytest.mark.parametrize(
    ("floor", "preference", "live", "effective", "in_force", "chosen"),
    [
        ("0.50", "quality", True, "0.6", "quality", "mid"),
        # Cannot go under the band's 0.50: the preference moved nothing, so none is in force.
        ("0.50", "cost", True, "0.5", "balanced", "cheap"),
        ("0.80", "quality", True, "0.85", "quality", "best"),  # 0.90 clamped to the band's 0.85
        ("0.80", "cost", True, "0.7", "cost", "mid"),
        ("0.50", "quality", False, "0.5", "balanced", "cheap"),  # gate off: requested, inert
        ("0.80", "cost", False, "0.8", "balanced", "good"),
        # A default outside the band is never moved against the preference's aim.
        ("0.90", "quality", True, "0.9", "balanced", "best"),
        ("0.45", "cost", True, "0.45", "balanced", "cheap"),
        ("0.45", "quality", True, "0.55", "quality", "cheap"),
    ],
)
def test_a_live_preference_moves_the_default_floor_within_the_band(
    floor: str, preference: str, live: bool, effective: str, in_force: str, chosen: str
) -> None:
    decision = ask(preference=preference, live=live, floor=floor)
    assert decision.policy.as_dict() == {
        "min_quality": effective, "routing_preference": in_force, "preference_live": live}
    assert decision.requested_preference == preference
    assert decision.chosen_model == chosen


def test_candidates_below_the_floor_say_so() -> None:
    decision = ask(preference="quality", live=True)
    cheap = decision.candidates[0]
    assert cheap.model == "cheap"
    assert (cheap.eligible, cheap.cleared_floor, cheap.rejection_reason) == (
        False, False, "below_floor")


@pytest.mark.parametrize(
    ("given", "recorded", "chosen"),
    [("0.75", "0.75", "good"), (0.7, "0.7", "mid"), (" 0.6 ", "0.6", "mid"), (0, "0", "cheap")],
)
def test_an_explicit_min_quality_always_wins(given: object, recorded: str, chosen: str) -> None:
    for live in (True, False):
        decision = ask(min_quality=given, preference="cost", live=live, floor="0.80")
        assert decision.policy.min_quality == Decimal(recorded)
        assert decision.policy.as_dict()["min_quality"] == recorded
        assert decision.policy.routing_preference == "balanced"  # the preference was inert
        assert decision.requested_preference == "cost"
        assert decision.chosen_model == chosen


@pytest.mark.parametrize("preference", [None, "fastest", "", 3, ["quality"]])
def test_an_absent_or_unknown_preference_acts_as_balanced(preference: object) -> None:
    decision = ask(preference=preference, live=True)
    assert decision.policy.routing_preference == "balanced"
    assert decision.requested_preference == "balanced"
    assert decision.policy.min_quality == Decimal("0.50")


def test_a_preference_is_read_case_and_space_insensitively() -> None:
    decision = ask(preference=" Quality ", live=True)
    assert (decision.policy.routing_preference, decision.requested_preference) == (
        "quality", "quality")


@pytest.mark.parametrize("hint", ["abc", "", "1.5", -0.1, 2, "NaN", "Infinity", True, [0.5], {}])
def test_an_invalid_min_quality_raises(hint: object) -> None:
    with pytest.raises(InvalidRoutingHint, match="min_quality must be a number from 0 to 1"):
        ask(min_quality=hint)


def test_equal_costs_prefer_higher_quality_then_slug() -> None:
    tied = [
        model("zeta", "p1", "0.70", "1.00 2.00"),
        model("beta", "p2", "0.70", "1.00 2.00"),
        model("alpha", "p1", "0.60", "1.00 2.00"),
        model("omega", "p1", "0.99", "1.00 2.01"),
    ]
    request = RouteRequest("ainfera-inference", False, 100, 100)
    decision = route(request, catalog(models=tied), preference_live=False)
    assert [m.slug for m in decision.fallback] == ["beta", "zeta", "alpha", "omega"]


def test_no_model_above_the_floor_is_a_rejection_not_an_error() -> None:
    decision = ask(min_quality="0.95")
    assert decision.chosen_model is None
    assert decision.chosen is None
    assert decision.rejected_floor
    assert decision.fallback == ()
    assert decision.rejection == "no model that can serve this request meets the quality floor"
    assert all(c.rejection_reason == "below_floor" for c in decision.candidates)
    assert decision_to_routed_fields(decision)["chosen_model"] is None


def test_no_capable_model_is_a_rejection_naming_the_reasons() -> None:
    models = [
        model("cheap", "p2", "0.55", "0.10 0.40", supports_tools=False),
        model("best", "p1", "0.90", "15.00 75.00", max_output_tokens=4096),
    ]
    request = RouteRequest("ainfera-inference", True, 100, 5000)
    decision = route(request, catalog(models=models), preference_live=False)
    assert decision.rejected_floor
    assert decision.chosen_model is None
    assert decision.rejection == (
        "no model can serve this request: max_output_too_small, tools_unsupported")


def test_the_ruleset_hash_is_over_the_catalog_the_effective_floor_and_the_ordering() -> None:
    decision = ask(preference="quality", live=True)
    rules = b'{"min_quality":"0.6","ordering":"' + ORDERING_RULE.encode() + b'"}'
    digest = hashlib.sha256(catalog().canonical_json() + rules).hexdigest()
    assert decision.ruleset_hash == f"sha256:{digest}"
    assert ORDERING_RULE == "est_cost_usd asc, quality desc, model asc"


def test_the_hash_moves_when_the_floor_or_the_catalog_does() -> None:
    assert ask(tools=True) == ask(tools=True)
    assert ask().ruleset_hash.startswith("sha256:")
    assert len(ask().ruleset_hash) == len("sha256:") + 64
    hashes = {
        ask().ruleset_hash,
        ask(min_quality="0.6").ruleset_hash,
        ask(preference="quality", live=True).ruleset_hash,  # floor 0.6 by the preference
        ask(floor="0.6").ruleset_hash,  # floor 0.6 again, but from another catalog
    }
    assert len(hashes) == 3
    assert ask(min_quality="0.6").ruleset_hash == ask(preference="quality", live=True).ruleset_hash
    # The request's own needs are the decision, not the ruleset.
    assert ask(tools=True, tokens=(5, 5)).ruleset_hash == ask().ruleset_hash


def recorded_policy(decision: RoutingDecision) -> tuple[dict[str, Any], str]:
    fields = decision_to_routed_fields(decision)
    return fields["policy"], fields["ruleset_hash"]


@pytest.mark.parametrize("live", [False, True])
def test_balanced_records_exactly_what_no_preference_records(live: bool) -> None:
    for name in ("ainfera-inference", "good"):
        plain = decision_to_routed_fields(ask(name, live=live))
        balanced = decision_to_routed_fields(ask(name, preference="balanced", live=live))
        assert canonical_json(plain) == canonical_json(balanced)


def test_the_gate_alone_never_moves_the_hash() -> None:
    assert ask(live=True).ruleset_hash == ask(live=False).ruleset_hash
    assert ask(preference="balanced", live=True).ruleset_hash == ask().ruleset_hash
    # The gate is still recorded: it is what the call saw.
    assert ask(live=True).policy.preference_live is True


@pytest.mark.parametrize(
    ("preference", "live", "floor", "min_quality"),
    [
        ("quality", False, "0.50", None),  # gate off
        ("cost", False, "0.80", None),
        ("quality", True, "0.50", "0.5"),  # an explicit floor wins
        ("quality", True, "0.90", None),  # the band leaves no room upwards
        ("cost", True, "0.50", None),  # ... nor downwards
    ],
)
def test_an_inert_preference_changes_nothing_recorded_about_the_policy(
    preference: str, live: bool, floor: str, min_quality: str | None
) -> None:
    inert = ask(preference=preference, live=live, floor=floor, min_quality=min_quality)
    balanced = ask(live=live, floor=floor, min_quality=min_quality)
    assert recorded_policy(inert) == recorded_policy(balanced)
    assert inert.fallback == balanced.fallback
    # What the client asked for is recorded, beside the policy rather than in it.
    assert decision_to_routed_fields(inert)["requested_preference"] == preference


def test_the_routed_fields_are_exactly_what_the_inference_aggregate_takes() -> None:
    decision = ask("ainfera-auto", tools=True)
    fields = decision_to_routed_fields(decision)
    assert set(fields) == {
        "router", "alias_hit", "candidates", "chosen_model", "policy", "ruleset_hash",
        "requested_preference"}
    with audit_context("t", "a", "r"):
        inference = Inference(
            api="messages",
            requested_model="ainfera-auto",
            stream=False,
            tools=1,
            request_digest="d",
            **fields,
        )
    assert inference.router == "ainfera-inference"
    assert inference.alias_hit == "ainfera-auto"
    assert inference.chosen_model == "mid"
    assert inference.candidates == fields["candidates"]
    assert inference.requested_preference == "balanced"


@pytest.mark.parametrize(("size", "tokens"), [(0, 0), (1, 1), (3, 1), (4, 2), (3000, 1000)])
def test_the_input_estimate_is_a_third_of_the_length_rounded_up(size: int, tokens: int) -> None:
    assert estimate_input_tokens(size) == tokens
    assert estimate_input_tokens("x" * size) == tokens
    assert estimate_input_tokens(b"x" * size) == tokens


def test_the_input_estimate_counts_utf8_bytes_when_given_bytes() -> None:
    assert estimate_input_tokens("ééé") == 1
    assert estimate_input_tokens("ééé".encode()) == 2


@pytest.mark.parametrize("size", [-1, True, 1.5])
def test_the_input_estimate_refuses_nonsense(size: Any) -> None:
    with pytest.raises(InvalidUsage):
        estimate_input_tokens(size)


@pytest.mark.parametrize("tokens", [(-1, 10), (10, -1), (True, 10)])
def test_a_route_request_refuses_nonsense_token_counts(tokens: tuple[Any, Any]) -> None:
    with pytest.raises(InvalidRouteRequest, match="must be a non-negative integer"):
        RouteRequest("ainfera-inference", False, tokens[0], tokens[1])


# The lock: a balanced decision's recorded bytes and ruleset hash, computed once and pasted. If
# this fails, routing now decides or records differently: make sure that is intended, then
# re-paste, because every stored decision and ruleset_hash from before no longer reproduces.
# (Re-pasted once, on purpose, when the hash stopped covering the preference and the gate and
# `requested_preference` was recorded beside the policy: issue 12.)
LOCKED_DECISION = (
    b'{"alias_hit":"ainfera-mithril","candidates":['
    b'{"cleared_floor":true,"eligible":false,"est_cost_usd":"0.0004434","model":"cheap",'
    b'"provider":"p2","quality":"0.55","rejection_reason":"tools_unsupported"},'
    b'{"cleared_floor":true,"eligible":true,"est_cost_usd":"0.004434","model":"mid",'
    b'"provider":"p2","quality":"0.7","rejection_reason":null},'
    b'{"cleared_floor":true,"eligible":true,"est_cost_usd":"0.015702","model":"good",'
    b'"provider":"p1","quality":"0.8","rejection_reason":null},'
    b'{"cleared_floor":true,"eligible":true,"est_cost_usd":"0.07851","model":"best",'
    b'"provider":"p1","quality":"0.9","rejection_reason":null}],'
    b'"chosen_model":"mid","fallback":["mid","good","best"],'
    b'"policy":{"min_quality":"0.5","preference_live":true,"routing_preference":"balanced"},'
    b'"requested_model":"ainfera-mithril","requested_preference":"balanced",'
    b'"router":"ainfera-inference",'
    b'"ruleset_hash":"sha256:53ccb6aafa788fa21bc8adbbdca08319e9a06ed74525092463a1c5b932cfd167"}'
)
LOCKED_RULESET_HASH = "sha256:53ccb6aafa788fa21bc8adbbdca08319e9a06ed74525092463a1c5b932cfd167"


def test_lock_balanced_decision_is_byte_identical() -> None:
    decision = ask(
        "ainfera-mithril", tools=True, tokens=(1234, 800), preference="balanced", live=True
    )
    recorded = decision_to_routed_fields(decision) | {
        "requested_model": decision.requested_model,
        "fallback": [m.slug for m in decision.fallback],
    }
    assert canonical_json(recorded) == LOCKED_DECISION
    assert decision.ruleset_hash == LOCKED_RULESET_HASH


def test_lock_no_preference_records_the_locked_bytes_and_the_gate_keeps_the_hash() -> None:
    plain = ask("ainfera-mithril", tools=True, tokens=(1234, 800), live=True)
    recorded = decision_to_routed_fields(plain) | {
        "requested_model": plain.requested_model,
        "fallback": [m.slug for m in plain.fallback],
    }
    assert canonical_json(recorded) == LOCKED_DECISION
    gate_off = ask("ainfera-mithril", tools=True, tokens=(1234, 800), preference="quality")
    assert gate_off.ruleset_hash == LOCKED_RULESET_HASH


def capable_catalog() -> Catalog:
    return catalog(models=[
        model("cheap", "p2", "0.55", "0.10 0.40"),
        model("mid", "p2", "0.70", "1.00 4.00", supports_structured_output=True),
        model("good", "p1", "0.80", "3.00 15.00", supports_structured_output=True,
              supports_thinking=True),
    ])


def test_a_call_needing_structured_output_or_thinking_routes_only_to_models_with_it() -> None:
    structured = RouteRequest("ainfera-inference", False, 1000, 1000,
                              needs=frozenset({"structured_output"}))
    decision = route(structured, capable_catalog(), preference_live=False)
    assert decision.chosen_model == "mid"
    assert reasons(decision)["cheap"] == "structured_output_unsupported"
    thinking = RouteRequest("ainfera-inference", False, 1000, 1000,
                            needs=frozenset({"structured_output", "thinking"}))
    decision = route(thinking, capable_catalog(), preference_live=False)
    assert [m.slug for m in decision.fallback] == ["good"]
    assert reasons(decision) == {"cheap": "structured_output_unsupported",
                                 "mid": "thinking_unsupported", "good": None}


def test_a_backend_whose_protocol_would_refuse_a_field_is_not_a_candidate() -> None:
    # p2 is an openai provider: say top_k cannot go there.
    request = RouteRequest("ainfera-inference", False, 1000, 1000,
                           untranslatable={"openai": ("top_k",)})
    decision = route(request, capable_catalog(), preference_live=False)
    assert decision.chosen_model == "good"
    assert reasons(decision) == {"cheap": "not_translatable", "mid": "not_translatable",
                                 "good": None}


def test_when_no_model_has_what_the_call_needs_the_decision_says_so() -> None:
    request = RouteRequest("ainfera-inference", needs=frozenset({"thinking"}),
                           untranslatable={"anthropic": ("inference_geo",)})
    decision = route(request, capable_catalog(), preference_live=False)
    assert decision.rejected_floor
    assert decision.rejection == ("no model can serve this request: not_translatable, "
                                  "thinking_unsupported")


def test_a_model_without_tools_over_its_providers_protocol_is_not_a_tool_candidate() -> None:
    models = [
        # p2 is an openai provider: its models are reached over chat.completions.
        model("resp", "p2", "0.90", "0.10 0.40", tools_unsupported_on=["chat.completions"]),
        model("other", "p1", "0.60", "1.00 4.00", tools_unsupported_on=["chat.completions"]),
    ]
    decision = route(RouteRequest("ainfera-inference", True, 100, 100),
                     catalog(models=models), preference_live=False)
    assert reasons(decision) == {"resp": "tools_unsupported", "other": None}
    assert decision.chosen_model == "other"  # p1 speaks messages, where its tools work
    assert decision.unsupported == ()


def test_a_need_no_model_has_is_named_and_has_one_code() -> None:
    models = [model("a", "p2", "0.90", "0.10 0.40", supports_tools=False),
              model("b", "p2", "0.60", "1.00 4.00", tools_unsupported_on=["chat.completions"])]
    decision = route(RouteRequest("ainfera-inference", True, 100, 100,
                                  needs=frozenset({"thinking"})),
                     catalog(models=models), preference_live=False)
    assert decision.rejected_floor
    assert decision.unsupported == ("tools", "thinking")
    assert unsupported_code("tools") == "tools_not_supported_by_backend"
    # A floor rejection is not a missing capability.
    assert ask(min_quality="0.95").unsupported == ()
    assert ask(min_quality="0.95", tools=True).unsupported == ()
