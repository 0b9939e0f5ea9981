"""Money: US dollars as Decimal, never float; whole nano-dollars where a database must add.

Read models store amounts as integer nano-dollars (1e-9 USD) so `SUM(...)` is exact in SQL on
every backend. Pricing may produce finer amounts (a price per million tokens with more than
three decimals), so the conversion says which way it rounds and the caller must choose: spend
rounds up and caps round down, the rule the spend counters follow (adapters.budget), so a read
model and a counter never disagree by a rounding and a cap is never looser than configured.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Final, Literal

MICRO = Decimal("0.000001")
NANO: Final = Decimal("1e-9")
NANOS_PER_USD: Final = 10**9
# The largest amount a BIGINT column holds: about $9.2 billion.
MAX_NANOS: Final = 2**63 - 1

Rounding = Literal["up", "down"]
_ROUNDING: Final = {"up": ROUND_CEILING, "down": ROUND_FLOOR}


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


def to_nanos(amount: Decimal | str, rounding: Rounding) -> int:
    """Whole nano-dollars of a non-negative amount, rounded `up` (spend) or `down` (caps) when
    it has a fraction of a nano-dollar; exact otherwise."""
    value = parse_usd(amount)
    if value < 0:
        raise InvalidAmountError(f"amounts in read models are not negative: {amount}")
    try:
        # quantize rounds the exact operand once, unlike scaling first under the context.
        nanos = int(value.quantize(NANO, rounding=_ROUNDING[rounding]).scaleb(9))
    except InvalidOperation:
        nanos = MAX_NANOS + 1  # more digits than the context holds: far beyond any BIGINT
    if nanos > MAX_NANOS:
        raise InvalidAmountError(f"{amount} dollars is beyond {MAX_NANOS} nano-dollars")
    return nanos


def from_nanos(nanos: int) -> Decimal:
    """The exact amount of `nanos` nano-dollars, without trailing zeros (0.0023, 7.5, 0), so
    one amount always renders as one string."""
    amount = Decimal(nanos).scaleb(-9)
    return amount.normalize() if amount else Decimal(0)


def usd_text(amount: Decimal) -> str:
    """An amount for a person to read: plain decimal, at least cents, no trailing zeros past
    them and never an exponent (`0E-9` -> `0.00`, `5` -> `5.00`, `0.000123000` -> `0.000123`)."""
    plain = format(amount.normalize(), "f")
    whole, _, fraction = plain.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


class InvalidAmountError(ValueError):
    """A value that is not an exact amount of dollars."""
