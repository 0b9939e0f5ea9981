"""OpenAI `chat.completion` objects to and from the canonical (Anthropic) message.

`canonical_to_completion` answers a client of POST /v1/chat/completions; its `id` and
`model` are the caller's to set (the gateway uses its inference id and the model the client
asked for). `completion_to_canonical` reads an OpenAI-compatible backend's answer.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from domain.protocols.canonical import (
    JSON,
    TranslationError,
    Usage,
    anthropic_usage,
    joined_text,
    new_message,
    unknown_usage,
)

FINISH_REASON: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASON: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASON.get(stop_reason or "end_turn", "stop")


def openai_usage(usage: JSON) -> JSON:
    """OpenAI usage from an Anthropic `usage` object: OpenAI's prompt count includes cached
    input, Anthropic's does not."""
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (
        (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    )
    completion = usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def usage_from_openai(usage: JSON | None) -> Usage:
    """The ledger's usage from an OpenAI usage object; absent means unknown, never zero."""
    result = unknown_usage()
    if not usage:
        return result
    prompt = usage.get("prompt_tokens")
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if isinstance(cached, int):
        result["cache_read"] = cached
    if isinstance(prompt, int):
        result["input_tokens"] = prompt - (cached if isinstance(cached, int) else 0)
    if isinstance(usage.get("completion_tokens"), int):
        result["output_tokens"] = usage["completion_tokens"]
    return result


def tool_call(block: JSON) -> JSON:
    arguments = json.dumps(block.get("input", {}), separators=(",", ":"), ensure_ascii=False)
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


def canonical_to_completion(
    message: JSON, *, id: str | None = None, model: str | None = None, created: int | None = None
) -> JSON:
    content = message.get("content", [])
    reply: JSON = {
        "role": "assistant",
        "content": joined_text(content) or None,
        "refusal": None,
        "annotations": [],
    }
    calls = [tool_call(block) for block in content if block.get("type") == "tool_use"]
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": id or message.get("id"),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model or message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(message.get("usage") or {}),
    }


def completion_to_canonical(body: JSON) -> tuple[JSON, Usage]:
    """The canonical message and the reported usage of an upstream `chat.completion`."""
    choices = body.get("choices") or []
    if not choices:
        raise TranslationError("upstream chat.completion has no choices")
    reply: JSON = choices[0].get("message") or {}
    blocks: list[JSON] = []
    text = joined_text(reply.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    if reply.get("refusal"):
        blocks.append({"type": "text", "text": reply["refusal"]})
    for call in reply.get("tool_calls") or []:
        blocks.append(_tool_use(call))
    stop_reason = STOP_REASON.get(choices[0].get("finish_reason") or "stop", "end_turn")
    if reply.get("refusal"):
        stop_reason = "refusal"
    usage = usage_from_openai(body.get("usage"))
    message = new_message(str(body.get("id", "")), str(body.get("model", "")))
    message.update(content=blocks, stop_reason=stop_reason, usage=anthropic_usage(usage))
    return message, usage


def _tool_use(call: JSON) -> JSON:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise TranslationError(f"upstream tool call arguments are not JSON: {raw[:80]!r}") from None
    if not isinstance(arguments, dict):
        raise TranslationError("upstream tool call arguments are not a JSON object")
    return {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
            "input": arguments}  # fmt: skip
