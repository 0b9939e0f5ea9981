"""Routes a request to the vendor it speaks and builds the scripted reply."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from upstream_sim.anthropic_wire import Anthropic
from upstream_sim.gemini_wire import Gemini
from upstream_sim.openai_wire import OpenAI
from upstream_sim.scripts import Behaviour
from upstream_sim.structured import structured_behaviour
from upstream_sim.wire import Response, Vendor, as_json

_ids = itertools.count(1)


def respond(
    path: str,
    query: str,
    headers: dict[str, str],
    body: Any,
    behaviour_for: Callable[[str], Behaviour],
) -> Response:
    body = body if isinstance(body, dict) else {}
    if path in ("/v1/messages", "/v1/messages/count_tokens"):
        vendor: type[Vendor] = Anthropic
        model, stream = str(body.get("model")), bool(body.get("stream"))
        authed = "x-api-key" in headers or "authorization" in headers
        name = "anthropic"
    elif path.endswith("/chat/completions"):
        vendor = OpenAI
        model, stream = str(body.get("model")), bool(body.get("stream"))
        authed = headers.get("authorization", "").startswith("Bearer ")
        name = "openai"
    elif path.startswith("/v1beta/models/"):
        vendor = Gemini
        model, _, method = path.removeprefix("/v1beta/models/").partition(":")
        stream = method == "streamGenerateContent"
        authed = "x-goog-api-key" in headers or "key=" in query
        name = "gemini"
    else:
        return Response(Behaviour(), 404, {"content-type": "text/plain"}, b"no such route")
    behaviour = structured_behaviour(name, body, behaviour_for(model))
    reply = vendor(model, behaviour, body, next(_ids), stream)
    if not authed:
        return reply.error(401, "missing credentials")
    if behaviour.kind == "error":
        return reply.error(behaviour.status, behaviour.error_message)
    if path == "/v1/messages/count_tokens":
        return Response(behaviour, 200, reply.headers(),
                        as_json({"input_tokens": behaviour.input_tokens}))
    if behaviour.kind == "garbage":
        return Response(behaviour, 200, reply.headers(), behaviour.text.encode())
    if stream:
        return Response(
            behaviour, 200, reply.headers(), frames=reply.frames(), error_frame=reply.error_frame()
        )
    return Response(behaviour, 200, reply.headers(), as_json(reply.message()))
