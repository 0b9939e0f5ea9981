"""Pricing: exact dollars from token counts, every expectation worked out by hand."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import pytest

from domain.catalog import Model, catalog_from_dict
from domain.pricing import (
    InvalidUsage,
    UsageUnknown,
    cost_of,
    estimated_cost,
    price_version,
    worst_case_cost,
)


def priced(**overrides: str) -> Model:
    entry: dict[str, Any] = {
        "slug": "m",
        "provider": "p",
        "upstream_model": "m-1",
        "quality": "0.8",
        "input_usd_per_mtok": "3.00",
        "output_usd_per_mtok": "15.00",
    } | overrides
    providers = {"p": {"kind": "anthropic", "base_url": "https://p.test", "api_key_env": "P"}}
    return catalog_from_dict({"providers": providers, "models": [entry]}).models[0]


SONNET = priced(cache_read_usd_per_mtok="0.30", cache_write_usd_per_mtok="3.75")


def usage(inp: int | None, out: int | None, read: int | None, write: int | None) -> dict[str, Any]:
    return {"input_tokens": inp, "output_tokens": out, "cache_read": read, "cache_write": write}


def test_every_usage_line_is_priced_per_million_tokens() -> None:
    # 1000 x 3.00 + 500 x 15.00 + 20000 x 0.30 + 4000 x 3.75 = 3000 + 7500 + 6000 + 15000
    assert cost_of(SONNET, usage(1000, 500, 20_000, 4000)) == Decimal("0.0315")


def test_unreported_cache_counts_cost_nothing() -> None:
    # 1000 x 3.00 + 500 x 15.00 = 10500 per million
    expected = Decimal("0.0105")
    assert cost_of(SONNET, usage(1000, 500, None, None)) == expected
    assert cost_of(SONNET, {"input_tokens": 1000, "output_tokens": 500}) == expected


def test_zero_usage_costs_zero() -> None:
    assert cost_of(SONNET, usage(0, 0, 0, 0)) == Decimal(0)


def test_costs_are_exact_at_any_scale_and_whatever_the_callers_decimal_context() -> None:
    # 123456789 x 3 = 370370367 and 987654321 x 15 = 14814814815, per million
    big = usage(123_456_789, 987_654_321, None, None)
    with localcontext() as ctx:
        ctx.prec = 3
        assert cost_of(SONNET, big) == Decimal("15185.185182")
    # 7 x 0.0375 = 0.2625 per million; 1 x 0.075 per million
    assert cost_of(priced(input_usd_per_mtok="0.0375"), usage(7, 0, 0, 0)) == Decimal(
        "0.0000002625"
    )
    assert cost_of(priced(input_usd_per_mtok="0.075"), usage(1, 0, 0, 0)) == Decimal("7.5E-8")


def test_cache_prices_default_to_the_input_price() -> None:
    # (1000 + 100 + 10) x 3.00 = 3330 per million
    assert cost_of(priced(), usage(1000, 0, 100, 10)) == Decimal("0.00333")


@pytest.mark.parametrize(
    "reported",
    [None, usage(None, 5, 0, 0), usage(5, None, 0, 0), {"input_tokens": 5}, {}],
)
def test_unknown_input_or_output_is_never_charged_as_zero(reported: Any) -> None:
    with pytest.raises(UsageUnknown):
        cost_of(SONNET, reported)


@pytest.mark.parametrize(
    ("reported", "message"),
    [
        (usage(-1, 5, 0, 0), "input_tokens must be a non-negative integer, not -1"),
        ({"input_tokens": 1, "output_tokens": 5.0}, "output_tokens must be a non-negative .* 5.0"),
        (usage(1, 5, True, 0), "cache_read must be a non-negative integer, not True"),
        ({"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 3}, "unknown usage"),
    ],
)
def test_malformed_usage_is_refused(reported: Any, message: str) -> None:
    with pytest.raises(InvalidUsage, match=message):
        cost_of(SONNET, reported)


def test_the_routing_estimate_prices_input_and_permitted_output() -> None:
    # 1000 x 3.00 + 500 x 15.00 = 10500 per million
    assert estimated_cost(SONNET, 1000, 500) == Decimal("0.0105")


def test_the_worst_case_prices_input_at_the_dearest_input_rate() -> None:
    # 1000 x 3.75 (cache write) + 500 x 15.00 = 11250 per million
    assert worst_case_cost(SONNET, 1000, 500) == Decimal("0.01125")
    # Without a dearer cache rate the worst case is the estimate: 2000 x 3 + 0 x 15
    assert worst_case_cost(priced(), 2000, 0) == Decimal("0.006")
    assert worst_case_cost(SONNET, 0, 0) == Decimal(0)


def test_the_worst_case_bounds_any_usage_within_the_estimate() -> None:
    bound = worst_case_cost(SONNET, 1000, 500)
    for split in [usage(1000, 500, 0, 0), usage(0, 500, 1000, 0), usage(0, 500, 0, 1000)]:
        assert cost_of(SONNET, split) <= bound


@pytest.mark.parametrize("args", [(-1, 5), (5, -1)])
def test_estimates_refuse_negative_counts(args: tuple[int, int]) -> None:
    with pytest.raises(InvalidUsage):
        worst_case_cost(SONNET, *args)
    with pytest.raises(InvalidUsage):
        estimated_cost(SONNET, *args)


def test_the_price_version_is_the_configs_or_a_hash_of_the_prices() -> None:
    assert price_version(SONNET) == SONNET.price_version
    assert len(price_version(SONNET)) == 16
    assert price_version(SONNET) != price_version(priced())
    assert price_version(priced(price_version="sheet-2025-09")) == "sheet-2025-09"
