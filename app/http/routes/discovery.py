"""Self-description for agents and crawlers: `/.well-known/agent-card.json` (A2A agent card
shape) and `/llms.txt` (llmstxt.org). No auth: they say what the gateway is, nothing about any
tenant. They advertise the router name `ainfera-inference` as the default model and the
catalog's own slugs, never a legacy alias (aliases are accepted, not advertised)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, get

from app.runtime import Runtime
from domain.routing import ROUTER

NAME = "Ainfera Ledger"
VERSION = "0.1.0"
DESCRIPTION = (
    "LLM inference gateway speaking the Anthropic Messages and OpenAI Chat Completions APIs. "
    f"Send model \"{ROUTER}\" to have each call routed to the cheapest catalog model that "
    "clears your quality floor, or name a catalog model to pin it. Every call is recorded as "
    "events on a hash-chained, Merkle-checkpointed ledger with a verifiable receipt."
)


def _models(request: Request[Any, Any, Any]) -> list[str]:
    runtime: Runtime = request.app.state.runtime
    return [m.slug for m in runtime.catalog.models]


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


@get("/.well-known/agent-card.json", include_in_schema=False)
async def agent_card(request: Request[Any, Any, Any]) -> dict[str, Any]:
    base = _base(request)
    return {
        "protocolVersion": "0.3.0",
        "name": NAME,
        "description": DESCRIPTION,
        "url": f"{base}/v1",
        "version": VERSION,
        "provider": {"organization": "Ainfera", "url": base},
        "documentationUrl": f"{base}/llms.txt",
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/event-stream"],
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "default_model": ROUTER,
        "models": [ROUTER, *_models(request)],
        "skills": [
            {
                "id": "routed-inference",
                "name": "Routed LLM inference",
                "description": f"Chat and messages calls with model \"{ROUTER}\": routed by "
                               "quality floor and cost, with fallback, streamed natively.",
                "tags": ["llm", "routing", "anthropic-messages", "openai-chat-completions"],
                "examples": [f'POST /v1/messages {{"model": "{ROUTER}", "max_tokens": 256, '
                             '"messages": [{"role": "user", "content": "Hello"}]}'],
            },
            {
                "id": "audit",
                "name": "Inference audit",
                "description": "The events, routing decision and ledger receipt of any call "
                               "of your tenant.",
                "tags": ["audit", "ledger", "receipts"],
            },
        ],
        "endpoints": {
            "messages": f"{base}/v1/messages",
            "chat_completions": f"{base}/v1/chat/completions",
            "models": f"{base}/v1/models",
            "openapi": f"{base}/schema/openapi.json",
        },
    }


@get("/llms.txt", media_type=MediaType.TEXT, include_in_schema=False)
async def llms_txt(request: Request[Any, Any, Any]) -> str:
    base = _base(request)
    pinned = "\n".join(f"- `{slug}`" for slug in _models(request))
    return f"""# {NAME}

> {DESCRIPTION}

Default model: `{ROUTER}`. Authenticate with `x-api-key: KEY` or `Authorization: Bearer KEY`.
Money is always a decimal string in US dollars; times are UTC.

## Inference
- [Messages]({base}/v1/messages): Anthropic Messages API, streaming or not.
- [Chat Completions]({base}/v1/chat/completions): OpenAI Chat Completions API.
- [Models]({base}/v1/models): the router name first, then the models you may pin.

## Audit
- [Inference]({base}/v1/inferences/ID): the recorded events of one call.
- [Decision]({base}/v1/inferences/ID/decision): the candidates and why one was chosen.
- [Receipt]({base}/v1/inferences/ID/receipt): ledger entries with inclusion proofs.

## Dashboard
- [Usage per day]({base}/v1/usage/daily?days=30)
- [Caps rollup]({base}/v1/caps/rollup)
- [Agent metrics]({base}/v1/agents/ID/metrics)

## Models you may pin
{pinned}

## Optional
- [OpenAPI]({base}/schema/openapi.json)
"""
