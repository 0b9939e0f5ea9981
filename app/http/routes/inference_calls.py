"""The two inference surfaces: `POST /v1/messages` (Anthropic) and `POST /v1/chat/completions`
(OpenAI). A route parses the body, hands it to the write path (`InferenceService.run`) and
renders what comes back in its own wire shape; everything between is the service's."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from app.http.auth import provide_caller
from app.http.errors import OPENAI
from app.http.headers import inference_headers
from app.http.idempotency import idempotent
from app.http.wire import client_body, encoder_for, parse_request
from app.runtime import Runtime
from app.services.calls import InferenceRequest, StreamingCompletion
from app.services.tenancy import Caller
from domain.inference import CHAT, MESSAGES

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def handle(request: Request[Any, Any, Any], surface: str) -> Response[Any]:
    # The key is checked here rather than through Litestar's dependency injection: on the
    # hottest path its per-request signature parsing cost more than the check itself.
    caller = await provide_caller(request)
    runtime: Runtime = request.app.state.runtime
    call = parse_request(surface, await request.body(), request.headers)
    state = request.scope["state"]
    state["client_request"] = call  # for the access log line (app.http.access_log)
    request_id: str = state["request_id"]

    async def serve() -> Response[Any]:
        return await _serve(runtime, call, caller, request_id)

    key = request.headers.get("idempotency-key")
    if key is not None:
        return await idempotent(runtime.idempotency, key, call, caller, request_id, serve)
    return await serve()


async def _serve(runtime: Runtime, call: InferenceRequest, caller: Caller,
                 request_id: str) -> Response[Any]:
    outcome = await runtime.inference.run(call, caller, request_id, encoder_for)
    headers = inference_headers(outcome.recorded)
    if isinstance(outcome, StreamingCompletion):
        return Stream(outcome.frames, media_type="text/event-stream",
                      headers={**headers, **_SSE_HEADERS})
    body = client_body(call.surface, outcome.message, outcome.recorded.public_id,
                       outcome.served_model, outcome.native)
    return Response(content=body, headers=headers)


@post("/v1/messages", status_code=200)
async def create_message(request: Request[Any, Any, Any]) -> Response[Any]:
    """Anthropic Messages API: text, tools, streaming."""
    return await handle(request, MESSAGES)


@post("/v1/chat/completions", status_code=200, opt={"protocol": OPENAI})
async def create_chat_completion(request: Request[Any, Any, Any]) -> Response[Any]:
    """OpenAI Chat Completions API: text, tool calls, streaming."""
    return await handle(request, CHAT)
