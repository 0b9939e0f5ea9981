"""Provider adapters: one module per vendor protocol, all behind the `Provider` port.

base.py           Provider, ProviderResult, the shared HTTPProvider plumbing
stream.py         ProviderStream: canonical events parsed as upstream bytes arrive
errors.py         ProviderError and its kinds, the httpx mapping
http.py           the one shared httpx.AsyncClient (aiohttp transport)
sse.py            the incremental SSE decoder
anthropic.py, openai_compat.py, gemini.py   the vendors
"""

from __future__ import annotations

import httpx

from adapters.providers.anthropic import AnthropicProvider
from adapters.providers.base import HTTPProvider, Provider, ProviderResult
from adapters.providers.gemini import GeminiProvider
from adapters.providers.openai_compat import OpenAICompatProvider
from adapters.providers.stream import ProviderStream

KINDS: dict[str, type[HTTPProvider]] = {
    "anthropic": AnthropicProvider,
    "openai": OpenAICompatProvider,
    "gemini": GeminiProvider,
}


def build_provider(
    name: str, kind: str, base_url: str, api_key: str, client: httpx.AsyncClient
) -> Provider:
    """A provider of the configured kind (`anthropic`, `openai` or `gemini`)."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown provider kind {kind!r}; known: {sorted(KINDS)}") from None
    return cls(name, base_url, api_key, client)


__all__ = [
    "KINDS",
    "AnthropicProvider",
    "GeminiProvider",
    "OpenAICompatProvider",
    "Provider",
    "ProviderResult",
    "ProviderStream",
    "build_provider",
]
