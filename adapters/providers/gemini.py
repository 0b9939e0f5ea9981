"""Gemini backends (POST {base_url}/v1beta/models/{model}:generateContent, and
:streamGenerateContent?alt=sse for data-only SSE). The API key goes in `x-goog-api-key`, not
the query string, so it never lands in an access log. Gemini sends no request-id header; the
upstream request id is the response's `responseId`.
"""

from __future__ import annotations

from urllib.parse import quote

from adapters.providers.base import DataFrameReader, HTTPProvider
from adapters.providers.stream import StreamReader
from domain.protocols.canonical import JSON, Usage
from domain.protocols.gemini import canonical_to_gemini, chat_to_gemini, gemini_to_canonical
from domain.protocols.gemini_stream import GeminiStreamToCanonical
from domain.protocols.surfaces import CHAT, WireRequest


class GeminiProvider(HTTPProvider):
    kind = "gemini"

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        model = quote(upstream_model.removeprefix("models/"), safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.base_url}/v1beta/models/{model}:{method}"

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key}

    def _body(self, request: WireRequest, upstream_model: str, *, stream: bool,
              max_tokens_field: str) -> JSON:
        if request.surface == CHAT:
            return chat_to_gemini(request.body)
        return canonical_to_gemini(request.body)

    def _read(self, body: JSON, upstream_model: str, request: WireRequest) -> tuple[JSON, Usage]:
        return gemini_to_canonical(body, upstream_model)

    def _reader(self, upstream_model: str, request: WireRequest) -> StreamReader:
        return DataFrameReader(GeminiStreamToCanonical(upstream_model))
