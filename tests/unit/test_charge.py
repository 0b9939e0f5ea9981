"""What a call is debited: the upstream's counts, filled from measurement where missing or
provisional, and marked as estimated when they were."""

from __future__ import annotations

from decimal import Decimal

from domain.catalog import catalog_from_dict
from domain.pricing import charge
from domain.protocols.canonical import Usage

CATALOG = catalog_from_dict({
    "providers": {"a": {"kind": "anthropic", "base_url": "http://x", "api_key_env": "K"}},
    "models": [{"slug": "m", "provider": "a", "upstream_model": "m", "quality": "0.8",
                "input_usd_per_mtok": "3", "output_usd_per_mtok": "15",
                "supports_tools": True}],
})
MODEL = CATALOG.models[0]


def usage(i: int | None, o: int | None) -> Usage:
    return {"input_tokens": i, "output_tokens": o, "cache_read": None, "cache_write": None}


def test_reported_counts_are_priced_exactly() -> None:
    cost, version = charge(MODEL, usage(12, 7), est_input=999, output_chars=999)
    assert cost == Decimal("0.000141")
    assert not version.endswith("+estimated")


def test_missing_counts_are_measured_and_marked() -> None:
    cost, version = charge(MODEL, usage(12, None), est_input=50, output_chars=30)
    assert cost == Decimal(12 * 3 + 10 * 15) / 1_000_000
    assert version.endswith("+estimated")
    cost, _ = charge(MODEL, None, est_input=50, output_chars=0)
    assert cost == Decimal(50 * 3) / 1_000_000


def test_a_provisional_output_count_of_an_unfinished_stream_is_raised_to_what_was_sent() -> None:
    cost, version = charge(MODEL, usage(12, 1), est_input=50, output_chars=300,
                           finished=False)
    assert cost == Decimal(12 * 3 + 100 * 15) / 1_000_000
    assert version.endswith("+estimated")
    finished, _ = charge(MODEL, usage(12, 1), est_input=50, output_chars=300)
    assert finished == Decimal(12 * 3 + 1 * 15) / 1_000_000


def test_nothing_is_debited_when_no_upstream_served() -> None:
    assert charge(None, usage(1, 1), est_input=1, output_chars=1) == (None, "")
