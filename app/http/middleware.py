"""Request ids: one per request, on every response (`request-id` for the Anthropic SDK,
`x-request-id` for the OpenAI SDK) and in the scope state for the audit context and errors."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        raw = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"request-id", raw))
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware
