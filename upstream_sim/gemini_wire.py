"""Gemini generateContent as the fake upstream speaks it: data-only partial responses."""

from __future__ import annotations

from typing import Any

from upstream_sim.wire import Vendor, pieces, sse

GEMINI_ERRORS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class Gemini(Vendor):
    request_id_header = ""

    def _frame(self, parts: list[Any], finish: str | None, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        frame: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": f"resp_fake_{self.n}",
        }
        if self.b.usage:
            usage = {"promptTokenCount": self.b.input_tokens}
            if final:
                usage["candidatesTokenCount"] = self.b.output_tokens
            usage["totalTokenCount"] = sum(usage.values())
            frame["usageMetadata"] = usage
        return frame

    def _call(self) -> dict[str, Any]:
        return {"functionCall": {"name": self.b.tool_name, "args": self.b.tool_input}}

    def message(self) -> Any:
        parts: list[Any] = [{"text": self.b.text}] if self.b.text else []
        if self.b.kind == "tool":
            parts.append(self._call())
        return self._frame(parts, "STOP", final=True)

    def frames(self) -> list[bytes]:
        frames = [sse(self._frame([{"text": piece}], None, False)) for piece in pieces(self.b.text)]
        if self.b.kind == "tool":
            frames.append(sse(self._frame([self._call()], None, False)))
        frames.append(sse(self._frame([{"text": ""}], "STOP", final=True)))
        return frames

    def error_frame(self) -> bytes:
        return sse(
            {"error": {"code": 503, "message": self.b.error_message, "status": "UNAVAILABLE"}}
        )

    def error_body(self, status: int, message: str) -> Any:
        kind = self.b.error_type or GEMINI_ERRORS.get(status, "UNKNOWN")
        return {"error": {"code": status, "message": message, "status": kind}}
