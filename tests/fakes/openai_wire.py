"""OpenAI chat completions as the fake upstream speaks it: data-only chunks, a `choices: []`
usage chunk when the request asked for it, then `[DONE]`."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.wire import Vendor, json_pieces, pieces, sse

OPENAI_ERRORS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class OpenAI(Vendor):
    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.b.input_tokens,
            "completion_tokens": self.b.output_tokens,
            "total_tokens": self.b.input_tokens + self.b.output_tokens,
        }

    def _finish(self) -> str:
        return "tool_calls" if self.b.kind == "tool" else "stop"

    def message(self) -> Any:
        reply: dict[str, Any] = {
            "role": "assistant",
            "content": self.b.text or None,
            "refusal": None,
        }
        if self.b.kind == "tool":
            function = {"name": self.b.tool_name, "arguments": json.dumps(self.b.tool_input)}
            reply["tool_calls"] = [
                {"id": f"call_fake_{self.n}", "type": "function", "function": function}
            ]
        body = {
            "id": f"chatcmpl-fake{self.n}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.model,
            "choices": [
                {"index": 0, "message": reply, "finish_reason": self._finish(), "logprobs": None}
            ],
        }
        if self.b.usage:
            body["usage"] = self._usage()
        return body

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse(
            {
                "id": f"chatcmpl-fake{self.n}",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def frames(self) -> list[bytes]:
        frames = [self._chunk({"role": "assistant", "content": ""})]
        frames += [self._chunk({"content": piece}) for piece in pieces(self.b.text)]
        if self.b.kind == "tool":
            first = {
                "index": 0,
                "id": f"call_fake_{self.n}",
                "type": "function",
                "function": {"name": self.b.tool_name, "arguments": ""},
            }
            frames.append(self._chunk({"tool_calls": [first]}))
            for piece in json_pieces(self.b.tool_input):
                fragment = {"index": 0, "function": {"arguments": piece}}
                frames.append(self._chunk({"tool_calls": [fragment]}))
        frames.append(self._chunk({}, self._finish()))
        wants_usage = (self.request.get("stream_options") or {}).get("include_usage")
        if wants_usage and self.b.usage:
            frames.append(
                sse(
                    {
                        "id": f"chatcmpl-fake{self.n}",
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": self.model,
                        "choices": [],
                        "usage": self._usage(),
                    }
                )
            )
        frames.append(b"data: [DONE]\n\n")
        return frames

    def error_frame(self) -> bytes:
        error = {
            "message": self.b.error_message,
            "type": self.b.error_type or "server_error",
            "param": None,
            "code": None,
        }
        return sse({"error": error})

    def error_body(self, status: int, message: str) -> Any:
        kind = self.b.error_type or OPENAI_ERRORS.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}
