"""Money: US dollars as Decimal, never float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO = Decimal("0.000001")


def parse_usd(value: str | int | Decimal) -> Decimal:
    """Parses an amount of dollars; floats are refused because they cannot hold cents exactly."""
    if isinstance(value, (float, bool)):
        raise InvalidAmountError(f"amounts are decimal strings, not {type(value).__name__}")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidAmountError(f"not an amount of dollars: {value!r}") from None
    if not amount.is_finite():
        raise InvalidAmountError(f"not a finite amount: {value!r}")
    return amount


def usd_str(amount: Decimal) -> str:
    """The wire form of an amount: a plain decimal string, no exponent."""
    return format(amount, "f")


class InvalidAmountError(ValueError):
    """A value that is not an exact amount of dollars."""
