"""OpenAI-compatible chat completions backends (POST {base_url}/chat/completions; base_url
includes the version, as in the OpenAI SDK: https://api.openai.com/v1, http://vllm:8000/v1).

Streams always ask for `stream_options.include_usage`, since the ledger needs token counts.
"""

from __future__ import annotations

import httpx

from adapters.providers.base import DataFrameReader, HTTPProvider
from adapters.providers.stream import StreamReader
from domain.protocols.canonical import JSON, Usage
from domain.protocols.openai_request import canonical_to_openai
from domain.protocols.openai_response import completion_to_canonical
from domain.protocols.openai_stream import ChunksToCanonical


class OpenAICompatProvider(HTTPProvider):
    kind = "openai"
    request_id_header = "x-request-id"

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        client: httpx.AsyncClient,
        *,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        """`max_tokens_field`: OpenAI's reasoning models want `max_completion_tokens`; most
        compatible servers know only `max_tokens`."""
        super().__init__(name, base_url, api_key, client)
        self._max_tokens_field = max_tokens_field

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"}

    def _body(self, request: JSON, upstream_model: str, *, stream: bool) -> JSON:
        return canonical_to_openai(
            request, upstream_model, stream=stream, max_tokens_field=self._max_tokens_field
        )

    def _read(self, body: JSON, upstream_model: str) -> tuple[JSON, Usage]:
        return completion_to_canonical(body)

    def _reader(self, upstream_model: str) -> StreamReader:
        return DataFrameReader(ChunksToCanonical(), done="[DONE]")
