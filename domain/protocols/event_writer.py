"""Writes a well-formed canonical (Anthropic) event sequence for translators of other vendors'
streams: one `message_start`, blocks opened, filled and stopped one at a time with dense
indexes, then `message_delta` and `message_stop`. The Anthropic SDK looks blocks up by index
and raises on a stream that does not start with `message_start`, so the bookkeeping lives here
once rather than in each translator.
"""

from __future__ import annotations

from domain.protocols.canonical import JSON, Usage, new_message


class EventWriter:
    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self._open: int | None = None
        self._open_kind: str | None = None
        self._next = 0

    def start(self, message_id: str, model: str, usage: Usage | None = None) -> list[JSON]:
        """`usage`: what the upstream reported with its first frame, if anything."""
        self.started = True
        return [{"type": "message_start", "message": new_message(message_id, model, usage)}]

    def text(self, text: str) -> list[JSON]:
        events = [] if self._open_kind == "text" else self._begin({"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        events.append({"type": "content_block_delta", "index": self._open, "delta": delta})
        return events

    def tool_use(self, tool_id: str, name: str) -> tuple[int, list[JSON]]:
        """Opens a tool_use block; returns its index, to which `tool_input` sends fragments."""
        events = self._begin({"type": "tool_use", "id": tool_id, "name": name, "input": {}})
        assert self._open is not None
        return self._open, events

    @staticmethod
    def tool_input(index: int, partial_json: str) -> JSON:
        delta = {"type": "input_json_delta", "partial_json": partial_json}
        return {"type": "content_block_delta", "index": index, "delta": delta}

    def close(self) -> list[JSON]:
        if self._open is None:
            return []
        event = {"type": "content_block_stop", "index": self._open}
        self._open = self._open_kind = None
        return [event]

    def end(self, stop_reason: str, usage: Usage) -> list[JSON]:
        """Closes the open block and the message; unknown counts are left out of the final
        usage rather than reported as zero, except output_tokens, which the SDK requires."""
        self.ended = True
        final: JSON = {"output_tokens": usage["output_tokens"] or 0}
        if usage["input_tokens"] is not None:
            final["input_tokens"] = usage["input_tokens"]
        if usage["cache_read"] is not None:
            final["cache_read_input_tokens"] = usage["cache_read"]
        if usage["cache_write"] is not None:
            final["cache_creation_input_tokens"] = usage["cache_write"]
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        message_delta = {"type": "message_delta", "delta": delta, "usage": final}
        return [*self.close(), message_delta, {"type": "message_stop"}]

    def _begin(self, block: JSON) -> list[JSON]:
        events = self.close()
        self._open, self._open_kind = self._next, block["type"]
        self._next += 1
        events.append({"type": "content_block_start", "index": self._open, "content_block": block})
        return events
