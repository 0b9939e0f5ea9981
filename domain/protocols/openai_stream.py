"""OpenAI `chat.completion.chunk` streams to and from canonical (Anthropic) stream events.

`CanonicalToChunks` serves a streaming client of POST /v1/chat/completions: a role chunk
first, content deltas, tool-call fragments (index, id, type and name in the first fragment of
each call, argument pieces after), a finish chunk, then a usage chunk with `choices: []` when
the client asked for `stream_options.include_usage`. `ChunksToCanonical` reads an
OpenAI-compatible backend's stream; its message end waits for the usage chunk or `[DONE]`,
since OpenAI sends usage after the finish reason.
"""

from __future__ import annotations

import time
from typing import Final

from domain.protocols.canonical import (
    JSON,
    IncompleteStream,
    UpstreamStreamError,
    unknown_usage,
)
from domain.protocols.event_writer import EventWriter
from domain.protocols.openai_response import (
    STOP_REASON,
    finish_reason,
    openai_usage,
    usage_from_openai,
)

_ERROR_STATUS: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "server_error": 500,
    "api_error": 500,
}


class CanonicalToChunks:
    def __init__(
        self, *, id: str, model: str, created: int | None = None, include_usage: bool = False
    ) -> None:
        self._id = id
        self._model = model
        self._created = created if created is not None else int(time.time())
        self._include_usage = include_usage
        self._tools: dict[int, int] = {}  # canonical block index -> OpenAI tool-call index
        self._usage: JSON = {}

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if kind == "message_start":
            self._usage = dict(event["message"].get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event["index"], event["content_block"])
        if kind == "content_block_delta":
            return self._delta(event["index"], event["delta"])
        if kind == "message_delta":
            self._usage.update(event.get("usage") or {})
            reason = finish_reason(event["delta"].get("stop_reason"))
            return [self._chunk({}, reason)]
        if kind == "message_stop" and self._include_usage:
            return [{**self._chunk({}), "choices": [], "usage": openai_usage(self._usage)}]
        return []

    def _block_start(self, index: int, block: JSON) -> list[JSON]:
        if block.get("type") == "tool_use":
            call_index = self._tools[index] = len(self._tools)
            function = {"name": block["name"], "arguments": ""}
            call = {
                "index": call_index,
                "id": block["id"],
                "type": "function",
                "function": function,
            }
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _delta(self, index: int, delta: JSON) -> list[JSON]:
        if delta.get("type") == "text_delta" and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        if (
            delta.get("type") == "input_json_delta"
            and delta["partial_json"]
            and index in self._tools
        ):
            call = {"index": self._tools[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking and signature deltas have no Chat Completions counterpart

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }


class ChunksToCanonical:
    def __init__(self) -> None:
        self.usage = unknown_usage()
        self._writer = EventWriter()
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> canonical block index
        self._finish: str | None = None
        self._refusal = False

    def feed(self, chunk: JSON) -> list[JSON]:
        error = chunk.get("error")
        if error:
            error = error if isinstance(error, dict) else {"message": str(error)}
            error_type = str(error.get("type") or "api_error")
            code = error.get("code")
            status = code if isinstance(code, int) else _ERROR_STATUS.get(error_type)
            raise UpstreamStreamError(error_type, str(error.get("message", "")), status)
        events: list[JSON] = []
        if not self._writer.started:
            events += self._writer.start(str(chunk.get("id", "")), str(chunk.get("model", "")))
        if chunk.get("usage"):
            self.usage = usage_from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def finish(self) -> list[JSON]:
        """Ends the message at `[DONE]` or end of body; a stream that never gave a finish
        reason was cut short."""
        if self._finish is None:
            raise IncompleteStream("upstream stream ended without a finish_reason")
        if self._writer.ended:
            return []
        stop = "refusal" if self._refusal else STOP_REASON.get(self._finish, "end_turn")
        return self._writer.end(stop, self.usage)

    def _choice(self, choice: JSON) -> list[JSON]:
        events: list[JSON] = []
        delta = choice.get("delta") or {}
        if delta.get("refusal"):
            self._refusal = True
        text = delta.get("content") or delta.get("refusal")
        if text:
            events += self._writer.text(text)
        for call in delta.get("tool_calls") or []:
            events += self._tool_fragment(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            events += self._writer.close()
        return events

    def _tool_fragment(self, call: JSON) -> list[JSON]:
        events: list[JSON] = []
        call_index = call.get("index", 0)
        function = call.get("function") or {}
        if call_index not in self._tools:
            tool_id = call.get("id") or f"call_{call_index}"
            block, events = self._writer.tool_use(tool_id, function.get("name", ""))
            self._tools[call_index] = block
        if function.get("arguments"):
            events.append(self._writer.tool_input(self._tools[call_index], function["arguments"]))
        return events
