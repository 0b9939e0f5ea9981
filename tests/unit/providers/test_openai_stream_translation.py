"""Canonical stream events to and from `chat.completion.chunk` streams, checked with the
official SDKs' own accumulators so what we emit is what their clients can consume."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from domain.protocols.canonical import IncompleteStream, MessageAccumulator, UpstreamStreamError
from domain.protocols.openai_stream import CanonicalToChunks, ChunksToCanonical


def canonical_tool_stream(usage_in_delta: dict[str, Any]) -> list[dict[str, Any]]:
    """The shape of the SDK fixture tool_use_response.txt."""
    return [
        {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 377, "output_tokens": 1, "cache_read_input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "I'll"}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": " check."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '{"locati'}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": 'on": "Paris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": usage_in_delta},
        {"type": "message_stop"},
    ]  # fmt: skip


def to_chunks(events: list[dict[str, Any]], include_usage: bool) -> list[dict[str, Any]]:
    translator = CanonicalToChunks(id="chatcmpl-ours", model="asked", created=5,
                                   include_usage=include_usage)  # fmt: skip
    return [chunk for event in events for chunk in translator.feed(event)]


def test_chunks_follow_the_openai_order_and_accumulate_in_the_sdk() -> None:
    chunks = to_chunks(canonical_tool_stream({"output_tokens": 65}), include_usage=True)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                                 "refusal": None}  # as OpenAI sends it
    first_call = chunks[3]["choices"][0]["delta"]["tool_calls"][0]
    assert first_call == {"index": 0, "id": "toolu_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 380  # cached input counts as prompt
    assert chunks[-1]["usage"]["completion_tokens"] == 65

    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        assert chunk["id"] == "chatcmpl-ours"
        assert chunk["model"] == "asked"
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "I'll check."
    [call] = message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"location": "Paris"}'
    assert final.usage is not None
    assert final.usage.total_tokens == 445


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    chunks = to_chunks(canonical_tool_stream({"output_tokens": 65}), include_usage=False)
    assert all(chunk["choices"] for chunk in chunks)
    assert "usage" not in chunks[-1]


def upstream_chunks(with_usage: bool) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-x", "choices": [{"index": 0, "delta": delta,
                                               "finish_reason": finish}]}  # fmt: skip

    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Two"}),
        chunk({"content": " calls."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    ]  # fmt: skip
    if with_usage:
        chunks.append({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
                       "model": "gpt-x", "choices": [],
                       "usage": {"prompt_tokens": 40, "completion_tokens": 12,
                                 "total_tokens": 52}})  # fmt: skip
    return chunks


def to_canonical(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ChunksToCanonical]:
    translator = ChunksToCanonical()
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    return events + translator.finish(), translator


def test_upstream_chunks_become_canonical_events_the_anthropic_sdk_accumulates() -> None:
    events, translator = to_canonical(upstream_chunks(with_usage=True))
    assert [e["type"] for e in events[:2]] == ["message_start", "content_block_start"]
    assert events[-1] == {"type": "message_stop"}
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    assert [block.type for block in snapshot.content] == ["text", "tool_use", "tool_use"]
    assert snapshot.content[0].text == "Two calls."  # type: ignore[union-attr]
    assert snapshot.content[1].input == {"x": 1}  # type: ignore[union-attr]
    assert snapshot.content[2].id == "call_b"  # type: ignore[union-attr]
    assert snapshot.stop_reason == "tool_use"
    assert snapshot.usage.output_tokens == 12
    assert translator.usage == {"input_tokens": 40, "output_tokens": 12, "cache_read": None,
                                "cache_write": None}  # fmt: skip


def test_a_stream_without_usage_reports_unknown_not_zero() -> None:
    events, translator = to_canonical(upstream_chunks(with_usage=False))
    assert translator.usage["input_tokens"] is None
    assert translator.usage["output_tokens"] is None
    assert events[-2]["usage"] == {"output_tokens": 0}  # the SDK requires an integer here


def test_done_then_end_of_body_ends_the_message_once() -> None:
    translator = ChunksToCanonical()
    for chunk in upstream_chunks(with_usage=True):
        translator.feed(chunk)
    assert [e["type"] for e in translator.finish()] == ["message_delta", "message_stop"]
    assert translator.finish() == []


def test_a_stream_cut_before_its_finish_reason_is_incomplete() -> None:
    translator = ChunksToCanonical()
    for chunk in upstream_chunks(with_usage=False)[:4]:
        translator.feed(chunk)
    with pytest.raises(IncompleteStream):
        translator.finish()


def test_an_error_chunk_raises_with_the_status_it_implies() -> None:
    translator = ChunksToCanonical()
    with pytest.raises(UpstreamStreamError) as caught:
        translator.feed({"error": {"message": "boom", "type": "server_error", "code": None}})
    assert (caught.value.error_type, caught.value.status) == ("server_error", 500)


def test_round_trip_canonical_to_chunks_and_back_keeps_the_message() -> None:
    original = canonical_tool_stream({"output_tokens": 65})
    chunks = to_chunks(original, include_usage=True)
    events, _ = to_canonical(chunks)
    before, after = MessageAccumulator(), MessageAccumulator()
    for event in original:
        before.feed(event)
    for event in events:
        after.feed(event)
    assert before.message is not None
    assert after.message is not None
    assert after.message["content"] == before.message["content"]
    assert after.message["stop_reason"] == "tool_use"


def test_with_include_usage_every_chunk_before_the_usage_chunk_says_usage_null() -> None:
    chunks = to_chunks(canonical_tool_stream({"output_tokens": 65}), include_usage=True)
    assert all("usage" in chunk and chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens"] == 65
    without = to_chunks(canonical_tool_stream({"output_tokens": 65}), include_usage=False)
    assert all("usage" not in chunk for chunk in without)


def message_start() -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1}}}


def test_a_tool_call_only_answer_starts_with_null_content() -> None:
    events = [
        message_start(),
        {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {
            "output_tokens": 5}},
        {"type": "message_stop"},
    ]  # fmt: skip
    chunks = to_chunks(events, include_usage=False)
    first = chunks[0]["choices"][0]["delta"]
    assert first == {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        {"index": 0, "id": "toolu_1", "type": "function",
         "function": {"name": "f", "arguments": ""}}]}  # fmt: skip
    assert not any(chunk["choices"][0]["delta"].get("content") == "" for chunk in chunks)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    message = state.get_final_completion().choices[0].message
    assert message.content is None  # no empty text part for the client to show
    assert [c.function.name for c in message.tool_calls or []] == ["f"]


def test_thinking_before_the_text_delays_the_role_chunk_to_the_text() -> None:
    events = [
        message_start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
            "output_tokens": 5}},
        {"type": "message_stop"},
    ]  # fmt: skip
    deltas = [chunk["choices"][0]["delta"] for chunk in to_chunks(events, include_usage=False)]
    assert deltas == [{"role": "assistant", "content": "", "refusal": None}, {"content": "Hi"},
                      {}]


def test_an_empty_answer_still_gets_its_role_chunk() -> None:
    events = [message_start(), {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                "usage": {"output_tokens": 0}}, {"type": "message_stop"}]
    chunks = to_chunks(events, include_usage=False)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                                "refusal": None}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"


def test_a_prompt_count_in_the_first_chunk_reaches_message_start() -> None:
    chunks = upstream_chunks(with_usage=False)
    chunks[0] = {**chunks[0], "usage": {"prompt_tokens": 40, "completion_tokens": 0,
                                        "total_tokens": 40}}
    events, _ = to_canonical(chunks)
    assert events[0]["message"]["usage"]["input_tokens"] == 40
    plain, _ = to_canonical(upstream_chunks(with_usage=True))
    assert plain[0]["message"]["usage"]["input_tokens"] == 0  # not known yet: 0, as the SDK needs


def test_native_frames_come_ahead_of_the_events_read_from_them_only_when_asked() -> None:
    from domain.protocols.canonical import NATIVE_FRAME

    chunks = upstream_chunks(with_usage=True)
    native = ChunksToCanonical(native=True)
    events = [event for chunk in chunks for event in native.feed(chunk)]
    frames = [event["frame"] for event in events if event["type"] == NATIVE_FRAME]
    assert frames == chunks  # every upstream chunk, as it came, in order
    # Each frame first, so an encoder passing frames on sees one before any canonical event.
    assert events[0] == {"type": NATIVE_FRAME, "frame": chunks[0]}
    assert events[1]["type"] == "message_start"
    plain = ChunksToCanonical()
    assert not any(e["type"] == NATIVE_FRAME for chunk in chunks for e in plain.feed(chunk))
    accumulated = MessageAccumulator()
    for event in events + native.finish():
        accumulated.feed(event)  # the accumulator skips the frames
    assert accumulated.message is not None
    assert accumulated.message["content"][0] == {"type": "text", "text": "Two calls."}
