"""The fate table (domain/protocols/fates.py) against the official SDKs' request references and
against the translators that must obey it.

Every field of both APIs' current references has a row with a fate for every target; every
row is exercised through the real provider request builder: a `translated` field changes what
is sent, a `dropped` one does not, a `refused` one stops the request naming it, an `ours` one
never reaches a backend. A translator that reads a field the table has no row for fails here;
so does a field added to the table without an example below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from anthropic.types import message_create_params as anthropic_params
from anthropic.types.beta import message_create_params as anthropic_beta_params
from openai.types.chat import completion_create_params as openai_params

from adapters.providers import build_provider
from adapters.providers.base import HTTPProvider
from adapters.providers.errors import NotTranslatable
from domain.protocols.fates import (
    CHAT_FATES,
    DROPPED,
    FATES,
    FORWARDED,
    MESSAGES_FATES,
    OURS,
    REFUSED,
    STRUCTURED_OUTPUT,
    THINKING,
    TOOLS,
    TRANSLATED,
    capability_needs,
    fate,
    markdown,
    refusals,
    refusals_for,
)
from domain.protocols.surfaces import CHAT, MESSAGES, NATIVE_KIND, PROVIDER_KINDS, WireRequest

DOCS = Path(__file__).resolve().parents[3] / "docs" / "gateway.md"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Weather",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                "parameters": ANTHROPIC_TOOL["input_schema"]}}

BASES: dict[str, dict[str, Any]] = {
    MESSAGES: {"model": "client-model", "max_tokens": 256,
               "messages": [{"role": "user", "content": "hi"}]},
    CHAT: {"model": "client-model", "messages": [{"role": "user", "content": "hi"}]},
}
# One value per row that asks for something (not null, not a default).
EXAMPLES: dict[str, dict[str, Any]] = {
    MESSAGES: {
        "model": "client-model",
        "routing_hint": {"min_quality": "0.7"},
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "hello"}],
        "system": "Be brief.",
        "stream": True,
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "tools": [ANTHROPIC_TOOL],
        "tool_choice": {"type": "any"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"},
        "service_tier": "auto",
        "speed": "fast",
        "cache_control": {"type": "ephemeral"},
        "diagnostics": {"previous_message_id": "msg_1"},
        "container": "ctr_1",
        "inference_geo": "eu",
        "user_profile_id": "up_1",
        "workspace_id": "wrkspc_1",
        "betas": ["token-efficient-tools-2025-02-19"],
        "billing_policy": {"type": "billing_policy", "bill_to": "user_profile"},
        "fallback_credit_token": "fct_1",
        "fallbacks": ["claude-other"],
        "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "m"}],
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "compaction": {"type": "enabled"},
        "thread": {"type": "create"},
    },
    CHAT: {
        "model": "client-model",
        "routing_hint": {"routing_preference": "cost"},
        "messages": [{"role": "user", "content": "hello"}],
        "audio": {"voice": "alloy", "format": "wav"},
        "frequency_penalty": 0.5,
        "function_call": "auto",
        "functions": [{"name": "f", "parameters": {"type": "object"}}],
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "max_completion_tokens": 300,
        "max_tokens": 300,
        "metadata": {"team": "search"},
        "modalities": ["text", "audio"],
        "moderation": {"input": {"mode": "block"}},
        "n": 2,
        "parallel_tool_calls": False,
        "prediction": {"type": "content", "content": "draft"},
        "presence_penalty": 0.5,
        "prompt_cache_key": "k-1",
        "prompt_cache_options": {"mode": "explicit"},
        "prompt_cache_retention": "24h",
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}},
        "safety_identifier": "sid-1",
        "seed": 7,
        "service_tier": "flex",
        "stop": ["END"],
        "store": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "tool_choice": "required",
        "tools": [OPENAI_TOOL],
        "top_logprobs": 3,
        "top_p": 0.9,
        "user": "u-1",
        "verbosity": "low",
        "web_search_options": {"search_context_size": "low"},
    },
}
# Fields that only mean something next to another (a tool choice needs tools).
NEEDS: dict[str, dict[str, Any]] = {
    "tool_choice": {"tools": None}, "parallel_tool_calls": {"tools": None},
}
# Legacy sampling fields the Messages API still takes (WIRE.md) though SDK 2.x no longer
# lists them, and the fields of ours that are on no vendor's list.
LEGACY = {MESSAGES: {"temperature", "top_p", "top_k", "stream", "routing_hint"},
          CHAT: {"stream", "routing_hint"}}


def reference_fields(surface: str) -> set[str]:
    """Every request field of the pinned SDKs' own parameter types."""
    if surface == MESSAGES:
        types = [anthropic_params.MessageCreateParamsBase,
                 anthropic_beta_params.MessageCreateParamsBase]
    else:
        types = [openai_params.CompletionCreateParamsBase]
    fields: set[str] = set()
    for typed in types:
        fields |= set(typed.__required_keys__) | set(typed.__optional_keys__)
    return fields | LEGACY[surface]


@pytest.fixture(scope="module")
def client() -> httpx.AsyncClient:
    # Only builds requests (no I/O), so it never opens a connection to close.
    return httpx.AsyncClient()


def builder(kind: str, client: httpx.AsyncClient) -> HTTPProvider:
    provider = build_provider(f"{kind}-1", kind, "https://up.example", "sk", client)
    assert isinstance(provider, HTTPProvider)
    return provider


def sent(provider: HTTPProvider, surface: str, body: dict[str, Any],
         field: str = "max_tokens") -> tuple[str, dict[str, Any]]:
    """What the provider would send for this body: URL and decoded body."""
    request = provider._build(WireRequest(surface, body), "up-model",
                              stream=body.get("stream") is True, max_tokens_field=field)
    return str(request.url), orjson.loads(request.content)


def with_field(surface: str, field: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base body without `field`, and with its example (plus what it needs)."""
    context = {name: EXAMPLES[surface][name] for name in NEEDS.get(field, {})}
    without = {k: v for k, v in {**BASES[surface], **context}.items() if k != field}
    return without, {**without, field: EXAMPLES[surface][field]}


def test_every_field_of_both_current_references_has_a_fate() -> None:
    for surface in (MESSAGES, CHAT):
        missing = reference_fields(surface) - set(FATES[surface])
        assert not missing, f"{surface}: fields without a fate: {sorted(missing)}"


def test_every_row_has_one_fate_for_every_target_and_an_example() -> None:
    for surface, table in FATES.items():
        assert set(EXAMPLES[surface]) == set(table), surface
        for field in table:
            for kind in PROVIDER_KINDS:
                fated = fate(surface, field, kind)
                assert fated is not None, (surface, field, kind)
                allowed = {OURS, FORWARDED, TRANSLATED} if kind == NATIVE_KIND[surface] \
                    else {OURS, TRANSLATED, DROPPED, REFUSED}
                assert fated.kind in allowed, (surface, field, kind, fated.kind)
                if fated.kind in (DROPPED, REFUSED):
                    assert fated.note, f"{surface}.{field} to {kind}: say why"


CROSS = [(surface, field, kind) for surface, table in FATES.items() for field in sorted(table)
         for kind in PROVIDER_KINDS if kind != NATIVE_KIND[surface]]


@pytest.mark.parametrize(("surface", "field", "kind"), CROSS,
                         ids=[f"{s}-{f}-{k}" for s, f, k in CROSS])
def test_each_fate_does_what_the_table_says(surface: str, field: str, kind: str,
                                            client: httpx.AsyncClient) -> None:
    provider = builder(kind, client)
    fated = fate(surface, field, kind)
    assert fated is not None
    without, with_it = with_field(surface, field)
    if fated.kind == REFUSED:
        assert [r.field for r in refusals_for(surface, with_it, kind)] == [field]
        with pytest.raises(NotTranslatable) as caught:
            sent(provider, surface, with_it)
        assert caught.value.param == field
        assert field in caught.value.message
        for inert in fated.inert:  # null, false, the default: nothing asked, nothing refused
            assert sent(provider, surface, {**without, field: inert}) == \
                sent(provider, surface, without)
        return
    assert refusals_for(surface, with_it, kind) == ()
    if fated.kind == OURS:
        _url, body = sent(provider, surface, with_it)
        assert field not in body or (field == "model" and body[field] == "up-model")
        assert EXAMPLES[surface][field] not in body.values()
    elif fated.kind == TRANSLATED:
        assert sent(provider, surface, with_it) != sent(provider, surface, without), \
            f"{surface}.{field} is 'translated' to {kind} but changes nothing sent"
    else:
        assert fated.kind == DROPPED
        assert sent(provider, surface, with_it) == sent(provider, surface, without), \
            f"{surface}.{field} is 'dropped' to {kind} but changes what is sent"


class RecordingDict(dict[str, Any]):
    """A request body that notes every top-level field a translator reads."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


@pytest.mark.parametrize(("surface", "kind"), [(MESSAGES, "openai"), (MESSAGES, "gemini"),
                                               (CHAT, "anthropic"), (CHAT, "gemini")])
def test_translators_read_only_fields_that_have_a_fate(surface: str, kind: str,
                                                       client: httpx.AsyncClient) -> None:
    """A translator that starts reading a field must give it a row in the table first."""
    table = FATES[surface]
    carried = {field: value for field, value in EXAMPLES[surface].items()
               if (fated := fate(surface, field, kind)) and fated.kind != REFUSED}
    body = RecordingDict({**carried, "not_in_any_reference": 1})
    builder(kind, client)._body(WireRequest(surface, body), "up-model", stream=False,
                                max_tokens_field="max_tokens")
    assert body.read, "the translator read nothing through the body?"
    unknown = body.read - set(table)
    assert not unknown, f"{surface} -> {kind} reads fields with no fate: {sorted(unknown)}"


@pytest.mark.parametrize("surface", [MESSAGES, CHAT])
def test_a_field_the_table_does_not_know_is_refused_across_protocols(
        surface: str, client: httpx.AsyncClient) -> None:
    body = {**BASES[surface], "vendor_field_of_2027": {"x": 1}}
    for kind in PROVIDER_KINDS:
        found = refusals_for(surface, body, kind)
        if kind == NATIVE_KIND[surface]:
            assert found == ()
            assert sent(builder(kind, client), surface, body)[1]["vendor_field_of_2027"] == \
                {"x": 1}
        else:
            assert [r.field for r in found] == ["vendor_field_of_2027"]
            assert "only a" in found[0].reason
    assert refusals(surface, {**body, "vendor_field_of_2027": None})[
        "gemini"] == ()  # null asks for nothing


def test_a_messages_body_reaches_an_anthropic_backend_as_sent(
        client: httpx.AsyncClient) -> None:
    body = {**EXAMPLES[MESSAGES], "vendor_field_of_2027": {"nested": [1, 2]}}
    _url, upstream = sent(builder("anthropic", client), MESSAGES, body)
    expected = {k: v for k, v in body.items() if k != "routing_hint"}
    assert upstream == {**expected, "model": "up-model"}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_chat_body_reaches_an_openai_backend_as_sent(field: str,
                                                       client: httpx.AsyncClient) -> None:
    body = {**EXAMPLES[CHAT], "vendor_field_of_2027": {"nested": [1, 2]}}
    body["max_tokens"], body["max_completion_tokens"] = 100, 300
    _url, upstream = sent(builder("openai", client), CHAT, body, field=field)
    expected = {k: v for k, v in body.items()
                if k not in ("routing_hint", "max_tokens", "max_completion_tokens")}
    # The caller's limit (max_completion_tokens wins) under the name this model takes; the
    # usage chunk the ledger needs; everything else exactly as sent.
    assert upstream == {**expected, "model": "up-model", field: 300,
                        "stream_options": {"include_usage": True}}
    legacy_only = {**BASES[CHAT], "max_tokens": 55}
    assert sent(builder("openai", client), CHAT, legacy_only, field=field)[1][field] == 55
    assert "max_tokens" not in sent(builder("openai", client), CHAT, BASES[CHAT])[1]


def test_values_that_ask_for_nothing_new_are_not_refused() -> None:
    chat = BASES[CHAT]
    for field, value in [("n", 1), ("logprobs", False), ("modalities", ["text"]),
                         ("parallel_tool_calls", True), ("logit_bias", {}),
                         ("frequency_penalty", 0), ("verbosity", "medium")]:
        assert refusals_for(CHAT, {**chat, field: value}, "gemini") == (), field
    assert [r.field for r in refusals_for(CHAT, {**chat, "n": True}, "anthropic")] == ["n"]


@pytest.mark.parametrize(("surface", "body", "kind", "field"), [
    (CHAT, {"temperature": 1.5}, "anthropic", "temperature"),
    (CHAT, {"reasoning_effort": "low", "max_completion_tokens": 1000}, "anthropic",
     "reasoning_effort"),
    (CHAT, {"reasoning_effort": "extreme"}, "gemini", "reasoning_effort"),
    (CHAT, {"response_format": {"type": "json_object"}, "tools": [OPENAI_TOOL]}, "anthropic",
     "response_format"),
    (CHAT, {"response_format": {"type": "json_object"}, "reasoning_effort": "low"}, "anthropic",
     "response_format"),
    (CHAT, {"response_format": {"type": "xml"}}, "gemini", "response_format"),
    (CHAT, {"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "anthropic", "tools"),
    (CHAT, {"stop": ["a", "b", "c", "d", "e", "f"]}, "gemini", "stop"),
    (MESSAGES, {"stop_sequences": ["a", "b", "c", "d", "e"]}, "openai", "stop_sequences"),
    (MESSAGES, {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "openai",
     "tools"),
    (MESSAGES, {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, "gemini",
     "tool_choice"),
    (MESSAGES, {"thinking": {"type": "telepathic"}}, "openai", "thinking"),
    (MESSAGES, {"output_config": {"format": {"type": "regex"}}}, "openai", "output_config"),
    (MESSAGES, {"output_config": {"verbosity": "low"}}, "gemini", "output_config"),
])  # fmt: skip
def test_some_values_of_a_translated_field_are_refused(surface: str, body: dict[str, Any],
                                                       kind: str, field: str) -> None:
    found = refusals_for(surface, {**BASES[surface], **body}, kind)
    assert [r.field for r in found] == [field]


def test_the_same_values_pass_where_the_target_can_take_them() -> None:
    assert refusals_for(CHAT, {**BASES[CHAT], "temperature": 1.5}, "gemini") == ()
    assert refusals_for(CHAT, {**BASES[CHAT], "reasoning_effort": "low",
                               "max_completion_tokens": 1025}, "anthropic") == ()
    assert refusals_for(CHAT, {**BASES[CHAT], "response_format": {"type": "json_object"}},
                        "anthropic") == ()
    assert refusals_for(MESSAGES, {**BASES[MESSAGES], "tool_choice": {
        "type": "auto", "disable_parallel_tool_use": True}}, "openai") == ()


@pytest.mark.parametrize(("surface", "body", "needs"), [
    (MESSAGES, {}, set()),
    (MESSAGES, {"tools": [ANTHROPIC_TOOL]}, {TOOLS}),
    (MESSAGES, {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
     {STRUCTURED_OUTPUT}),
    (MESSAGES, {"output_config": {"effort": "low"}}, {THINKING}),
    (MESSAGES, {"thinking": {"type": "adaptive"}}, {THINKING}),
    (MESSAGES, {"thinking": {"type": "disabled"}}, set()),
    (CHAT, {"response_format": {"type": "json_object"}}, {STRUCTURED_OUTPUT}),
    (CHAT, {"response_format": {"type": "text"}}, set()),
    (CHAT, {"reasoning_effort": "none"}, set()),
    (CHAT, {"reasoning_effort": "minimal", "functions": [{"name": "f"}]}, {THINKING, TOOLS}),
])  # fmt: skip
def test_capability_needs(surface: str, body: dict[str, Any], needs: set[str]) -> None:
    assert capability_needs(surface, {**BASES[surface], **body}) == needs


def test_docs_show_the_table_as_the_code_holds_it() -> None:
    """docs/gateway.md holds `python -m domain.protocols.fates` verbatim: rerun it and paste
    when the table changes."""
    assert markdown() in DOCS.read_text(), "docs/gateway.md's field table is out of date"


def test_both_tables_are_the_ones_in_fates() -> None:
    assert FATES == {MESSAGES: MESSAGES_FATES, CHAT: CHAT_FATES}
