"""The two inference surfaces: `POST /v1/messages` (Anthropic) and `POST /v1/chat/completions`
(OpenAI). Both go through one write path; only the wire shapes differ."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.response import Stream

from app.http.auth import provide_caller
from app.http.errors import GatewayError
from app.http.idempotency import idempotent
from app.http.streaming import open_stream
from app.http.wire import CHAT, MESSAGES, ClientRequest, parse_request
from app.runtime import Runtime
from app.services.inference import Call, begin, close, complete
from app.services.tenancy import Caller

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def handle(request: Request[Any, Any, Any], surface: str, caller: Caller) -> Response[Any]:
    runtime: Runtime = request.app.state.runtime
    client_request = parse_request(surface, await request.body(), request.headers)
    request_id: str = request.scope["state"]["request_id"]
    key = request.headers.get("idempotency-key")
    if key is not None:
        return await idempotent(runtime.idempotency, key, client_request, caller, request_id,
                                lambda: run_call(runtime, client_request, caller, request_id))
    return await run_call(runtime, client_request, caller, request_id)


async def run_call(runtime: Runtime, client_request: ClientRequest, caller: Caller,
                   request_id: str) -> Response[Any]:
    call = await begin(runtime, client_request, caller, request_id)
    try:
        if client_request.stream:
            frames, headers = await open_stream(runtime, call)
            return Stream(frames, media_type="text/event-stream",
                          headers={**headers, **_SSE_HEADERS})
        body, headers = await complete(runtime, call)
        return Response(content=body, headers=headers)
    except GatewayError:
        raise
    except BaseException as exc:
        await _close_unexpected(runtime, call, exc)
        raise


async def _close_unexpected(runtime: Runtime, call: Call, exc: BaseException) -> None:
    """Whatever went wrong, the inference gets its one Completed."""
    if call.inference.is_completed:
        return
    status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
    await close(runtime, call, None, status, None, None, None, streamed=False)


@post("/v1/messages", dependencies={"caller": Provide(provide_caller)}, status_code=200)
async def create_message(request: Request[Any, Any, Any],
                         caller: NamedDependency[Caller]) -> Response[Any]:
    """Anthropic Messages API: text, tools, streaming."""
    return await handle(request, MESSAGES, caller)


@post("/v1/chat/completions", dependencies={"caller": Provide(provide_caller)},
      status_code=200)
async def create_chat_completion(request: Request[Any, Any, Any],
                                 caller: NamedDependency[Caller]) -> Response[Any]:
    """OpenAI Chat Completions API: text, tool calls, streaming."""
    return await handle(request, CHAT, caller)
