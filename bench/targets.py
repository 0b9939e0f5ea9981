"""What the load generator sends, and where: one `Target` per (server, surface, model). Every
non-streamed row sends the same Anthropic Messages body, so the direct, floor, gateway and
LiteLLM rows differ only in what sits between the generator and the fake upstream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

PROMPT = [{"role": "user", "content": "Say hello in five words."}]
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer sk-oai-fake"}


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes


def messages_body(model: str, stream: bool) -> bytes:
    return json.dumps({"model": model, "max_tokens": 64, "messages": PROMPT,
                       "stream": stream}).encode()


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": PROMPT,
                            "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def direct_messages(base_url: str, stream: bool) -> Target:
    return Target("direct up-claude", f"{base_url}/v1/messages", ANTHROPIC_HEADERS,
                  messages_body("up-claude", stream))


def direct_chat(base_url: str, stream: bool) -> Target:
    return Target("direct up-gpt", f"{base_url}/v1/chat/completions", OPENAI_HEADERS,
                  chat_body("up-gpt", stream))


def gateway_messages(url: str, key: str, model: str, stream: bool) -> Target:
    return Target(f"gateway {model}", f"{url}/v1/messages", {"x-api-key": key},
                  messages_body(model, stream))


def gateway_chat(url: str, key: str, model: str, stream: bool) -> Target:
    return Target(f"gateway {model}", f"{url}/v1/chat/completions",
                  {"authorization": f"Bearer {key}"}, chat_body(model, stream))


async def probe(target: Target) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request: its status, JSON body and headers (to see what a router chose)."""
    async with aiohttp.ClientSession() as session, session.post(
        target.url, data=target.body, headers={**target.headers,
                                               "content-type": "application/json"}
    ) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body, dict(resp.headers)
