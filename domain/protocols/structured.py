"""Structured output and reasoning, expressed in each vendor's terms.

Three vendors ask for the same two things in different words:

- a JSON answer: OpenAI `response_format` (`json_schema` or `json_object`), Anthropic
  `output_config.format` (`json_schema` only: Anthropic cannot constrain to "any JSON object",
  so `json_object` is carried by forcing a tool whose input is the answer), Gemini
  `generationConfig.responseMimeType` + `responseJsonSchema`;
- how hard to think: OpenAI `reasoning_effort` (a level), Anthropic `thinking.budget_tokens`
  (a token budget) or `output_config.effort` (a level), Gemini `thinkingConfig.thinkingBudget`
  (a budget; -1 lets the model decide).

One level <-> budget scale serves every translation, so effort -> budget -> effort is the
identity. Pure: no I/O.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Final

from domain.protocols.canonical import JSON, UnsupportedRequest

# The thinking budget each reasoning level stands for. Anthropic refuses budgets under 1024;
# the upper levels follow Gemini 2.5 Pro's range (128..32768) and Anthropic's long outputs.
EFFORT_BUDGET: Final = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 24576,
    "max": 32768,
}
MIN_THINKING_BUDGET: Final = 1024
# OpenAI's levels that switch reasoning off rather than pick a budget.
NO_EFFORT: Final = "none"
REASONING_EFFORTS: Final = (NO_EFFORT, *EFFORT_BUDGET)
# The tool a `json_object` answer is forced through on an Anthropic backend. Its input is the
# answer; the name is ours, so it cannot collide with a caller's tool (those are refused next
# to it anyway, see `json_mode_problem`).
JSON_TOOL: Final = "ainfera_json_answer"
_JSON_TOOL_SPEC: Final = {
    "name": JSON_TOOL,
    "description": "Give your whole answer as this tool's input: one JSON object.",
    "input_schema": {"type": "object"},
}
_SCHEMA_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]")


def budget_for_effort(effort: str) -> int:
    """The thinking budget of a reasoning level (`minimal` .. `max`)."""
    try:
        return EFFORT_BUDGET[effort]
    except KeyError:
        levels = ", ".join(REASONING_EFFORTS)
        raise UnsupportedRequest(f"reasoning effort {effort!r} is not one of {levels}",
                                 field="reasoning_effort") from None


def effort_for_budget(budget: int) -> str:
    """The highest level whose budget the given budget reaches (at least `minimal`)."""
    chosen = "minimal"
    for level, tokens in EFFORT_BUDGET.items():
        if budget >= tokens:
            chosen = level
    return chosen


def thinking_budget(limit: int | None, effort: str) -> int:
    """The Anthropic thinking budget for an OpenAI reasoning level under a caller's token
    limit. OpenAI counts reasoning inside `max_completion_tokens` and Anthropic counts thinking
    inside `max_tokens`, so the budget must stay below the limit; Anthropic's minimum budget
    needs a limit above 1024 (`reasoning_effort_problem` refuses the rest)."""
    budget = budget_for_effort(effort)
    return budget if limit is None else min(budget, limit - 1)


def reasoning_effort_problem(effort: object, limit: object) -> str | None:
    """Why an OpenAI `reasoning_effort` cannot become Anthropic thinking, if it cannot."""
    if effort is None or effort == NO_EFFORT:
        return None
    if effort not in EFFORT_BUDGET:
        return f"{effort!r} is not one of {', '.join(REASONING_EFFORTS)}"
    if isinstance(limit, int) and limit - 1 < MIN_THINKING_BUDGET:
        return (f"thinking on an Anthropic backend needs a token limit above "
                f"{MIN_THINKING_BUDGET} (the smallest thinking budget), not {limit}")
    return None


def anthropic_thinking(effort: str, limit: int | None) -> JSON:
    """Anthropic `thinking` for an OpenAI reasoning level: `none` switches it off."""
    if effort == NO_EFFORT:
        return {"type": "disabled"}
    return {"type": "enabled", "budget_tokens": thinking_budget(limit, effort)}


def openai_reasoning_effort(request: JSON) -> str | None:
    """The OpenAI `reasoning_effort` for a canonical request's thinking settings.

    `output_config.effort` is already a level; a `thinking` budget maps to the level it
    reaches. `adaptive` thinking and `disabled` have no level: the model's own default applies
    (a reasoning model cannot be told to stop reasoning on every OpenAI version)."""
    effort = (request.get("output_config") or {}).get("effort")
    if effort is not None:
        return str(effort)
    thinking = request.get("thinking") or {}
    if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        return effort_for_budget(thinking["budget_tokens"])
    return None


def gemini_thinking_budget(request: JSON) -> int | None:
    """Gemini's `thinkingBudget` for a canonical request: the budget itself, -1 (dynamic) for
    adaptive thinking, a level's budget for `output_config.effort`; None leaves the model's
    default."""
    effort = (request.get("output_config") or {}).get("effort")
    if effort is not None:
        return EFFORT_BUDGET.get(str(effort), EFFORT_BUDGET["medium"])
    thinking = request.get("thinking") or {}
    if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        return int(thinking["budget_tokens"])
    if thinking.get("type") == "adaptive":
        return -1
    return None


# --- structured output ----------------------------------------------------------------------


def output_format_from_response_format(response_format: Any) -> JSON | None:
    """Anthropic `output_config.format` for an OpenAI `json_schema` response format; None for
    `text` and `json_object` (which Anthropic can only carry as a forced tool)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise UnsupportedRequest("response_format json_schema needs a `schema` object",
                                 field="response_format")
    schema = copy.deepcopy(spec["schema"])
    if spec.get("description") and "description" not in schema:
        # The only place Anthropic's format can hold what the caller said the answer is for.
        schema["description"] = spec["description"]
    return {"type": "json_schema", "schema": schema}


def response_format_from_output_format(output_format: JSON) -> JSON:
    """OpenAI `response_format` for an Anthropic `output_config.format`.

    Anthropic always constrains the answer to the schema; OpenAI does so only with
    `strict: true`, which it accepts for a subset of JSON Schema (every object closed with
    `additionalProperties: false` and listing all its properties as required). A schema
    outside that subset is sent with `strict: false`: OpenAI then follows it without
    constrained decoding rather than refusing the request."""
    schema = output_format.get("schema")
    if output_format.get("type") != "json_schema" or not isinstance(schema, dict):
        raise UnsupportedRequest(
            f"output_config.format of type {output_format.get('type')!r} is not a JSON schema",
            field="output_config")
    title = schema.get("title")
    name = _SCHEMA_NAME.sub("_", title)[:64] if isinstance(title, str) and title else "response"
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict_compatible(schema)}}


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict structured outputs accept this schema (see above)."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or []) != set(properties):
            return False
    return all(strict_compatible(value) for key, value in schema.items()
               if key not in ("required", "enum", "const", "default", "examples"))


def json_mode(response_format: Any) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


def json_mode_problem(body: JSON) -> str | None:
    """Why a `json_object` chat request cannot be forced through the JSON tool, if it cannot:
    the caller's own tools would compete with it, and Anthropic refuses a forced tool while
    thinking."""
    if body.get("tools") or body.get("functions"):
        return "json_object together with tools has no Anthropic equivalent"
    effort = body.get("reasoning_effort")
    if effort is not None and effort != NO_EFFORT:
        return "json_object together with reasoning has no Anthropic equivalent"
    return None


def force_json_tool(request: JSON) -> None:
    """Makes a canonical request answer through the JSON tool (see JSON_TOOL)."""
    request["tools"] = [dict(_JSON_TOOL_SPEC)]
    request["tool_choice"] = {"type": "tool", "name": JSON_TOOL}


def json_tool_answer(message: JSON) -> JSON:
    """A message answered through the JSON tool, as the plain JSON text answer it stands for."""
    content: list[JSON] = []
    forced = False
    for block in message.get("content") or []:
        if block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
            text = json.dumps(block.get("input") or {}, ensure_ascii=False, separators=(",", ":"))
            content.append({"type": "text", "text": text})
            forced = True
        else:
            content.append(block)
    if not forced:
        return message
    answer = dict(message)
    answer["content"] = content
    if answer.get("stop_reason") == "tool_use":
        answer["stop_reason"] = "end_turn"
    return answer


class JsonToolStream:
    """The same rewrite for stream events: the forced tool's block becomes a text block and
    its input fragments text deltas, so the caller sees the JSON answer stream as text."""

    def __init__(self) -> None:
        self._blocks: set[int] = set()

    def rewrite(self, event: JSON) -> JSON:
        kind = event.get("type")
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
                self._blocks.add(event["index"])
                return {**event, "content_block": {"type": "text", "text": ""}}
        elif kind == "content_block_delta" and event.get("index") in self._blocks:
            fragment = (event.get("delta") or {}).get("partial_json", "")
            return {**event, "delta": {"type": "text_delta", "text": fragment}}
        elif kind == "message_delta" and self._blocks:
            delta = event.get("delta") or {}
            if delta.get("stop_reason") == "tool_use":
                return {**event, "delta": {**delta, "stop_reason": "end_turn"}}
        return event
