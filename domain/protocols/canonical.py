"""The canonical form every vendor shape is translated to and from: Anthropic Messages dicts.

A canonical request is an Anthropic Messages request body, a canonical response an Anthropic
message object, a canonical stream the sequence of Anthropic stream events. This module holds
what all translations share: the usage record the ledger keeps, content helpers, an accumulator
that rebuilds a message from its events, and the errors translation raises. Pure: no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any, Final, TypedDict

JSON = dict[str, Any]
# Not an Anthropic event: an upstream frame already in the caller's own protocol, riding after
# the canonical events read from it, so a same-protocol stream reaches the client as the
# upstream sent it (logprobs, annotations and all). Only readers asked for it emit it;
# everything that reads canonical events skips it.
NATIVE_FRAME: Final = "ainfera.native_frame"


class Usage(TypedDict):
    """Token counts as the upstream reported them; None means the upstream did not say.

    `input_tokens` excludes cached input (Anthropic's convention), so the four add up to the
    whole prompt plus completion with nothing counted twice.
    """

    input_tokens: int | None
    output_tokens: int | None
    cache_read: int | None
    cache_write: int | None


def unknown_usage() -> Usage:
    return {"input_tokens": None, "output_tokens": None, "cache_read": None, "cache_write": None}


def merge_anthropic_usage(usage: Usage, reported: JSON | None) -> None:
    """Folds an Anthropic `usage` object into `usage`; keys it lacks keep their value.

    Stream `message_delta` counts are cumulative, so the latest value wins.
    """
    if not reported:
        return

    def pick(key: str, current: int | None) -> int | None:
        value = reported.get(key)
        return value if isinstance(value, int) else current

    usage["input_tokens"] = pick("input_tokens", usage["input_tokens"])
    usage["output_tokens"] = pick("output_tokens", usage["output_tokens"])
    usage["cache_read"] = pick("cache_read_input_tokens", usage["cache_read"])
    usage["cache_write"] = pick("cache_creation_input_tokens", usage["cache_write"])


def anthropic_usage(usage: Usage) -> JSON:
    """The Anthropic `usage` object for a usage record; unknown counts become 0 because the
    SDKs require integers there (the ledger keeps the None)."""
    return {
        "input_tokens": usage["input_tokens"] or 0,
        "output_tokens": usage["output_tokens"] or 0,
        "cache_creation_input_tokens": usage["cache_write"],
        "cache_read_input_tokens": usage["cache_read"],
    }


def content_blocks(content: str | list[JSON] | None) -> list[JSON]:
    """Message content as a list of blocks: Anthropic allows a bare string for one text block."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def joined_text(content: str | Iterable[JSON] | None, sep: str = "") -> str:
    """The text of a content value (string or blocks), ignoring non-text blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return sep.join(b.get("text", "") for b in content if b.get("type") == "text")


def new_message(message_id: str, model: str, usage: Usage | None = None) -> JSON:
    """The message object of a `message_start` event: empty content, no stop reason yet.

    Its input counts are the upstream's when it reported them this early (Gemini does in its
    first frame), else 0 as the SDKs require integers there; the ledger keeps the unknown."""
    counts: JSON = {"input_tokens": 0, "output_tokens": 0}
    if usage is not None:
        if usage["input_tokens"] is not None:
            counts["input_tokens"] = usage["input_tokens"]
        if usage["cache_read"] is not None:
            counts["cache_read_input_tokens"] = usage["cache_read"]
        if usage["cache_write"] is not None:
            counts["cache_creation_input_tokens"] = usage["cache_write"]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": counts,
    }


class MessageAccumulator:
    """Rebuilds the final canonical message from canonical stream events.

    Lets a caller digest or store what a stream said without a second code path; tool input
    arrives as JSON fragments and is parsed once its block stops.
    """

    def __init__(self) -> None:
        self.message: JSON | None = None
        self._partial_json: dict[int, str] = {}

    def feed(self, event: JSON) -> None:
        kind = event.get("type")
        if kind == NATIVE_FRAME:
            return
        if kind == "message_start":
            self.message = copy.deepcopy(event["message"])
            return
        message = self.message
        if message is None:
            raise IncompleteStream("stream did not begin with message_start")
        if kind == "content_block_start":
            block = dict(event["content_block"])
            content: list[JSON] = message["content"]
            content.extend({} for _ in range(event["index"] + 1 - len(content)))
            content[event["index"]] = block
        elif kind == "content_block_delta":
            self._apply_delta(message["content"][event["index"]], event["index"], event["delta"])
        elif kind == "content_block_stop":
            raw = self._partial_json.pop(event["index"], None)
            if raw:
                message["content"][event["index"]]["input"] = json.loads(raw)
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"].get("stop_reason")
            message["stop_sequence"] = event["delta"].get("stop_sequence")
            message.setdefault("usage", {}).update(event.get("usage") or {})

    def _apply_delta(self, block: JSON, index: int, delta: JSON) -> None:
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta["text"]
        elif kind == "input_json_delta":
            self._partial_json[index] = self._partial_json.get(index, "") + delta["partial_json"]
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]


class TranslationError(ValueError):
    """A body that cannot be expressed in the target wire shape."""


class UnsupportedRequest(TranslationError):
    """A client request using something the target protocol cannot carry (e.g. n > 1);
    `field` names the request field at fault, when one is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IncompleteStream(TranslationError):
    """An upstream stream that ended before its terminal event."""


class UpstreamStreamError(TranslationError):
    """An error the upstream reported inside a 200 stream (an `error` event or frame).

    `status` is the HTTP status the same error would have had as a response, when known, so
    the adapter can classify it exactly as it would a non-streamed error.
    """

    def __init__(self, error_type: str, message: str, status: int | None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.status = status


def request_text_size(canonical: JSON) -> int:
    """Characters of text the model will read: what input estimates are made from. Images and
    documents are left out, since their base64 length says nothing about their token count."""
    size = len(_texts(canonical.get("system")))
    for message in canonical.get("messages", []):
        size += len(_texts(message.get("content")))
    for tool in canonical.get("tools") or []:
        size += len(_compact(tool).encode())
    return size


def chat_text_size(body: JSON) -> int:
    """`request_text_size` of a Chat Completions body, read in its own shape (it reaches an
    OpenAI backend untranslated, so it is never turned canonical just to be measured)."""
    size = 0
    for message in body.get("messages", []):
        size += len(_texts(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            size += len(str((function or {}).get("arguments") or ""))
    for tool in body.get("tools") or body.get("functions") or []:
        size += len(_compact(tool).encode())
    return size


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(_compact(block.get("input")))
        elif kind == "tool_result":
            parts.append(_texts(block.get("content")))
    return "".join(parts)


def _compact(value: Any) -> str:
    # The same text orjson would write (no spaces, UTF-8 kept), so estimates do not move.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
