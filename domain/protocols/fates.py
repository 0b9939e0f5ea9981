"""What becomes of each request field on the way to a backend: ONE table, `FATES`.

A backend of the caller's own protocol (Anthropic for `/v1/messages`, OpenAI-compatible for
`/v1/chat/completions`) is sent the request as the client wrote it: every field, known here or
not, with only the gateway's own fields (`model`, `routing_hint`) replaced or removed. Across
protocols each field has exactly one fate per target:

- `ours`: the gateway's own (`model`, `routing_hint`, and `stream_options`, which shapes the
  gateway's stream to the client);
- `translated`: expressed in the target's terms; the note says how;
- `dropped`: left out because it cannot change the answer; the note says why;
- `refused`: the target cannot do what it asks. The router never chooses a backend that would
  refuse a field of the call; a call pinned to one is 400 `not_translatable` naming the field.
  Some fields are refused only for some values (`n` above 1, `temperature` above 1 for
  Anthropic): the other values ask for nothing the target would not do anyway.

A field without a row is refused across protocols (vendors add fields faster than this table
grows; a backend of the caller's protocol still gets it). `docs/gateway.md` holds this table as
`python -m domain.protocols.fates` prints it, and tests hold the translators to it: a field a
translator reads must have a row here, a `translated` field must change what is sent, a
`dropped` one must not. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain.protocols.canonical import JSON
from domain.protocols.structured import (
    REASONING_EFFORTS,
    json_mode,
    json_mode_problem,
    reasoning_effort_problem,
)
from domain.protocols.surfaces import CHAT, MESSAGES, NATIVE_KIND, PROVIDER_KINDS

OURS: Final = "ours"
FORWARDED: Final = "forwarded"
TRANSLATED: Final = "translated"
DROPPED: Final = "dropped"
REFUSED: Final = "refused"

# What a request may need that not every model has (catalog flags `supports_*`).
TOOLS: Final = "tools"
STRUCTURED_OUTPUT: Final = "structured_output"
THINKING: Final = "thinking"

# (value, whole body) -> why this value cannot go to the target, or None when it can.
Check = Callable[[Any, JSON], str | None]


@dataclass(frozen=True, slots=True)
class Fate:
    kind: str
    note: str = ""
    check: Check | None = None
    inert: tuple[Any, ...] = ()  # a refused field's values that ask for nothing (null, false)

    def problem(self, value: Any, body: JSON) -> str | None:
        """Why this value of the field cannot be sent to the target; None when it can."""
        if self.check is not None:
            return self.check(value, body)
        return (self.note or "the target has no counterpart") if self.kind == REFUSED else None


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"`{self.field}`: {self.reason}"


def _ours(note: str) -> Fate:
    return Fate(OURS, note)


def _forwarded(note: str = "") -> Fate:
    return Fate(FORWARDED, note)


def _translated(note: str, check: Check | None = None) -> Fate:
    return Fate(TRANSLATED, note, check)


def _dropped(note: str) -> Fate:
    return Fate(DROPPED, note)


def _refused(note: str, unless: Iterable[Any] = (None,)) -> Fate:
    """Refused, except for the values in `unless`, which ask for nothing (null, false, the
    default)."""
    inert = tuple(unless)

    def check(value: Any, body: JSON) -> str | None:
        return None if _among(value, inert) else note

    shown = ", ".join("null" if v is None else _json_text(v) for v in inert)
    return Fate(REFUSED, f"{note} (accepted when {shown})" if inert != (None,) else note, check,
                inert)


def _among(value: Any, values: tuple[Any, ...]) -> bool:
    # `1 == True` in Python: compare types too, so `n: true` is not taken for `n: 1`.
    return any(type(value) is type(v) and value == v for v in values)


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    return str(value)


def _row(*, native: Fate | None = None, **cross: Fate) -> dict[str, Fate]:
    """One field: its fate per target kind; the native target forwards unless told."""
    return {"native": native or _forwarded(), **cross}


# --- value checks -----------------------------------------------------------------------------


def _at_most(count: int, what: str) -> Check:
    def check(value: Any, body: JSON) -> str | None:
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list) and len(values) > count:
            return f"{what} takes at most {count} stop sequences, not {len(values)}"
        return None

    return check


def _server_tools(value: Any, body: JSON) -> str | None:
    for tool in value or []:
        if isinstance(tool, dict) and "input_schema" not in tool:
            return f"server tool {tool.get('name')!r} runs only on Anthropic"
    return None


def _gemini_tool_choice(value: Any, body: JSON) -> str | None:
    if isinstance(value, dict) and value.get("disable_parallel_tool_use"):
        return "Gemini cannot be held to one tool call per turn"
    return None


def _thinking(value: Any, body: JSON) -> str | None:
    kinds = ("enabled", "adaptive", "between_tools", "disabled")
    if value is not None and (not isinstance(value, dict) or value.get("type") not in kinds):
        return f"thinking type must be one of {', '.join(kinds)}"
    return None


def _output_config(value: Any, body: JSON) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "output_config must be an object"
    unknown = sorted(set(value) - {"format", "effort"})
    if unknown:
        return f"output_config.{unknown[0]} has no counterpart there"
    fmt = value.get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema"
                            or not isinstance(fmt.get("schema"), dict)):
        return "output_config.format must be a json_schema format with a schema object"
    effort = value.get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        return f"output_config.effort {effort!r} is not a known level"
    return None


def _response_format(for_anthropic: bool) -> Check:
    def check(value: Any, body: JSON) -> str | None:
        if value is None:
            return None
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            return "response_format type must be text, json_object or json_schema"
        if kind == "json_schema" and not isinstance(
                (value.get("json_schema") or {}).get("schema"), dict):
            return "response_format json_schema needs a `schema` object"
        if kind == "json_object" and for_anthropic:
            return json_mode_problem(body)
        return None

    return check


def _anthropic_effort(value: Any, body: JSON) -> str | None:
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return reasoning_effort_problem(value, limit)


def _gemini_effort(value: Any, body: JSON) -> str | None:
    if value is not None and value not in REASONING_EFFORTS:
        return f"{value!r} is not one of {', '.join(REASONING_EFFORTS)}"
    return None


def _anthropic_temperature(value: Any, body: JSON) -> str | None:
    if isinstance(value, int | float) and value > 1:
        return f"Anthropic's temperature range is 0 to 1, not {value}"
    return None


def _chat_tools(value: Any, body: JSON) -> str | None:
    for tool in value or []:
        if isinstance(tool, dict) and tool.get("type") != "function":
            return f"{tool.get('type')!r} tools exist only on OpenAI"
    return None


# --- the table --------------------------------------------------------------------------------

_CACHING = "prompt caching changes cost and latency, not the answer"
_CLIENT_STREAM = ("shapes the gateway's stream to the client: `include_usage` ends it with a "
                  "usage chunk and puts `usage: null` on every other chunk; "
                  "`include_obfuscation` is dropped (no padding is added)")
_CAPACITY = "a capacity or speed choice, not the answer"

MESSAGES_FATES: Final[Mapping[str, Mapping[str, Fate]]] = {
    "model": _row(native=_ours("the backend's own model id is sent in its place"),
                  openai=_ours("the backend's model id"), gemini=_ours("in the URL")),
    "routing_hint": _row(native=_ours("read by the router, never sent"),
                         openai=_ours("never sent"), gemini=_ours("never sent")),
    "max_tokens": _row(
        openai=_translated("the model's limit field from the catalog (`max_tokens` or "
                           "`max_completion_tokens`)"),
        gemini=_translated("`generationConfig.maxOutputTokens`")),
    "messages": _row(
        openai=_translated("system, user, assistant and tool messages; text, images, tool "
                           "calls and results. A block OpenAI cannot take (a document, a server "
                           "tool result) is refused when the attempt is built"),
        gemini=_translated("`contents`; a block Gemini cannot take is refused when the attempt "
                           "is built; thinking blocks are left out")),
    "system": _row(openai=_translated("a leading system message"),
                   gemini=_translated("`systemInstruction`")),
    "stream": _row(native=_forwarded("set to match the client"),
                   openai=_translated("the backend streams when the client does"),
                   gemini=_translated("`streamGenerateContent` when the client streams")),
    "metadata": _row(openai=_translated("`metadata.user_id` becomes `user`"),
                     gemini=_dropped("an end-user id for abuse tracking; Gemini has none")),
    "stop_sequences": _row(openai=_translated("`stop`; more than 4 is refused",
                                              _at_most(4, "OpenAI")),
                           gemini=_translated("`generationConfig.stopSequences`; more than 5 is "
                                              "refused", _at_most(5, "Gemini"))),
    "temperature": _row(openai=_translated("`temperature` (same scale)"),
                        gemini=_translated("`generationConfig.temperature`")),
    "top_p": _row(openai=_translated("`top_p`"), gemini=_translated("`generationConfig.topP`")),
    "top_k": _row(openai=_refused("OpenAI Chat Completions has no top-k sampling"),
                  gemini=_translated("`generationConfig.topK`")),
    "tools": _row(openai=_translated("function tools; a server tool is refused",
                                     _server_tools),
                  gemini=_translated("`functionDeclarations`; a server tool is refused",
                                     _server_tools)),
    "tool_choice": _row(
        openai=_translated("auto, required (any), a named function, none; "
                           "`disable_parallel_tool_use` becomes `parallel_tool_calls: false`"),
        gemini=_translated("`toolConfig.functionCallingConfig`; `disable_parallel_tool_use` is "
                           "refused", _gemini_tool_choice)),
    "thinking": _row(
        openai=_translated("`reasoning_effort`: a budget becomes the level it reaches "
                           "(1024 minimal, 2048 low, 8192 medium, 16384 high, 24576 xhigh, "
                           "32768 max); adaptive and disabled leave the model's default. "
                           "Chat Completions returns no thinking blocks", _thinking),
        gemini=_translated("`thinkingConfig.thinkingBudget` (adaptive: -1, dynamic; disabled: "
                           "the model's default); no thinking blocks come back", _thinking)),
    "output_config": _row(
        openai=_translated("`format` becomes `response_format` json_schema (strict when the "
                           "schema is in OpenAI's strict subset); `effort` becomes "
                           "`reasoning_effort`", _output_config),
        gemini=_translated("`format` becomes `responseMimeType: application/json` + "
                           "`responseJsonSchema`; `effort` becomes a thinking budget",
                           _output_config)),
    "service_tier": _row(openai=_dropped(_CAPACITY), gemini=_dropped(_CAPACITY)),
    "speed": _row(openai=_dropped(_CAPACITY), gemini=_dropped(_CAPACITY)),
    "cache_control": _row(openai=_dropped(_CACHING), gemini=_dropped(_CACHING)),
    "diagnostics": _row(openai=_dropped("asks Anthropic why a prompt cache missed"),
                        gemini=_dropped("asks Anthropic why a prompt cache missed")),
    "container": _row(openai=_refused("code-execution containers exist only on Anthropic"),
                      gemini=_refused("code-execution containers exist only on Anthropic")),
    "inference_geo": _row(
        openai=_refused("a data-residency requirement no other vendor's API can promise"),
        gemini=_refused("a data-residency requirement no other vendor's API can promise")),
    "user_profile_id": _row(openai=_dropped("attributes the call in Anthropic's billing"),
                            gemini=_dropped("attributes the call in Anthropic's billing")),
    "workspace_id": _row(openai=_dropped("selects an Anthropic workspace"),
                         gemini=_dropped("selects an Anthropic workspace")),
    "betas": _row(openai=_dropped("the SDK sends it as the `anthropic-beta` header, which "
                                  "reaches Anthropic backends only"),
                  gemini=_dropped("a header for Anthropic backends only")),
    "billing_policy": _row(openai=_refused("bills another Anthropic organization"),
                           gemini=_refused("bills another Anthropic organization")),
    "fallback_credit_token": _row(openai=_dropped("an Anthropic cache-billing credit"),
                                  gemini=_dropped("an Anthropic cache-billing credit")),
    "fallbacks": _row(openai=_refused("Anthropic-side retries on other Anthropic models"),
                      gemini=_refused("Anthropic-side retries on other Anthropic models")),
    "mcp_servers": _row(openai=_refused("the MCP connector runs only on Anthropic", (None, [])),
                        gemini=_refused("the MCP connector runs only on Anthropic", (None, []))),
    "context_management": _row(openai=_refused("Anthropic-side context editing"),
                               gemini=_refused("Anthropic-side context editing")),
    "compaction": _row(openai=_refused("asks Anthropic for a compaction block"),
                       gemini=_refused("asks Anthropic for a compaction block")),
    "thread": _row(openai=_refused("conversation state held by Anthropic"),
                   gemini=_refused("conversation state held by Anthropic")),
}

CHAT_FATES: Final[Mapping[str, Mapping[str, Fate]]] = {
    "model": _row(native=_ours("the backend's own model id is sent in its place"),
                  anthropic=_ours("the backend's model id"), gemini=_ours("in the URL")),
    "routing_hint": _row(native=_ours("read by the router, never sent"),
                         anthropic=_ours("never sent"), gemini=_ours("never sent")),
    "messages": _row(
        anthropic=_translated("system and developer messages become `system`; tool messages "
                              "`tool_result` blocks; tool calls `tool_use` blocks; text and "
                              "images. A part Anthropic cannot take (audio, files) is refused "
                              "when the attempt is built"),
        gemini=_translated("`contents` and `systemInstruction`; a part Gemini cannot take is "
                           "refused when the attempt is built")),
    "max_completion_tokens": _row(
        native=_translated("the model's limit field from the catalog; it wins over "
                           "`max_tokens` when both are sent"),
        anthropic=_translated("`max_tokens` (Anthropic requires one: 4096 when the caller "
                              "sent none, plus the thinking budget when reasoning)"),
        gemini=_translated("`generationConfig.maxOutputTokens`; none is invented")),
    "max_tokens": _row(
        native=_translated("the model's limit field from the catalog"),
        anthropic=_translated("`max_tokens`"),
        gemini=_translated("`generationConfig.maxOutputTokens`")),
    "stream": _row(native=_forwarded("set to match the client"),
                   anthropic=_translated("the backend streams when the client does"),
                   gemini=_translated("`streamGenerateContent` when the client streams")),
    "stream_options": _row(
        native=_translated("forwarded with `include_usage` on (the ledger needs the counts); "
                           "the usage chunk reaches the client only if it asked"),
        anthropic=_ours(_CLIENT_STREAM), gemini=_ours(_CLIENT_STREAM)),
    "temperature": _row(
        anthropic=_translated("`temperature`; above 1 is refused (Anthropic's range is 0-1)",
                              _anthropic_temperature),
        gemini=_translated("`generationConfig.temperature`")),
    "top_p": _row(anthropic=_translated("`top_p`"),
                  gemini=_translated("`generationConfig.topP`")),
    "stop": _row(anthropic=_translated("`stop_sequences`"),
                 gemini=_translated("`generationConfig.stopSequences`; more than 5 is refused",
                                    _at_most(5, "Gemini"))),
    "seed": _row(anthropic=_dropped("Anthropic has no seed, and OpenAI's own is best effort: "
                                    "it picks among answers, it does not shape them"),
                 gemini=_translated("`generationConfig.seed`")),
    "frequency_penalty": _row(
        anthropic=_refused("Anthropic has no frequency penalty", (None, 0, 0.0)),
        gemini=_translated("`generationConfig.frequencyPenalty`")),
    "presence_penalty": _row(
        anthropic=_refused("Anthropic has no presence penalty", (None, 0, 0.0)),
        gemini=_translated("`generationConfig.presencePenalty`")),
    "tools": _row(anthropic=_translated("function tools; custom tools are refused", _chat_tools),
                  gemini=_translated("`functionDeclarations`; custom tools are refused",
                                     _chat_tools)),
    "tool_choice": _row(anthropic=_translated("auto, required (any), a named function, none"),
                        gemini=_translated("`toolConfig.functionCallingConfig`")),
    "parallel_tool_calls": _row(
        anthropic=_translated("false becomes `tool_choice.disable_parallel_tool_use`"),
        gemini=_refused("Gemini cannot be held to one tool call per turn", (None, True))),
    "response_format": _row(
        anthropic=_translated("json_schema becomes `output_config.format`; json_object forces "
                              "a JSON tool whose input is the answer (refused together with "
                              "tools or reasoning); text is the default",
                              _response_format(for_anthropic=True)),
        gemini=_translated("`responseMimeType: application/json`, with `responseJsonSchema` "
                           "for json_schema", _response_format(for_anthropic=False))),
    "reasoning_effort": _row(
        anthropic=_translated("`thinking` with the level's budget (1024 minimal, 2048 low, "
                              "8192 medium, 16384 high, 24576 xhigh, 32768 max; below the "
                              "caller's limit, which must exceed 1024); none disables it",
                              _anthropic_effort),
        gemini=_translated("`thinkingConfig.thinkingBudget` of the same scale", _gemini_effort)),
    "user": _row(anthropic=_translated("`metadata.user_id`"),
                 gemini=_dropped("an end-user id for abuse tracking; Gemini has none")),
    "safety_identifier": _row(
        anthropic=_translated("`metadata.user_id` when `user` is not sent"),
        gemini=_dropped("an end-user id for abuse tracking; Gemini has none")),
    "metadata": _row(anthropic=_dropped("tags OpenAI's stored completions"),
                     gemini=_dropped("tags OpenAI's stored completions")),
    "store": _row(anthropic=_dropped("keeps the completion in OpenAI's dashboard"),
                  gemini=_dropped("keeps the completion in OpenAI's dashboard")),
    "service_tier": _row(anthropic=_dropped(_CAPACITY), gemini=_dropped(_CAPACITY)),
    "prediction": _row(anthropic=_dropped("predicted outputs only make the answer faster"),
                       gemini=_dropped("predicted outputs only make the answer faster")),
    "prompt_cache_key": _row(anthropic=_dropped(_CACHING), gemini=_dropped(_CACHING)),
    "prompt_cache_options": _row(anthropic=_dropped(_CACHING), gemini=_dropped(_CACHING)),
    "prompt_cache_retention": _row(anthropic=_dropped(_CACHING), gemini=_dropped(_CACHING)),
    "n": _row(anthropic=_refused("one answer per call", (None, 1)),
              gemini=_refused("one answer per call", (None, 1))),
    "logprobs": _row(anthropic=_refused("no token log probabilities", (None, False)),
                     gemini=_refused("no token log probabilities in this translation",
                                     (None, False))),
    "top_logprobs": _row(anthropic=_refused("no token log probabilities", (None, 0)),
                         gemini=_refused("no token log probabilities in this translation",
                                         (None, 0))),
    "logit_bias": _row(anthropic=_refused("token ids belong to OpenAI's tokenizer", (None, {})),
                       gemini=_refused("token ids belong to OpenAI's tokenizer", (None, {}))),
    "modalities": _row(anthropic=_refused("text answers only", (None, ["text"])),
                       gemini=_refused("text answers only", (None, ["text"]))),
    "audio": _row(anthropic=_refused("no audio answers"), gemini=_refused("no audio answers")),
    "verbosity": _row(anthropic=_refused("no verbosity control", (None, "medium")),
                      gemini=_refused("no verbosity control", (None, "medium"))),
    "web_search_options": _row(anthropic=_refused("OpenAI's built-in web search"),
                               gemini=_refused("OpenAI's built-in web search")),
    "moderation": _row(anthropic=_refused("OpenAI-side moderation that may block the answer"),
                       gemini=_refused("OpenAI-side moderation that may block the answer")),
    "functions": _row(anthropic=_refused("the deprecated form of `tools`; send tools",
                                         (None, [])),
                      gemini=_refused("the deprecated form of `tools`; send tools",
                                      (None, []))),
    "function_call": _row(anthropic=_refused("the deprecated form of `tool_choice`"),
                          gemini=_refused("the deprecated form of `tool_choice`")),
}

FATES: Final[Mapping[str, Mapping[str, Mapping[str, Fate]]]] = {
    MESSAGES: MESSAGES_FATES,
    CHAT: CHAT_FATES,
}
_TITLES: Final = {MESSAGES: "`POST /v1/messages` (Anthropic Messages)",
                  CHAT: "`POST /v1/chat/completions` (OpenAI Chat Completions)"}
_KIND_TITLES: Final = {"anthropic": "Anthropic backend", "openai": "OpenAI-compatible backend",
                       "gemini": "Gemini backend"}


def backend_name(kind: str) -> str:
    """How messages name a backend of a kind: "an OpenAI-compatible backend"."""
    title = _KIND_TITLES.get(kind, f"{kind} backend")
    return ("an " if title[0] in "AEIOU" else "a ") + title


def fate(surface: str, field: str, kind: str) -> Fate | None:
    """The fate of `field` of a `surface` request sent to a `kind` backend; None when the
    table has no row (refused across protocols, forwarded to the native kind)."""
    row = FATES[surface].get(field)
    if row is None:
        return None
    return row["native"] if NATIVE_KIND[surface] == kind else row.get(kind)


def refusals_for(surface: str, body: JSON, kind: str) -> tuple[Refusal, ...]:
    """The fields of `body` a `kind` backend would have to refuse, with why."""
    if NATIVE_KIND[surface] == kind:
        return ()  # the caller's own protocol: every field goes as sent
    # Every request asks this of two kinds, so only the fates that can object are looked at.
    objecting = _OBJECTING[surface, kind]
    table = FATES[surface]
    found: list[Refusal] = []
    for field, value in body.items():
        fated = objecting.get(field)
        if fated is not None:
            problem = fated.problem(value, body)
            if problem:
                found.append(Refusal(field, problem))
        elif field not in table and value is not None:
            found.append(Refusal(field, "a field the gateway does not know cannot be "
                                 f"translated; only {backend_name(NATIVE_KIND[surface])} gets "
                                 "it as sent"))
    return tuple(found)


def refusals(surface: str, body: JSON) -> dict[str, tuple[Refusal, ...]]:
    """`refusals_for` every provider kind."""
    return {kind: refusals_for(surface, body, kind) for kind in PROVIDER_KINDS}


def capability_needs(surface: str, body: JSON) -> frozenset[str]:
    """What the answer requires of the model (catalog `supports_*` flags), whatever its
    protocol: tools, structured output, thinking."""
    needs: set[str] = set()
    if body.get("tools") or body.get("functions"):
        needs.add(TOOLS)
    if surface == MESSAGES:
        config = body.get("output_config")
        config = config if isinstance(config, dict) else {}
        if config.get("format") is not None:
            needs.add(STRUCTURED_OUTPUT)
        thinking = body.get("thinking")
        wants = isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")
        if wants or config.get("effort") is not None:
            needs.add(THINKING)
    else:
        response_format = body.get("response_format")
        if json_mode(response_format) or (isinstance(response_format, dict) and
                                          response_format.get("type") == "json_schema"):
            needs.add(STRUCTURED_OUTPUT)
        if body.get("reasoning_effort") not in (None, "none"):
            needs.add(THINKING)
    return frozenset(needs)


def markdown() -> str:
    """The table as docs/gateway.md shows it (a test keeps the two equal)."""
    lines: list[str] = []
    for surface, table in FATES.items():
        native = NATIVE_KIND[surface]
        kinds = [native, *(k for k in PROVIDER_KINDS if k != native)]
        if lines:
            lines.append("")
        lines += [f"{_TITLES[surface]}:", "",
                  "| field | " + " | ".join(_KIND_TITLES[k] for k in kinds) + " |",
                  "| --- |" + " --- |" * len(kinds)]
        for field in sorted(table):
            cells = [_cell(fate(surface, field, kind)) for kind in kinds]
            lines.append(f"| `{field}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(fated: Fate | None) -> str:
    assert fated is not None  # every row has every kind: a unit test holds the table to it
    return f"**{fated.kind}**" + (f": {fated.note}" if fated.note else "")


# Per (surface, cross-protocol kind): the fates that may refuse some value.
_OBJECTING: Final = {
    (surface, kind): {field: row[kind] for field, row in table.items()
                      if row[kind].kind == REFUSED or row[kind].check is not None}
    for surface, table in FATES.items() for kind in PROVIDER_KINDS
    if kind != NATIVE_KIND[surface]
}

if __name__ == "__main__":
    print(markdown(), end="")
