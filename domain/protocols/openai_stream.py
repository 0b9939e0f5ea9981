"""OpenAI `chat.completion.chunk` streams to and from canonical (Anthropic) stream events.

`CanonicalToChunks` serves a streaming client of POST /v1/chat/completions from a backend of
another protocol, the way OpenAI streams: the first chunk carries the role, with `content: ""`
before text or `content: null` with the first tool call of an answer that starts with one;
then content deltas and tool-call fragments (index, id, type and name in the first fragment of
each call, argument pieces after), a finish chunk, and a usage chunk with `choices: []` when
the client asked for `stream_options.include_usage`, in which case every chunk before it says
`"usage": null`. `ChunksToCanonical` reads an OpenAI-compatible backend's stream; its message
end waits for the usage chunk or `[DONE]`, since OpenAI sends usage after the finish reason.
Asked to (`native=True`), it also hands on every chunk as it came (`NATIVE_FRAME`, ahead of
the canonical events read from it), for a client of the same protocol.
"""

from __future__ import annotations

import time
from typing import Final

from domain.protocols.canonical import (
    JSON,
    NATIVE_FRAME,
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
        self._role_sent = False

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if kind == "message_start":
            # The role chunk waits for the first block: its `content` is "" before text and
            # null before a tool call, as OpenAI sends it.
            self._usage = dict(event["message"].get("usage") or {})
            return []
        if kind == "content_block_start":
            return self._block_start(event["index"], event["content_block"])
        if kind == "content_block_delta":
            return self._delta(event["index"], event["delta"])
        if kind == "message_delta":
            self._usage.update(event.get("usage") or {})
            reason = finish_reason(event["delta"].get("stop_reason"))
            return [*self._role({"content": ""}), self._chunk({}, reason)]
        if kind == "message_stop" and self._include_usage:
            return [{**self._chunk({}), "choices": [], "usage": openai_usage(self._usage)}]
        return []

    def _role(self, first: JSON) -> list[JSON]:
        if self._role_sent:
            return []
        self._role_sent = True
        return [self._chunk({"role": "assistant", **first, "refusal": None})]

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
            if not self._role_sent:
                return self._role({"content": None, "tool_calls": [call]})
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text":
            chunks = self._role({"content": ""})
            if block.get("text"):
                chunks.append(self._chunk({"content": block["text"]}))
            return chunks
        return []  # thinking blocks have no Chat Completions counterpart

    def _delta(self, index: int, delta: JSON) -> list[JSON]:
        if delta.get("type") == "text_delta" and delta["text"]:
            return [*self._role({"content": ""}), self._chunk({"content": delta["text"]})]
        if (
            delta.get("type") == "input_json_delta"
            and delta["partial_json"]
            and index in self._tools
        ):
            call = {"index": self._tools[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking and signature deltas have no Chat Completions counterpart

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None  # OpenAI: null on every chunk but the usage chunk
        return chunk


class ChunksToCanonical:
    def __init__(self, *, native: bool = False) -> None:
        self.usage = unknown_usage()
        self._native = native
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
        # The frame goes first, so an encoder passing frames on sees it before any event.
        events: list[JSON] = [{"type": NATIVE_FRAME, "frame": chunk}] if self._native else []
        if chunk.get("usage"):
            self.usage = usage_from_openai(chunk["usage"])
        if not self._writer.started:
            # Servers that count as they go (vLLM's continuous usage stats) report the prompt
            # in their first chunk: message_start can carry it.
            events += self._writer.start(str(chunk.get("id", "")), str(chunk.get("model", "")),
                                         self.usage)
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
