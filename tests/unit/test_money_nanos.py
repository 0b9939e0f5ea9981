"""Whole nano-dollars for read models: exact where the amount is, rounded only below a
nano-dollar and then in the direction the caller names (spend up, caps down), never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.budget import usd_to_nano
from domain.money import MAX_NANOS, InvalidAmountError, from_nanos, to_nanos, usd_str


@pytest.mark.parametrize(("amount", "nanos"), [
    ("0", 0), ("-0", 0), ("0.001200", 1_200_000), ("7.50", 7_500_000_000),
    ("12.345678912", 12_345_678_912), ("1", 1_000_000_000), ("0.000000001", 1),
    ("9223372036.854775807", MAX_NANOS),
])
def test_exact_amounts_convert_exactly_either_way(amount: str, nanos: int) -> None:
    assert to_nanos(amount, "up") == to_nanos(Decimal(amount), "down") == nanos
    assert from_nanos(nanos) == Decimal(amount)


@pytest.mark.parametrize(("amount", "up", "down"), [
    ("0.0000000001", 1, 0), ("0.0000000019", 2, 1), ("1.0000000000001", 1_000_000_001,
                                                      1_000_000_000),
])
def test_finer_than_a_nano_rounds_the_way_named(amount: str, up: int, down: int) -> None:
    assert (to_nanos(amount, "up"), to_nanos(amount, "down")) == (up, down)
    # The spend counters round the same way, so a read model and a counter agree.
    assert usd_to_nano(Decimal(amount)) == up
    assert usd_to_nano(Decimal(amount), round_up=False) == down


@pytest.mark.parametrize("bad", ["-0.01", "abc", "NaN", "Infinity", "9223372036.854775808",
                                 "1e40"])
def test_what_a_bigint_of_nanos_cannot_hold_is_refused(bad: str) -> None:
    with pytest.raises(InvalidAmountError):
        to_nanos(bad, "up")


def test_a_float_is_refused() -> None:
    with pytest.raises(InvalidAmountError):
        to_nanos(0.1, "up")  # type: ignore[arg-type]


@pytest.mark.parametrize(("nanos", "text"), [
    (0, "0"), (2_300_000, "0.0023"), (7_500_000_000, "7.5"), (100_000_000_000, "100"),
    (1, "0.000000001"), (12_645_678_914, "12.645678914"),
])
def test_one_amount_renders_as_one_string(nanos: int, text: str) -> None:
    assert usd_str(from_nanos(nanos)) == text
