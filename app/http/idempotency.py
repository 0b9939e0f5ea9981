"""`Idempotency-Key` on the inference surfaces: the first call with a key is dispatched and
its response recorded; every later call with the same key, from the same tenant and agent on
the same surface, within 24 hours, gets that response replayed and dispatches and debits
nothing. The same key with another body is a 409. Concurrent duplicates wait for the first to
finish. (A key is scoped per agent and surface so a chat retry never gets an Anthropic-shaped
replay it cannot parse, and one agent's key never answers another's call.)

A stream the first caller left before its end is still completed here: its record holds what
was sent plus a closing error frame saying the stream was cut short and what the ledger holds
(the inference is recorded as cancelled), so every retry gets that same answer instead of
waiting on a record that would stay pending for a day. The record is written by a task of its
own, because the caller's task is being cancelled when a client leaves; while the store is
down it keeps trying for a few minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from litestar import Response
from litestar.response import Stream

from adapters.idempotency_store import IdempotencyError, IdempotencyStore, Record
from app.http.errors import (
    ANTHROPIC,
    OPENAI,
    ConflictError,
    InvalidRequestError,
    ServiceUnavailableError,
    error_body,
    from_inference_error,
)
from app.services.calls import InferenceError, InferenceRequest, RecordingIncomplete
from app.services.tenancy import Caller
from domain.inference import CHAT

# A duplicate waits this long for the first call (a long stream) before being told to retry.
WAIT_FOR_FIRST_S = 300.0
POLL_S = 0.05
REPLAYED = {"idempotent-replayed": "true"}
# A record that cannot be written (the store is down) is retried this long, backing off.
RECORD_RETRY_FOR_S = 300.0

_background: set[asyncio.Task[None]] = set()


def scoped_key(caller: Caller, surface: str, key: str) -> str:
    """The stored key: the client's, within its agent and surface (the tenant is a column)."""
    return f"{caller.agent_id}/{surface}/{key}"

T = TypeVar("T")

log = logging.getLogger("ainfera.idempotency")


async def idempotent(store: IdempotencyStore, key: str, request: InferenceRequest,
                     caller: Caller, request_id: str,
                     run: Callable[[], Awaitable[Response[Any]]]) -> Response[Any]:
    if not key or len(key) > 255 or not key.isprintable():
        raise InvalidRequestError("Idempotency-Key must be 1-255 printable characters")
    tenant = str(caller.tenant_id)
    key = scoped_key(caller, request.surface, key)
    existing = await _guard(asyncio.to_thread(store.claim, tenant, key, request.digest))
    if existing is not None:
        return await _replay_when_done(store, tenant, key, request, existing)
    try:
        response = await run()
    except InferenceError as failure:
        # Nothing recorded, or an answer the caller never got because the ledger was down:
        # either way the key is free for a retry.
        if failure.recorded is None or (isinstance(failure, RecordingIncomplete)
                                        and failure.pending):
            await _guard(asyncio.to_thread(store.release, tenant, key))
            raise
        error = from_inference_error(failure)
        protocol = OPENAI if request.surface == CHAT else ANTHROPIC
        body = error_body(protocol, error.status, error.message, request_id, error.param,
                          error.code)
        await _store(store, tenant, key, error.headers, error.status, "application/json",
                     orjson.dumps(body).decode())
        raise
    except BaseException:
        await _guard(asyncio.to_thread(store.release, tenant, key))
        raise
    if isinstance(response, Stream):
        return _recording_stream(store, tenant, key, request.surface, response)
    content = response.content if isinstance(response.content, bytes) else orjson.dumps(
        response.content)
    await _store(store, tenant, key, dict(response.headers), response.status_code or 200,
                 "application/json", content.decode())
    return response


def _recording_stream(store: IdempotencyStore, tenant: str, key: str, surface: str,
                      response: Stream) -> Stream:
    headers = dict(response.headers)
    source: AsyncIterator[bytes] = response.iterator  # type: ignore[assignment]

    async def tee() -> AsyncIterator[bytes]:
        transcript: list[bytes] = []
        ended = False
        try:
            async for frame in source:
                transcript.append(frame)
                yield frame
            ended = True
        finally:
            # Whatever the first caller got, even cut short, is what retries get: the
            # inference was dispatched and debited once, and must not be again. Not awaited
            # here: when the client has left, this task is being cancelled.
            if not ended:
                transcript.append(_cut_short(surface, headers.get("x-ainfera-inference-id")))
            _in_background(_store_eventually(store, tenant, key, headers, 200,
                                             "text/event-stream",
                                             b"".join(transcript).decode()))
            if isinstance(source, AsyncGenerator):
                # Close the inference's own stream now rather than at garbage collection: its
                # end records the call as cancelled.
                _in_background(source.aclose())

    return Stream(tee(), media_type="text/event-stream", headers=headers)


def _cut_short(surface: str, inference_id: str | None) -> bytes:
    """The frame that ends the record of a stream its first caller left, in its protocol."""
    message = (f"the first request with this Idempotency-Key left before its stream ended; "
               f"this replay ends where that stream did; inference {inference_id} is recorded "
               "as cancelled")
    if surface == CHAT:
        body = {"error": {"message": message, "type": "api_error", "param": None,
                          "code": "stream_cut_short"}}
        return b"data: " + orjson.dumps(body) + b"\n\n"
    error = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _store(store: IdempotencyStore, tenant: str, key: str, headers: dict[str, str],
                 status: int, content_type: str, body: str) -> None:
    keep = {k: v for k, v in headers.items() if k.startswith("x-ainfera-")}
    await _guard(asyncio.to_thread(
        store.finish, tenant, key, keep.get("x-ainfera-inference-id"), status, content_type,
        orjson.dumps(keep).decode(), body))


async def _store_eventually(store: IdempotencyStore, tenant: str, key: str,
                            headers: dict[str, str], status: int, content_type: str,
                            body: str) -> None:
    """`_store`, retried with back-off while the store is down (for RECORD_RETRY_FOR_S)."""
    deadline = time.monotonic() + RECORD_RETRY_FOR_S
    delay = 0.25
    while True:
        try:
            await _store(store, tenant, key, headers, status, content_type, body)
            return
        except ServiceUnavailableError as exc:
            if time.monotonic() + delay > deadline:
                log.error("idempotency record %s not written: %s", key, exc)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _replay_when_done(store: IdempotencyStore, tenant: str, key: str,
                            request: InferenceRequest, record: Record) -> Response[Any]:
    if record.request_digest != request.digest:
        raise ConflictError(
            f"Idempotency-Key {key!r} was already used with a different request body",
            code="idempotency_key_reused")
    waited = 0.0
    while record.state != "done":
        if waited >= WAIT_FOR_FIRST_S:
            raise ConflictError(f"the first request with Idempotency-Key {key!r} is still "
                                "running; retry later", code="idempotency_key_in_progress",
                                headers={"retry-after": "1"})
        await asyncio.sleep(POLL_S)
        waited += POLL_S
        latest = await _guard(asyncio.to_thread(store.read, tenant, key))
        if latest is None:  # the first call gave the key back: nothing was recorded
            raise ConflictError(f"the first request with Idempotency-Key {key!r} failed "
                                "before dispatch; retry", code="idempotency_key_released")
        record = latest
    headers = {**orjson.loads(record.headers or "{}"), **REPLAYED}
    body = (record.body or "").encode()
    if record.content_type == "text/event-stream":
        return Stream(iter([body]), media_type="text/event-stream", headers=headers)
    return Response(content=body, status_code=record.status_code or 200, headers=headers,
                    media_type="application/json")


async def _guard(work: Awaitable[T]) -> T:
    try:
        return await work
    except IdempotencyError as exc:
        raise ServiceUnavailableError(str(exc), code="idempotency_unavailable") from exc
