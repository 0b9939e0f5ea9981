"""Canonical requests, responses and streams to and from Gemini generateContent."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from domain.protocols.canonical import IncompleteStream, UnsupportedRequest, UpstreamStreamError
from domain.protocols.gemini import canonical_to_gemini, gemini_to_canonical
from domain.protocols.gemini_stream import GeminiStreamToCanonical

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"city": {"type": "object", "properties": {"name": {"type": "string"}},
                            "additionalProperties": False}},
    "additionalProperties": False,
}  # fmt: skip
REQUEST: dict[str, Any] = {
    "model": "ignored",
    "max_tokens": 100,
    "temperature": 0.5,
    "top_k": 3,
    "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "Be brief."}],
    "tools": [
        {"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": {"name": "Paris"}}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}]},
    ],
}  # fmt: skip


def test_a_canonical_request_becomes_a_gemini_request() -> None:
    body = canonical_to_gemini(REQUEST)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": {"name": "Paris"}}}}]},
        {"role": "user", "parts": [
            # Gemini answers a tool by name; the name comes from the tool_use it answers.
            {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
    ]  # fmt: skip
    assert body["generationConfig"] == {"maxOutputTokens": 100, "temperature": 0.5, "topK": 3,
                                        "stopSequences": ["END"]}  # fmt: skip
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[0] == {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "object", "properties": {"name": {"type": "string"}}}}},
    }  # fmt: skip
    assert declarations[1] == {"name": "now"}  # Gemini refuses an empty object schema
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


def test_a_tool_result_for_an_unknown_call_is_refused() -> None:
    request = {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]}  # fmt: skip
    with pytest.raises(UnsupportedRequest):
        canonical_to_gemini(request)


def test_a_gemini_response_becomes_canonical() -> None:
    body = {
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": True},
            {"text": "It is "}, {"text": "sunny."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
            "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 30, "cachedContentTokenCount": 10,
                          "candidatesTokenCount": 8, "thoughtsTokenCount": 4},
        "modelVersion": "gemini-x-001",
        "responseId": "resp_1",
    }  # fmt: skip
    message, usage = gemini_to_canonical(body, "gemini-x")
    assert message["content"][0] == {"type": "text", "text": "It is sunny."}
    tool = message["content"][1]
    assert (tool["type"], tool["name"], tool["input"]) == (
        "tool_use",
        "get_weather",
        {"city": "Rome"},
    )
    assert tool["id"].startswith("toolu_")
    assert message["stop_reason"] == "tool_use"
    assert (message["id"], message["model"]) == ("resp_1", "gemini-x-001")
    assert usage == {"input_tokens": 20, "output_tokens": 12, "cache_read": 10, "cache_write": None}


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"),
     ("RECITATION", "refusal"), ("OTHER", "end_turn")],
)  # fmt: skip
def test_finish_reason_mapping(finish: str, stop_reason: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    message, usage = gemini_to_canonical(body, "m")
    assert message["stop_reason"] == stop_reason
    assert usage["input_tokens"] is None


def test_a_blocked_prompt_is_a_refusal_with_no_content() -> None:
    message, _ = gemini_to_canonical({"promptFeedback": {"blockReason": "SAFETY"}}, "m")
    assert (message["content"], message["stop_reason"]) == ([], "refusal")


def frame(parts: list[Any], finish: str | None = None, usage: bool = True) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "responseId": "resp_2"}
    if usage:
        body["usageMetadata"] = {"promptTokenCount": 9, "candidatesTokenCount": 3}
    return body


def test_stream_frames_become_canonical_events_the_anthropic_sdk_accumulates() -> None:
    translator = GeminiStreamToCanonical("gemini-x")
    frames = [
        frame([{"text": "Hello"}]),
        frame([{"text": " there"}]),
        frame([{"functionCall": {"name": "f", "args": {"a": 1}}}]),
        frame([{"text": ""}], finish="STOP"),
    ]
    events = [e for f in frames for e in translator.feed(f)] + translator.finish()
    snapshot = None
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs={})  # type: ignore[arg-type]
    assert snapshot is not None
    assert snapshot.content[0].text == "Hello there"  # type: ignore[union-attr]
    assert snapshot.content[1].input == {"a": 1}  # type: ignore[union-attr]
    assert snapshot.stop_reason == "tool_use"
    assert snapshot.model == "gemini-x"
    assert translator.usage["input_tokens"] == 9
    assert translator.usage["output_tokens"] == 3


def test_a_stream_without_usage_metadata_reports_unknown() -> None:
    translator = GeminiStreamToCanonical("g")
    translator.feed(frame([{"text": "x"}], finish="STOP", usage=False))
    events = translator.finish()
    assert translator.usage["input_tokens"] is None
    assert events[-2]["usage"] == {"output_tokens": 0}


def test_a_stream_without_finish_reason_is_incomplete() -> None:
    translator = GeminiStreamToCanonical("g")
    translator.feed(frame([{"text": "x"}]))
    with pytest.raises(IncompleteStream):
        translator.finish()


def test_an_error_frame_raises_with_its_code() -> None:
    with pytest.raises(UpstreamStreamError) as caught:
        GeminiStreamToCanonical("g").feed({"error": {"code": 503, "status": "UNAVAILABLE"}})
    assert (caught.value.error_type, caught.value.status) == ("UNAVAILABLE", 503)


def test_the_prompt_count_of_the_first_frame_reaches_message_start() -> None:
    translator = GeminiStreamToCanonical("g")
    first = {**frame([{"text": "Hi"}], usage=False),
             "usageMetadata": {"promptTokenCount": 21, "cachedContentTokenCount": 4}}
    start = translator.feed(first)[0]
    assert start["type"] == "message_start"
    assert start["message"]["usage"] == {"input_tokens": 17, "output_tokens": 0,
                                         "cache_read_input_tokens": 4}
    silent = GeminiStreamToCanonical("g").feed(frame([{"text": "Hi"}], usage=False))[0]
    assert silent["message"]["usage"] == {"input_tokens": 0, "output_tokens": 0}
