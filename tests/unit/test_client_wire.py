"""The HTTP edge's wire shapes (app/http/wire.py): what a parsed request carries for routing
and providers, and the stream frames a Chat Completions client gets from an upstream of its own
protocol."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.http.errors import InvalidRequestError
from app.http.wire import CHAT, MESSAGES, OpenAIEncoder, client_body, parse_request
from domain.protocols.canonical import NATIVE_FRAME


def parse(surface: str, body: dict[str, Any]) -> Any:
    return parse_request(surface, orjson.dumps(body))


def test_a_chat_request_keeps_its_own_body_and_invents_no_limit() -> None:
    body = {"model": "fake", "messages": [{"role": "user", "content": "hello"}],
            "logprobs": True, "routing_hint": {"min_quality": "0.6"}, "stream": True}
    request = parse(CHAT, body)
    assert request.body == {k: v for k, v in body.items() if k != "routing_hint"}
    assert request.routing_hint == {"min_quality": "0.6"}
    assert request.max_output_tokens is None
    assert request.text_size == len("hello")
    assert request.wire.surface == CHAT
    assert request.wire.body is request.body
    # logprobs: only an OpenAI-compatible backend can answer with them.
    assert {kind for kind, found in request.refusals.items() if found} == {"anthropic", "gemini"}


def test_a_messages_request_carries_needs_and_limit() -> None:
    request = parse(MESSAGES, {
        "model": "fake", "max_tokens": 99, "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "tools": [{"name": "t", "input_schema": {"type": "object"}}]})
    assert request.max_output_tokens == 99
    assert request.needs == {"tools", "structured_output", "thinking"}
    assert request.tool_count == 1
    assert all(found == () for found in request.refusals.values())


def test_a_chat_request_no_protocol_could_read_is_400_but_one_only_some_cannot_carry_is_not(
) -> None:
    # Named by the edge's checks (domain/protocols/validate.py) before any translation runs.
    with pytest.raises(InvalidRequestError, match=r"image_url\.url must be a string"):
        parse(CHAT, {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url"}]}]})
    audio = parse(CHAT, {"model": "m", "n": 2, "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]})
    assert audio.refusals["openai"] == ()


def test_a_native_chat_answer_is_returned_with_every_field() -> None:
    native = {"id": "chatcmpl-up", "object": "chat.completion", "model": "up-gpt",
              "system_fingerprint": "fp_1", "service_tier": "default",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                           "logprobs": {"content": []}, "finish_reason": "stop"}]}
    body = client_body(CHAT, {"content": []}, "chatcmpl-ours", "fake-gpt", native)
    assert body == {**native, "id": "chatcmpl-ours", "model": "fake-gpt"}


def chunk(**extra: Any) -> dict[str, Any]:
    return {"id": "up", "object": "chat.completion.chunk", "model": "up-gpt",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None,
                         "finish_reason": None}], **extra}


def frames(encoder: OpenAIEncoder, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the client gets from an upstream's own chunks, each followed (as the reader hands
    them on) by a canonical event read from it, which must not be written twice."""
    out = []
    for upstream in chunks:
        raw = encoder.encode({"type": NATIVE_FRAME, "frame": upstream})
        assert encoder.encode({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": "x"}}) == b""
        if raw:
            assert raw.startswith(b"data: ")
            assert raw.endswith(b"\n\n")
            out.append(orjson.loads(raw[len(b"data: "):]))
    return out


def test_native_frames_keep_the_upstreams_fields_with_our_id_and_model() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    upstream = [chunk(usage=None), {**chunk(usage=usage), "choices": []}]
    asked = frames(OpenAIEncoder("chatcmpl-ours", "fake-gpt", include_usage=True), upstream)
    assert asked == [{**upstream[0], "id": "chatcmpl-ours", "model": "fake-gpt"},
                     {**upstream[1], "id": "chatcmpl-ours", "model": "fake-gpt"}]
    # The caller did not ask for usage (the gateway did, for the ledger): no usage anywhere.
    unasked = frames(OpenAIEncoder("chatcmpl-ours", "fake-gpt", include_usage=False),
                     upstream)
    assert unasked == [{k: v for k, v in upstream[0].items() if k != "usage"}
                       | {"id": "chatcmpl-ours", "model": "fake-gpt"}]


def test_a_caller_that_asked_for_usage_gets_null_on_every_chunk_even_from_a_server_that_omits_it(
) -> None:
    [frame] = frames(OpenAIEncoder("c", "m", include_usage=True), [chunk()])
    assert "usage" in frame
    assert frame["usage"] is None


def test_without_upstream_frames_the_encoder_translates_canonical_events() -> None:
    encoder = OpenAIEncoder("c", "m", include_usage=False)
    start = {"type": "message_start", "message": {"id": "x", "type": "message",
                                                  "role": "assistant", "model": "u",
                                                  "content": [], "usage": {}}}
    assert encoder.encode(start) == b""  # the role chunk waits for the first block
    raw = encoder.encode({"type": "content_block_start", "index": 0,
                          "content_block": {"type": "text", "text": ""}})
    assert orjson.loads(raw[len(b"data: "):])["choices"][0]["delta"] == {
        "role": "assistant", "content": "", "refusal": None}
