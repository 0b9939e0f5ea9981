"""Anthropic Messages as the fake upstream speaks it: `event:` lines, a ping, usage optional,
and a thinking block first when the request turned thinking on."""

from __future__ import annotations

from typing import Any

from upstream_sim.wire import Vendor, json_pieces, pieces, sse

ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


THINKING = {"type": "thinking", "thinking": "Considering the question.", "signature": "sig_fake"}


class Anthropic(Vendor):
    request_id_header = "request-id"

    def _usage(self, output: int) -> dict[str, int]:
        return {
            "input_tokens": self.b.input_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _message(self, content: list[Any], stop: str | None, output: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": f"msg_fake_{self.n}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
        }
        if self.b.usage:
            message["usage"] = self._usage(output)
        return message

    def _stop(self) -> str:
        return "tool_use" if self.b.kind == "tool" else "end_turn"

    def _thinks(self) -> bool:
        return (self.request.get("thinking") or {}).get("type") in ("enabled", "adaptive")

    def message(self) -> Any:
        content: list[Any] = [THINKING] if self._thinks() else []
        content += [{"type": "text", "text": self.b.text}] if self.b.text else []
        if self.b.kind == "tool":
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake_{self.n}",
                    "name": self.b.tool_name,
                    "input": self.b.tool_input,
                }
            )
        return self._message(content, self._stop(), self.b.output_tokens)

    def frames(self) -> list[bytes]:
        start = {"type": "message_start", "message": self._message([], None, 1)}
        frames = [sse(start, "message_start")]
        index = 0
        if self._thinks():
            block = {"type": "thinking", "thinking": "", "signature": ""}
            frames.append(sse({"type": "content_block_start", "index": 0, "content_block": block},
                              "content_block_start"))
            frames.append(self._delta(0, {"type": "thinking_delta",
                                          "thinking": THINKING["thinking"]}))
            frames.append(self._delta(0, {"type": "signature_delta",
                                          "signature": THINKING["signature"]}))
            frames.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            index = 1
        if self.b.text:
            block = {"type": "text", "text": ""}
            frames.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": block},
                    "content_block_start",
                )
            )
            frames.append(sse({"type": "ping"}, "ping"))
            for piece in pieces(self.b.text):
                frames.append(self._delta(index, {"type": "text_delta", "text": piece}))
            frames.append(sse({"type": "content_block_stop", "index": index},
                              "content_block_stop"))
            index += 1
        if self.b.kind == "tool":
            tool_block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_fake_{self.n}",
                "name": self.b.tool_name,
                "input": {},
            }
            frames.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": tool_block},
                    "content_block_start",
                )
            )
            for piece in ["", *json_pieces(self.b.tool_input)]:
                frames.append(
                    self._delta(index, {"type": "input_json_delta", "partial_json": piece})
                )
            frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        end: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(), "stop_sequence": None},
        }
        if self.b.usage:
            end["usage"] = {"output_tokens": self.b.output_tokens}
        frames.append(sse(end, "message_delta"))
        frames.append(sse({"type": "message_stop"}, "message_stop"))
        return frames

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse(
            {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
        )

    def error_frame(self) -> bytes:
        error = {"type": self.b.error_type or "overloaded_error", "message": self.b.error_message}
        return sse({"type": "error", "error": error}, "error")

    def error_body(self, status: int, message: str) -> Any:
        kind = self.b.error_type or ANTHROPIC_ERRORS.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": self.request_id,
        }
