"""What a call costs, in exact US dollars, from a catalog model's prices per million tokens.

Nothing here rounds: a cost is a sum of integer token counts times decimal prices divided by a
million, which a Decimal holds exactly, and the arithmetic runs in a context that raises rather
than round (decimal.Inexact), so a silently rounded charge is impossible. Callers that need a
coarser unit (a counter in integer nano-dollars, say) quantise at their own edge, upwards for
reservations. It must never charge for unknown usage as if it were zero.

Usage follows the Completed event's shape. `input_tokens` counts only uncached input, disjoint
from `cache_read` and `cache_write` (Anthropic's convention; an OpenAI-style prompt count that
includes cached tokens must have them subtracted by the adapter). A missing or None cache count
means the upstream reported no cache use and costs nothing; a missing or None input or output
count means usage is unknown, and `cost_of` raises UsageUnknown so the gateway charges the worst
case it reserved instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from typing import Final

from domain.catalog import Model
from domain.protocols.canonical import Usage

USAGE_KEYS: Final = ("input_tokens", "output_tokens", "cache_read", "cache_write")
TOKENS_PER_PRICE_UNIT: Final = 1_000_000
CHARS_PER_TOKEN: Final = 3
_EXACT: Final = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])


def cost_of(model: Model, usage: Mapping[str, int | None] | None) -> Decimal:
    """The exact cost of a finished call from the usage its upstream reported."""
    if usage is None:
        raise UsageUnknown("the upstream reported no usage")
    unexpected = sorted(set(usage) - set(USAGE_KEYS))
    if unexpected:
        raise InvalidUsage(f"unknown usage keys {unexpected}; expected {list(USAGE_KEYS)}")
    counts = {key: check_tokens(key, usage.get(key)) for key in USAGE_KEYS}
    for key in ("input_tokens", "output_tokens"):
        if counts[key] is None:
            raise UsageUnknown(f"the upstream did not report {key}")
    return _priced(
        (counts["input_tokens"], model.input_usd_per_mtok),
        (counts["output_tokens"], model.output_usd_per_mtok),
        (counts["cache_read"], model.cache_read_usd_per_mtok),
        (counts["cache_write"], model.cache_write_usd_per_mtok),
    )


def estimated_cost(model: Model, est_input_tokens: int, max_output_tokens: int) -> Decimal:
    """The routing estimate: every input token at the input price, every permitted output
    token at the output price. It ranks models; it is not a bound (see worst_case_cost)."""
    return _priced(
        (check_tokens("est_input_tokens", est_input_tokens), model.input_usd_per_mtok),
        (check_tokens("max_output_tokens", max_output_tokens), model.output_usd_per_mtok),
    )


def worst_case_cost(model: Model, est_input_tokens: int, max_output_tokens: int) -> Decimal:
    """The most the call can cost if the input estimate holds: what a budget reservation holds.
    Input is priced at the dearest way it may be billed, since a cache write costs more than
    plain input at some vendors (Anthropic charges 1.25x for it)."""
    dearest_input = max(
        model.input_usd_per_mtok, model.cache_read_usd_per_mtok, model.cache_write_usd_per_mtok
    )
    return _priced(
        (check_tokens("est_input_tokens", est_input_tokens), dearest_input),
        (check_tokens("max_output_tokens", max_output_tokens), model.output_usd_per_mtok),
    )


def price_version(model: Model) -> str:
    """The version a debit records: the config's `price_version`, or a hash of the prices."""
    return model.price_version


def charge(model: Model | None, usage: Usage | None, est_input: int, output_chars: int,
           finished: bool = True,
           measured_output: int | None = None) -> tuple[Decimal | None, str]:
    """The cost to debit once an upstream served the call (`model` set), from the upstream's
    own counts. Where it never gave a count (a response without usage, a stream cut before its
    usage frame), or gave only a provisional one (the output count in a stream's first event,
    when the stream did not finish), what we measured fills in: the request estimate for
    input, delivered characters for output; the debit is then marked `+estimated`. Nothing is
    debited when no upstream served the call. `measured_output` replaces the measurement
    of output from characters when the caller counted it another way (a stream cut at
    max_tokens is debited for what the cut rule counted as delivered)."""
    if model is None:
        return None, ""
    reported: Usage = usage or {"input_tokens": None, "output_tokens": None,
                                "cache_read": None, "cache_write": None}
    filled: Usage = dict(reported)  # type: ignore[assignment]
    if filled["input_tokens"] is None:
        filled["input_tokens"] = est_input
    if measured_output is None:
        measured_output = estimate_input_tokens(output_chars)
    if filled["output_tokens"] is None or (
            not finished and filled["output_tokens"] < measured_output):
        filled["output_tokens"] = measured_output
    version = price_version(model) + ("" if filled == reported else "+estimated")
    return cost_of(model, usage_record(filled)), version


def usage_record(usage: Usage | None) -> dict[str, int | None] | None:
    """Usage in the Completed event's shape (None: the upstream never said)."""
    if usage is None:
        return None
    return {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
            "cache_read": usage["cache_read"], "cache_write": usage["cache_write"]}


def estimate_input_tokens(size: bytes | str | int) -> int:
    """A deliberately high estimate of a request's input tokens: one token per 3 characters
    (or UTF-8 bytes, or a length given directly), rounded up. English runs near 4 characters a
    token and JSON punctuation nearer 3, so budget reservations made from it cover the real cost.
    Base64 media would be grossly overcounted: pass the length of the text parts only."""
    length = len(size) if isinstance(size, bytes | str) else size
    if type(length) is not int or length < 0:
        raise InvalidUsage(f"a size must be a non-negative integer, not {size!r}")
    return -(-length // CHARS_PER_TOKEN)


def check_tokens(name: str, count: object) -> int | None:
    if count is None or (type(count) is int and count >= 0):
        return count
    raise InvalidUsage(f"{name} must be a non-negative integer, not {count!r}")


def _priced(*lines: tuple[int | None, Decimal]) -> Decimal:
    total = Decimal(0)
    for tokens, usd_per_mtok in lines:
        total = _EXACT.add(total, _EXACT.multiply(Decimal(tokens or 0), usd_per_mtok))
    return _EXACT.divide(total, Decimal(TOKENS_PER_PRICE_UNIT))


class PricingError(Exception):
    """Base of the pricing rules' errors."""


class UsageUnknown(PricingError):
    """The upstream did not say how many tokens it billed; charge the reservation instead."""


class InvalidUsage(PricingError):
    """Usage that cannot be right: a negative or non-integer count, or a key no adapter emits."""
