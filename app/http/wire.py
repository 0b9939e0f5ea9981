"""Client wire shapes: parsing the two request surfaces into the write path's
`InferenceRequest` (canonical, Anthropic-shaped), and encoding canonical responses and stream
events back into what each SDK reads byte by byte (docs/gateway.md)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping

import orjson

from app.http.errors import InvalidRequestError
from app.services.calls import FrameEncoder, InferenceRequest
from domain.catalog import canonical_json
from domain.inference import CHAT, MESSAGES
from domain.protocols.canonical import JSON, TranslationError
from domain.protocols.openai_request import openai_to_canonical
from domain.protocols.openai_response import canonical_to_completion
from domain.protocols.openai_stream import CanonicalToChunks
from domain.protocols.validate import InvalidRequest, check_chat_request, check_messages_request

# Chat Completions may omit a limit; the reservation and the upstream need one.
DEFAULT_CHAT_MAX_TOKENS = 4096


FORWARDABLE_HEADERS = ("anthropic-beta",)


def parse_request(surface: str, raw: bytes,
                  headers: Mapping[str, str] | None = None) -> InferenceRequest:
    """Parses and checks a body; every problem is a 400 naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    digest = "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()
    hint = body.pop("routing_hint", None)
    if hint is not None and not isinstance(hint, dict):
        raise InvalidRequestError("routing_hint must be an object", param="routing_hint")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: a model name is required", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequestError("stream must be a boolean", param="stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages: a non-empty list is required", param="messages")
    if not all(isinstance(m, dict) for m in messages):
        raise InvalidRequestError("messages: every message must be an object", param="messages")
    include_usage = False
    try:
        (check_messages_request if surface == MESSAGES else check_chat_request)(body)
    except InvalidRequest as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    if surface == MESSAGES:
        max_tokens = body.get("max_tokens")
        if type(max_tokens) is not int or max_tokens < 1:
            raise InvalidRequestError("max_tokens: a positive integer is required",
                                      param="max_tokens")
        canonical = body
    else:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidRequestError("max_tokens: must be a positive integer",
                                      param="max_tokens")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise InvalidRequestError("stream_options must be an object", param="stream_options")
        try:
            chat = openai_to_canonical(body, default_max_tokens=DEFAULT_CHAT_MAX_TOKENS)
        except (TranslationError, TypeError, AttributeError, KeyError) as exc:
            raise InvalidRequestError(f"cannot read this chat request: {exc}") from None
        canonical, include_usage = chat.canonical, chat.include_usage
    canonical.pop("stream", None)
    forward = {name: headers[name] for name in FORWARDABLE_HEADERS
               if headers is not None and headers.get(name)}
    return InferenceRequest(surface, model, canonical, stream, include_usage, hint or {}, digest,
                         forward)


def client_body(surface: str, message: JSON, public_id: str, model: str) -> JSON:
    """The non-streamed response in the caller's shape, with our id and the served model."""
    if surface == CHAT:
        return canonical_to_completion(message, id=public_id, model=model)
    body = dict(message)
    body["id"] = public_id
    body["model"] = model
    body.setdefault("stop_sequence", None)
    return body


class AnthropicEncoder:
    """Anthropic SSE: every frame has its `event:` line, since the SDK dispatches on it."""

    def __init__(self, public_id: str, model: str) -> None:
        self._id = public_id
        self._model = model

    def encode(self, event: JSON) -> bytes:
        if event.get("type") == "message_start":
            event = copy.copy(event)
            event["message"] = {**event["message"], "id": self._id, "model": self._model}
        return b"event: " + str(event.get("type")).encode() + b"\ndata: " + orjson.dumps(
            event) + b"\n\n"

    def finish(self) -> bytes:
        return b""

    def error(self, error_type: str, message: str) -> bytes:
        body = {"type": "error", "error": {"type": error_type, "message": message}}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


class OpenAIEncoder:
    """Data-only `chat.completion.chunk` frames, then `data: [DONE]`."""

    def __init__(self, public_id: str, model: str, include_usage: bool) -> None:
        self._chunks = CanonicalToChunks(id=public_id, model=model, include_usage=include_usage)

    def encode(self, event: JSON) -> bytes:
        return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in self._chunks.feed(event))

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, error_type: str, message: str) -> bytes:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
        return b"data: " + orjson.dumps(body) + b"\n\n"


def encoder_for(request: InferenceRequest, public_id: str, model: str) -> FrameEncoder:
    if request.surface == CHAT:
        return OpenAIEncoder(public_id, model, request.include_usage)
    return AnthropicEncoder(public_id, model)
