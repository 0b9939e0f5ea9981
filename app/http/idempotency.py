"""`Idempotency-Key` on the inference surfaces: the first call with a key is dispatched and
its response recorded; every later call with the same key and tenant, within 24 hours, gets
that response replayed and dispatches and debits nothing. The same key with another body is
a 409. Concurrent duplicates wait for the first to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
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
from app.services.calls import InferenceError, InferenceRequest
from app.services.tenancy import Caller
from domain.inference import CHAT

# A duplicate waits this long for the first call (a long stream) before being told to retry.
WAIT_FOR_FIRST_S = 300.0
POLL_S = 0.05
REPLAYED = {"idempotent-replayed": "true"}

T = TypeVar("T")


async def idempotent(store: IdempotencyStore, key: str, request: InferenceRequest,
                     caller: Caller, request_id: str,
                     run: Callable[[], Awaitable[Response[Any]]]) -> Response[Any]:
    if not key or len(key) > 255 or not key.isprintable():
        raise InvalidRequestError("Idempotency-Key must be 1-255 printable characters")
    tenant = str(caller.tenant_id)
    existing = await _guard(asyncio.to_thread(store.claim, tenant, key, request.digest))
    if existing is not None:
        return await _replay_when_done(store, tenant, key, request, existing)
    try:
        response = await run()
    except InferenceError as failure:
        if failure.recorded is None:  # nothing was recorded: the key is free for a retry
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
        return _recording_stream(store, tenant, key, response)
    content = response.content if isinstance(response.content, bytes) else orjson.dumps(
        response.content)
    await _store(store, tenant, key, dict(response.headers), response.status_code or 200,
                 "application/json", content.decode())
    return response


def _recording_stream(store: IdempotencyStore, tenant: str, key: str,
                      response: Stream) -> Stream:
    headers = dict(response.headers)
    source: AsyncIterator[bytes] = response.iterator  # type: ignore[assignment]

    async def tee() -> AsyncIterator[bytes]:
        transcript: list[bytes] = []
        try:
            async for frame in source:
                transcript.append(frame)
                yield frame
        finally:
            # Whatever the first caller got, even cut short, is what retries get: the
            # inference was dispatched and debited once, and must not be again.
            await _store(store, tenant, key, headers, 200, "text/event-stream",
                         b"".join(transcript).decode())

    return Stream(tee(), media_type="text/event-stream", headers=headers)


async def _store(store: IdempotencyStore, tenant: str, key: str, headers: dict[str, str],
                 status: int, content_type: str, body: str) -> None:
    keep = {k: v for k, v in headers.items() if k.startswith("x-ainfera-")}
    await _guard(asyncio.to_thread(
        store.finish, tenant, key, keep.get("x-ainfera-inference-id"), status, content_type,
        orjson.dumps(keep).decode(), body))


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
