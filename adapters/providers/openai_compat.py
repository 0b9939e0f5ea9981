"""OpenAI-compatible chat completions backends (POST {base_url}/chat/completions; base_url
includes the version, as in the OpenAI SDK: https://api.openai.com/v1, http://vllm:8000/v1).

A Chat Completions request is sent as the client wrote it (every field, the model's limit
field as the catalog names it) and answered with the upstream's own body and frames; a
Messages request is translated. Streams always ask for `stream_options.include_usage`, since
the ledger needs token counts.
"""

from __future__ import annotations

from adapters.providers.base import DataFrameReader, HTTPProvider
from adapters.providers.stream import StreamReader
from domain.protocols.canonical import JSON, Usage
from domain.protocols.openai_request import canonical_to_openai, openai_passthrough
from domain.protocols.openai_response import completion_to_canonical
from domain.protocols.openai_stream import ChunksToCanonical
from domain.protocols.surfaces import WireRequest


class OpenAICompatProvider(HTTPProvider):
    kind = "openai"
    request_id_header = "x-request-id"

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"}

    def _body(self, request: WireRequest, upstream_model: str, *, stream: bool,
              max_tokens_field: str) -> JSON:
        """`max_tokens_field`: OpenAI's reasoning models want `max_completion_tokens`; most
        compatible servers know only `max_tokens` (the catalog says which, per model)."""
        if request.native_to(self.kind):
            return openai_passthrough(request.body, upstream_model, stream=stream,
                                      max_tokens_field=max_tokens_field)
        return canonical_to_openai(request.body, upstream_model, stream=stream,
                                   max_tokens_field=max_tokens_field)

    def _read(self, body: JSON, upstream_model: str, request: WireRequest) -> tuple[JSON, Usage]:
        return completion_to_canonical(body)

    def _reader(self, upstream_model: str, request: WireRequest) -> StreamReader:
        # A chat client gets the upstream's own chunks (NATIVE_FRAME events) besides the
        # canonical events the ledger reads.
        native = request.native_to(self.kind)
        return DataFrameReader(ChunksToCanonical(native=native), done="[DONE]")
