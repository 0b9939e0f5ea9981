"""OpenAI chat completions as the fake upstream speaks it: data-only chunks (`"usage": null` on
each when usage was asked for; the first delta's `content` is "" before text and null before a
tool call), a `choices: []` usage chunk when the request asked for it, then `[DONE]`. Bodies
and chunks carry a `system_fingerprint`, and token `logprobs` when the request asked for them:
fields only an OpenAI-shaped answer has, so a test can see whether the client got the
upstream's own answer."""

from __future__ import annotations

import json
from typing import Any

from upstream_sim.wire import Vendor, json_pieces, pieces, sse

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
        logprobs = {"content": self._logprobs(self.b.text), "refusal": None} \
            if self._wants_logprobs() else None
        body = {
            "id": f"chatcmpl-fake{self.n}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": reply, "finish_reason": self._finish(),
                 "logprobs": logprobs}
            ],
        }
        if self.b.usage:
            body["usage"] = self._usage()
        return body

    def _wants_logprobs(self) -> bool:
        return bool(self.request.get("logprobs"))

    def _wants_usage(self) -> bool:
        return bool((self.request.get("stream_options") or {}).get("include_usage"))

    @staticmethod
    def _logprobs(text: str) -> list[dict[str, Any]]:
        return [{"token": piece, "logprob": -0.25, "bytes": list(piece.encode()),
                 "top_logprobs": []} for piece in pieces(text)]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None,
               logprobs: Any = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-fake{self.n}",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs,
                         "finish_reason": finish}],
        }
        if self._wants_usage():
            chunk["usage"] = None
        return sse(chunk)

    def frames(self) -> list[bytes]:
        first_call = {
            "index": 0,
            "id": f"call_fake_{self.n}",
            "type": "function",
            "function": {"name": self.b.tool_name, "arguments": ""},
        }
        if self.b.kind == "tool" and not self.b.text:
            # A tool-call-only answer: content is null in the first delta, with the call.
            frames = [self._chunk({"role": "assistant", "content": None,
                                   "tool_calls": [first_call], "refusal": None})]
        else:
            frames = [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        for piece in pieces(self.b.text):
            logprobs = {"content": self._logprobs(piece), "refusal": None} \
                if self._wants_logprobs() else None
            frames.append(self._chunk({"content": piece}, logprobs=logprobs))
        if self.b.kind == "tool":
            if self.b.text:
                frames.append(self._chunk({"tool_calls": [first_call]}))
            for piece in json_pieces(self.b.tool_input):
                fragment = {"index": 0, "function": {"arguments": piece}}
                frames.append(self._chunk({"tool_calls": [fragment]}))
        frames.append(self._chunk({}, self._finish()))
        if self._wants_usage() and self.b.usage:
            frames.append(
                sse(
                    {
                        "id": f"chatcmpl-fake{self.n}",
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": self.model,
                        "system_fingerprint": "fp_fake",
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
