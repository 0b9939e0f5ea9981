"""How many output tokens a call may produce on a given backend: what a spend reservation must
assume.

A caller's limit is sent as given, under the name the model takes it by. A Chat Completions
caller may send none, and then none is invented upstream, except where the target API requires
one: an Anthropic backend gets `DEFAULT_MAX_TOKENS` (4096), plus the thinking budget when the
call asked for reasoning. The reservation still needs a worst case for such a call: the model's
catalog `max_output_tokens`, or `DEFAULT_MAX_TOKENS` when the catalog does not know it (a hold
that may then fall short of the truth; settlement charges what the upstream reports, either
way). Pure: no I/O.
"""

from __future__ import annotations

from domain.protocols.anthropic import DEFAULT_MAX_TOKENS, anthropic_max_tokens
from domain.protocols.canonical import JSON
from domain.protocols.structured import EFFORT_BUDGET
from domain.protocols.surfaces import CHAT

__all__ = ["DEFAULT_MAX_TOKENS", "output_ceiling"]


def output_ceiling(surface: str, body: JSON, limit: int | None, kind: str,
                   model_max_output: int | None) -> int:
    """The most output tokens the call may produce on a `kind` backend."""
    if limit is not None:
        return limit
    if kind == "anthropic":
        effort = body.get("reasoning_effort") if surface == CHAT else None
        return anthropic_max_tokens(EFFORT_BUDGET.get(str(effort)) if effort else None)
    return model_max_output or DEFAULT_MAX_TOKENS
