"""The stack floor: the least a gateway on our HTTP stack can do per call, so every gateway row
can be read as a fraction of what the stack itself allows (issue 9, item 6).

Run: .venv/bin/python -m bench.floor_server --upstream URL --port PORT

Litestar + msgspec, served by one uvicorn worker with uvloop and httptools (the arguments
`ainfera serve` passes), forwarding POST /v1/messages to the upstream through the gateway's own
upstream client (adapters.providers.http: the client build_http_client makes, driven through
`upstream_for(client).post` as the providers drive it, straight on its aiohttp session with
the same limits and timeouts) and returning the upstream's status and body. It
decodes the request once with msgspec, as any gateway must to learn the model, and does
nothing else: no auth, no routing, no events, no counters. GET /healthz answers 200 once the
app is up.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post

from adapters.providers.http import Upstream, build_http_client, upstream_for

# The fake upstream's Anthropic credentials (tests/harness/gateway.py gives the gateway the
# same), so both paths send the upstream an identical request.
UPSTREAM_HEADERS = {"x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01",
                    "content-type": "application/json"}


class _Message(msgspec.Struct):
    role: str
    content: str | list[Any]


class _MessagesRequest(msgspec.Struct):
    """The fields a gateway needs before it can forward anything."""

    model: str
    max_tokens: int
    messages: list[_Message]
    stream: bool = False


_decode = msgspec.json.Decoder(_MessagesRequest).decode


def create_app(upstream: str) -> Litestar:
    url = f"{upstream.rstrip('/')}/v1/messages"
    holder: dict[str, Upstream] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        client = build_http_client()
        holder["upstream"] = upstream_for(client)
        try:
            yield
        finally:
            await client.aclose()

    @post("/v1/messages")
    async def messages(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        _decode(body)  # a malformed body raises here and Litestar answers 500: not measured
        upstream_response = await holder["upstream"].post(url, UPSTREAM_HEADERS, body,
                                                         stream=False)
        return Response(content=upstream_response.content,
                        status_code=upstream_response.status_code,
                        media_type="application/json")

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[messages, healthz], lifespan=[lifespan])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.upstream), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", lifespan="on", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
