"""Gemini `streamGenerateContent?alt=sse` frames to canonical (Anthropic) stream events.

Each frame is a partial `generateContent` response: text parts become text deltas; a
`functionCall` arrives whole, so it becomes a complete tool_use block (start, one input
fragment, stop). Usage metadata is cumulative, so the last frame's counts are the answer.
"""

from __future__ import annotations

import json

from domain.protocols.canonical import JSON, IncompleteStream, UpstreamStreamError, unknown_usage
from domain.protocols.event_writer import EventWriter
from domain.protocols.gemini import new_tool_id, stop_reason, usage_from_gemini


class GeminiStreamToCanonical:
    def __init__(self, model: str) -> None:
        self.usage = unknown_usage()
        self._model = model
        self._writer = EventWriter()
        self._finish: str | None = None
        self._called_tool = False

    def feed(self, frame: JSON) -> list[JSON]:
        error = frame.get("error")
        if error:
            code = error.get("code")
            raise UpstreamStreamError(
                str(error.get("status") or "api_error"),
                str(error.get("message", "")),
                code if isinstance(code, int) else None,
            )
        events: list[JSON] = []
        if frame.get("usageMetadata"):
            self.usage = usage_from_gemini(frame["usageMetadata"])
        if not self._writer.started:
            # Gemini counts the prompt in its first frame: message_start can carry it.
            model = str(frame.get("modelVersion") or self._model)
            events += self._writer.start(str(frame.get("responseId") or ""), model, self.usage)
        candidates = frame.get("candidates") or []
        if not candidates and (frame.get("promptFeedback") or {}).get("blockReason"):
            self._finish = "SAFETY"
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                events += self._part(part)
            if candidate.get("finishReason"):
                self._finish = candidate["finishReason"]
        return events

    def finish(self) -> list[JSON]:
        if self._finish is None:
            raise IncompleteStream("upstream stream ended without a finishReason")
        if self._writer.ended:
            return []
        return self._writer.end(stop_reason(self._finish, self._called_tool), self.usage)

    def _part(self, part: JSON) -> list[JSON]:
        if part.get("thought"):
            return []
        if part.get("text"):
            return self._writer.text(part["text"])
        if "functionCall" in part:
            call = part["functionCall"]
            self._called_tool = True
            index, events = self._writer.tool_use(call.get("id") or new_tool_id(), call["name"])
            events.append(self._writer.tool_input(index, json.dumps(call.get("args") or {})))
            return [*events, *self._writer.close()]
        return []
