"""OpenAI Chat Completions requests to and from the canonical (Anthropic Messages) request.

`openai_to_canonical` reads what a client sent to POST /v1/chat/completions, for a backend of
another protocol; `canonical_to_openai` writes what an OpenAI-compatible backend is sent for a
Messages request; `openai_passthrough` is what it is sent for a chat request: the client's own
body. System and developer messages become the canonical `system`; tool messages become
`tool_result` blocks in a user turn; assistant `tool_calls` become `tool_use` blocks; turns of
the same role are merged because Anthropic backends expect user and assistant to alternate.
Which fields translate, and to what, is `domain.protocols.fates`'s table; fields it refuses
never reach these functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.protocols.canonical import JSON, UnsupportedRequest, content_blocks, joined_text
from domain.protocols.structured import (
    anthropic_thinking,
    json_mode,
    openai_reasoning_effort,
    output_format_from_response_format,
    response_format_from_output_format,
)
from domain.protocols.surfaces import ROUTING_FIELDS


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A client's chat request in canonical form, plus what only the client side needs."""

    canonical: JSON
    include_usage: bool  # stream_options.include_usage: end the stream with a usage chunk
    json_mode: bool  # response_format json_object: any JSON object, no schema


def chat_limit(body: JSON) -> Any:
    """The caller's output token limit: `max_completion_tokens` wins over the legacy
    `max_tokens`; None when it sent neither."""
    limit = body.get("max_completion_tokens")
    return body.get("max_tokens") if limit is None else limit


def openai_to_canonical(body: JSON) -> ChatRequest:
    """The canonical request for a chat body. No limit is invented: `max_tokens` is present
    only when the caller sent one (an Anthropic backend adds its required default)."""
    if body.get("n", 1) not in (1, None):
        raise UnsupportedRequest("n must be 1", field="n")
    system: list[JSON] = []
    turns: list[JSON] = []
    for message in body.get("messages", []):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content")))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": joined_text(_text_blocks(message.get("content"))),
            }
            _append(turns, "user", [result])
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message))
        else:
            raise UnsupportedRequest(f"unsupported message role: {role!r}", field="messages")

    canonical: JSON = {"model": body.get("model"), "messages": turns}
    limit = chat_limit(body)
    if limit is not None:
        canonical["max_tokens"] = limit
    if system:
        canonical["system"] = system
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            canonical[name] = body[name]
    stop = body.get("stop")
    if stop:
        canonical["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        canonical["stream"] = True
    user = body.get("user") or body.get("safety_identifier")
    if user:
        canonical["metadata"] = {"user_id": user}
    tools = body.get("tools")
    if tools:
        canonical["tools"] = [_canonical_tool(tool) for tool in tools]
        choice = _canonical_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            canonical["tool_choice"] = choice
    effort = body.get("reasoning_effort")
    if effort is not None:
        canonical["thinking"] = anthropic_thinking(str(effort), limit)
    response_format = body.get("response_format")
    output_format = output_format_from_response_format(response_format)
    if output_format is not None:
        canonical["output_config"] = {"format": output_format}
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return ChatRequest(canonical, include_usage, json_mode(response_format))


def openai_passthrough(body: JSON, upstream_model: str, *, stream: bool,
                       max_tokens_field: str = "max_tokens") -> JSON:
    """The body an OpenAI-compatible backend gets for a chat request: the client's own, every
    field kept (known here or not), with the backend's model, the caller's limit under the
    name this model takes, and, when streaming, the usage chunk the ledger needs."""
    sent = {name: value for name, value in body.items() if name not in ROUTING_FIELDS}
    sent["model"] = upstream_model
    if "max_completion_tokens" in sent or "max_tokens" in sent:
        limit = chat_limit(sent)
        sent.pop("max_completion_tokens", None)
        sent.pop("max_tokens", None)
        if limit is not None:
            sent[max_tokens_field] = limit
    if stream:
        sent["stream"] = True
        sent["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return sent


def canonical_to_openai(
    request: JSON, upstream_model: str, *, stream: bool, max_tokens_field: str = "max_tokens"
) -> JSON:
    messages: list[JSON] = []
    system = joined_text(request.get("system"), "\n\n")
    if system:
        messages.append({"role": "system", "content": system})
    for turn in request.get("messages", []):
        if turn.get("role") == "assistant":
            messages.append(_openai_assistant(content_blocks(turn.get("content"))))
        else:
            messages.extend(_openai_user(content_blocks(turn.get("content"))))
    body: JSON = {"model": upstream_model, "messages": messages}
    if request.get("max_tokens") is not None:
        body[max_tokens_field] = request["max_tokens"]
    for name in ("temperature", "top_p"):
        if request.get(name) is not None:
            body[name] = request[name]
    if request.get("stop_sequences"):
        body["stop"] = list(request["stop_sequences"])
    user_id = (request.get("metadata") or {}).get("user_id")
    if user_id:
        body["user"] = user_id
    if request.get("tools"):
        body["tools"] = [_openai_tool(tool) for tool in request["tools"]]
        choice = request.get("tool_choice")
        if choice:
            body["tool_choice"] = _openai_tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                body["parallel_tool_calls"] = False
    effort = openai_reasoning_effort(request)
    if effort is not None:
        body["reasoning_effort"] = effort
    output_format = (request.get("output_config") or {}).get("format")
    if output_format is not None:
        body["response_format"] = response_format_from_output_format(output_format)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the ledger needs the token counts
    return body


def _append(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _text_blocks(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return content_blocks(content)
    blocks = []
    for part in content:
        if part.get("type") not in ("text", "refusal"):
            raise UnsupportedRequest(f"unsupported content part here: {part.get('type')!r}",
                                     field="messages")
        blocks.append({"type": "text", "text": part.get("text") or part.get("refusal", "")})
    return blocks


def _user_blocks(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return content_blocks(content)
    blocks = []
    for part in content:
        if part.get("type") == "image_url":
            blocks.append(_image_block(part["image_url"]["url"]))
        else:
            blocks.extend(_text_blocks([part]))
    return blocks


def _image_block(url: str) -> JSON:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";")[0]
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: JSON) -> list[JSON]:
    blocks = _text_blocks(message.get("content"))
    if message.get("refusal"):
        blocks.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            raise UnsupportedRequest("tool call arguments are not valid JSON",
                                     field="messages") from None
        if not isinstance(arguments, dict):
            raise UnsupportedRequest("tool call arguments must be a JSON object",
                                     field="messages")
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return blocks


def _canonical_tool(tool: JSON) -> JSON:
    if tool.get("type") != "function":
        raise UnsupportedRequest(f"unsupported tool type: {tool.get('type')!r}", field="tools")
    function = tool["function"]
    canonical = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        canonical["description"] = function["description"]
    return canonical


def _canonical_tool_choice(choice: Any, parallel: Any) -> JSON | None:
    if choice is None:
        result: JSON | None = None
    elif choice in ("auto", "none"):
        result = {"type": choice}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        result = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise UnsupportedRequest(f"unsupported tool_choice: {choice!r}", field="tool_choice")
    if parallel is False and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def _openai_assistant(blocks: list[JSON]) -> JSON:
    text = joined_text(blocks)
    message: JSON = {"role": "assistant", "content": text or None}
    calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block.get("input", {}))},
        }
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_user(blocks: list[JSON]) -> list[JSON]:
    """A user turn: its tool results become tool messages, which OpenAI wants first."""
    messages: list[JSON] = []
    parts: list[JSON] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_result":
            text = joined_text(block.get("content"))
            messages.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block["source"])}})
        else:
            raise UnsupportedRequest(f"an OpenAI-compatible backend cannot take {kind!r} blocks",
                                     field="messages")
    if parts:
        single_text = len(parts) == 1 and parts[0]["type"] == "text"
        messages.append({"role": "user", "content": parts[0]["text"] if single_text else parts})
    return messages


def _image_url(source: JSON) -> str:
    if source.get("type") == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if source.get("type") == "url":
        return str(source["url"])
    raise UnsupportedRequest(f"unsupported image source: {source.get('type')!r}",
                             field="messages")


def _openai_tool(tool: JSON) -> JSON:
    if "input_schema" not in tool:
        raise UnsupportedRequest(f"server tool {tool.get('name')!r} needs an Anthropic backend",
                                 field="tools")
    function: JSON = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: JSON) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind), "auto")
