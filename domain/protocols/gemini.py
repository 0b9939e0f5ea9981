"""Gemini `generateContent` requests and responses to and from the canonical form.

Gemini names the assistant `model`, calls tools by name without ids, and answers a tool with
`functionResponse{name}`: so canonical `tool_result` blocks find their tool's name through the
`tool_use` block they answer, and tool calls read from Gemini get ids minted here (or Gemini's
own `id`, when it sends one). The model is part of the URL, not the body. A Chat Completions
request goes through the canonical form, plus the sampling settings only Gemini shares with
OpenAI (`seed`, the penalties, `json_object`), read from the chat body (`chat_to_gemini`).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from domain.protocols.canonical import (
    JSON,
    UnsupportedRequest,
    Usage,
    anthropic_usage,
    content_blocks,
    joined_text,
    new_message,
    unknown_usage,
)
from domain.protocols.openai_request import openai_to_canonical
from domain.protocols.structured import gemini_thinking_budget

_REFUSALS: Final = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
# Schema keywords Gemini's OpenAPI-subset `parameters` rejects.
_SCHEMA_DROP: Final = frozenset({"$schema", "additionalProperties"})
_MODES: Final = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}


def new_tool_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


def canonical_to_gemini(request: JSON) -> JSON:
    names = {
        block["id"]: block["name"]
        for turn in request.get("messages", [])
        if turn.get("role") == "assistant"
        for block in content_blocks(turn.get("content"))
        if block.get("type") == "tool_use"
    }
    contents: list[JSON] = []
    for turn in request.get("messages", []):
        role = "model" if turn.get("role") == "assistant" else "user"
        parts = [_part(block, names) for block in content_blocks(turn.get("content"))]
        parts = [part for part in parts if part is not None]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": role, "parts": parts})
    body: JSON = {"contents": contents}
    system = joined_text(request.get("system"), "\n\n")
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config = {
        gemini: request[ours]
        for ours, gemini in (
            ("max_tokens", "maxOutputTokens"),
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("top_k", "topK"),
            ("stop_sequences", "stopSequences"),
        )
        if request.get(ours) is not None
    }
    output_format = (request.get("output_config") or {}).get("format")
    if output_format is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = output_format["schema"]
    budget = gemini_thinking_budget(request)
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    if config:
        body["generationConfig"] = config
    if request.get("tools"):
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request["tools"]]}]
        choice = request.get("tool_choice")
        if choice:
            calling: JSON = {"mode": _MODES.get(choice.get("type", "auto"), "AUTO")}
            if choice.get("type") == "tool":
                calling["allowedFunctionNames"] = [choice["name"]]
            body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def chat_to_gemini(body: JSON) -> JSON:
    """The body a Gemini backend gets for a Chat Completions request."""
    chat = openai_to_canonical(body)
    request = canonical_to_gemini(chat.canonical)
    config: JSON = request.get("generationConfig") or {}
    for theirs, gemini in (("seed", "seed"), ("frequency_penalty", "frequencyPenalty"),
                           ("presence_penalty", "presencePenalty")):
        if body.get(theirs) is not None:
            config[gemini] = body[theirs]
    if chat.json_mode:
        config["responseMimeType"] = "application/json"
    if config:
        request["generationConfig"] = config
    return request


def usage_from_gemini(metadata: JSON | None) -> Usage:
    usage = unknown_usage()
    if not metadata:
        return usage
    prompt = metadata.get("promptTokenCount")
    cached = metadata.get("cachedContentTokenCount")
    if isinstance(cached, int):
        usage["cache_read"] = cached
    if isinstance(prompt, int):
        usage["input_tokens"] = prompt - (cached if isinstance(cached, int) else 0)
    output = [metadata.get(k) for k in ("candidatesTokenCount", "thoughtsTokenCount")]
    if any(isinstance(n, int) for n in output):
        usage["output_tokens"] = sum(n for n in output if isinstance(n, int))
    return usage


def stop_reason(finish: str | None, called_tool: bool) -> str:
    if finish in _REFUSALS:
        return "refusal"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "tool_use" if called_tool else "end_turn"


def gemini_to_canonical(body: JSON, model: str) -> tuple[JSON, Usage]:
    """The canonical message and reported usage of a `generateContent` response."""
    candidates = body.get("candidates") or []
    candidate: JSON = candidates[0] if candidates else {}
    blocks: list[JSON] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue  # thought summaries are not part of the answer
        if part.get("text"):
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += part["text"]
            else:
                blocks.append({"type": "text", "text": part["text"]})
        elif "functionCall" in part:
            call = part["functionCall"]
            tool_id = call.get("id") or new_tool_id()
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": call["name"],
                    "input": call.get("args") or {},
                }
            )
    finish = candidate.get("finishReason")
    if not candidates and (body.get("promptFeedback") or {}).get("blockReason"):
        finish = "SAFETY"
    called = any(block["type"] == "tool_use" for block in blocks)
    usage = usage_from_gemini(body.get("usageMetadata"))
    message = new_message(str(body.get("responseId") or ""), str(body.get("modelVersion") or model))
    message.update(
        content=blocks, stop_reason=stop_reason(finish, called), usage=anthropic_usage(usage)
    )
    return message, usage


def _part(block: JSON, names: dict[str, str]) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]}
    if kind == "image":
        source = block["source"]
        if source.get("type") == "base64":
            return {"inlineData": {"mimeType": source["media_type"], "data": source["data"]}}
        return {"fileData": {"fileUri": source["url"]}}
    if kind == "tool_use":
        return {"functionCall": {"name": block["name"], "args": block.get("input") or {}}}
    if kind == "tool_result":
        name = names.get(block.get("tool_use_id", ""))
        if name is None:
            raise UnsupportedRequest(
                f"tool_result for unknown tool_use {block.get('tool_use_id')!r}", field="messages"
            )
        text = joined_text(block.get("content"))
        response = {"error": text} if block.get("is_error") else {"content": text}
        return {"functionResponse": {"name": name, "response": response}}
    if kind in ("thinking", "redacted_thinking"):
        return None  # another vendor's reasoning cannot be replayed to Gemini
    raise UnsupportedRequest(f"a Gemini backend cannot take {kind!r} blocks", field="messages")


def _declaration(tool: JSON) -> JSON:
    if "input_schema" not in tool:
        raise UnsupportedRequest(f"server tool {tool.get('name')!r} needs an Anthropic backend",
                                 field="tools")
    declaration: JSON = {"name": tool["name"]}
    if tool.get("description"):
        declaration["description"] = tool["description"]
    schema = _gemini_schema(tool["input_schema"])
    if schema.get("properties"):  # Gemini refuses an object schema with no properties
        declaration["parameters"] = schema
    return declaration


def _gemini_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _gemini_schema(v) for k, v in schema.items() if k not in _SCHEMA_DROP}
    if isinstance(schema, list):
        return [_gemini_schema(item) for item in schema]
    return schema
