"""Client wire shapes: parsing the two request surfaces into the write path's
`InferenceRequest` (the client's own body, plus what routing needs to know of it), and
encoding answers and stream events back into what each SDK reads byte by byte
(docs/gateway.md)."""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Mapping

import orjson

from app.http.errors import InvalidRequestError
from app.services.calls import FrameEncoder, InferenceRequest
from domain.catalog import canonical_json
from domain.inference import CHAT, MESSAGES
from domain.protocols.canonical import (
    JSON,
    NATIVE_FRAME,
    TranslationError,
    chat_text_size,
    request_text_size,
)
from domain.protocols.fates import capability_needs, refusals
from domain.protocols.openai_request import chat_limit, openai_to_canonical
from domain.protocols.openai_response import canonical_to_completion
from domain.protocols.openai_stream import CanonicalToChunks
from domain.protocols.validate import (
    InvalidRequest,
    check_bounds,
    check_chat_request,
    check_max_tokens,
    check_messages_request,
)

log = logging.getLogger("ainfera.wire")

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
    try:
        check_bounds(body)  # before anything below recurses into the body
    except InvalidRequest as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
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
        limit = body.get("max_tokens")
        try:
            check_max_tokens(limit)
        except InvalidRequest as exc:
            raise InvalidRequestError(str(exc), param=exc.param) from None
        text_size = request_text_size(body)
    else:
        limit = chat_limit(body)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidRequestError("max_tokens: must be a positive integer",
                                      param="max_tokens")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise InvalidRequestError("stream_options must be an object", param="stream_options")
        include_usage = bool((options or {}).get("include_usage"))
        _check_chat_readable(body)
        text_size = chat_text_size(body)
    forward = {name: headers[name] for name in FORWARDABLE_HEADERS
               if headers is not None and headers.get(name)}
    tools = body.get("tools") or body.get("functions") or []
    return InferenceRequest(surface, model, body, stream, include_usage, hint or {}, digest,
                            forward, limit, text_size, len(tools),
                            capability_needs(surface, body), refusals(surface, body))


def _check_chat_readable(body: JSON) -> None:
    """A chat body the translation cannot even read is malformed, whoever serves it: 400 now,
    before anything is recorded. What only some protocols cannot carry (audio parts, `n`
    above 1) is not decided here: the fates of its fields are (an OpenAI backend takes it)."""
    try:
        openai_to_canonical(body)
    except TranslationError:
        pass
    except (TypeError, AttributeError, KeyError, ValueError):
        # The checks in domain.protocols.validate should leave nothing for this; if they
        # missed a shape, the caller still gets a 400 in words, never a Python repr.
        log.warning("a chat request passed validation but not translation", exc_info=True)
        raise InvalidRequestError("cannot read this chat request: a field has a shape the "
                                  "Chat Completions API does not allow") from None


def client_body(surface: str, message: JSON, public_id: str, model: str,
                native: JSON | None = None) -> JSON:
    """The non-streamed response in the caller's shape, with our id and the served model. An
    upstream of the caller's own protocol answered `native`: that body is the answer, every
    field kept (logprobs, annotations, system_fingerprint, ...). An Anthropic message is
    already the canonical one."""
    if surface == CHAT:
        if native is not None:
            return {**native, "id": public_id, "model": model}
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
    """Data-only `chat.completion.chunk` frames, then `data: [DONE]`.

    From an OpenAI-compatible upstream, whose reader hands on its own chunks (`NATIVE_FRAME`,
    each ahead of the canonical events read from it), the frames are the upstream's, with our
    id and the served model: the usage the gateway asked for on the caller's behalf is kept
    from a caller that did not ask for it, and given as null on every chunk to one that did,
    as OpenAI documents. From another protocol they are translated from canonical events."""

    def __init__(self, public_id: str, model: str, include_usage: bool) -> None:
        self._chunks = CanonicalToChunks(id=public_id, model=model, include_usage=include_usage)
        self._id = public_id
        self._model = model
        self._include_usage = include_usage
        self._native = False

    def encode(self, event: JSON) -> bytes:
        if event.get("type") == NATIVE_FRAME:
            self._native = True
            return self._native_frame(event["frame"])
        if self._native:
            return b""  # already sent as the upstream's own frame
        return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in self._chunks.feed(event))

    def _native_frame(self, chunk: JSON) -> bytes:
        frame = {**chunk, "id": self._id, "model": self._model}
        if self._include_usage:
            frame.setdefault("usage", None)
        elif "usage" in frame:
            if not frame.get("choices"):
                return b""  # the usage chunk the ledger asked for, not the caller
            del frame["usage"]
        return b"data: " + orjson.dumps(frame) + b"\n\n"

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, error_type: str, message: str) -> bytes:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
        return b"data: " + orjson.dumps(body) + b"\n\n"


def encoder_for(request: InferenceRequest, public_id: str, model: str) -> FrameEncoder:
    if request.surface == CHAT:
        return OpenAIEncoder(public_id, model, request.include_usage)
    return AnthropicEncoder(public_id, model)
