"""Native streaming, the write path's half: upstream events are encoded (by the edge's encoder)
and handed on as they arrive, never buffered and replayed. Whatever ends the stream (the
upstream finishing, failing mid-way, the client going away) the inference is closed with
Streamed, Completed and, when anything was consumed, Debited: that `finally` is where the
exactly-one-Completed guarantee holds for streams.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

import orjson

from adapters.providers import ProviderStream
from adapters.providers.errors import ProviderError
from app.services.calls import FrameEncoder, InFlight
from app.telemetry import GatewayMetrics
from domain.catalog import Model
from domain.inference import Status
from domain.protocols.canonical import JSON, MessageAccumulator, Usage


class Close(Protocol):
    def __call__(self, call: InFlight, model: Model | None, status: Status,
                 stop_reason: str | None, usage: Usage | None, digest: str | None,
                 streamed: bool, output_chars: int = 0) -> Awaitable[None]: ...


def response_digest(message: JSON) -> str:
    """What Completed records of the answer: a digest, never the text (DESIGN section 3)."""
    return "sha256:" + hashlib.sha256(orjson.dumps(message)).hexdigest()


async def relay(call: InFlight, model: Model, upstream: ProviderStream,
                dispatched: asyncio.Future[int], encoder: FrameEncoder, close: Close,
                metrics: GatewayMetrics) -> AsyncIterator[bytes]:
    message = MessageAccumulator()
    status = Status.CANCELLED  # unless the loop below reaches an end of its own
    ttft_ms: int | None = None
    frames = sent = output_chars = 0
    try:
        async for event in upstream:
            message.feed(event)
            output_chars += _delta_chars(event)
            frame = encoder.encode(event)
            if not frame:
                continue
            if ttft_ms is None:
                await dispatched
                ttft_ms = call.elapsed_ms()
                # Our share of the time to first byte: all of it but the upstream's.
                metrics.observe_overhead(
                    call.request.surface, max(ttft_ms / 1000 - call.upstream_s, 0))
            frames += 1
            sent += len(frame)
            yield frame
        status = Status.FALLBACK_SUCCEEDED if call.errors else Status.SUCCEEDED
        tail = encoder.finish()
        if tail:
            sent += len(tail)
            yield tail
    except ProviderError as error:
        status = Status.FAILED
        call.errors.append(error)
        frame = encoder.error("api_error", f"upstream {error.provider} failed mid-stream: "
                                           f"{error.error_type}: {error.message}")
        sent += len(frame)
        yield frame
    finally:
        with call.audit():
            call.inference.record_stream(ttft_ms, frames, sent)
        digest = None if message.message is None else response_digest(message.message)
        try:
            await close(call, model, status, upstream.stop_reason, upstream.usage, digest,
                        streamed=True, output_chars=output_chars)
        finally:
            await upstream.aclose()


def _delta_chars(event: JSON) -> int:
    if event.get("type") != "content_block_delta":
        return 0
    delta = event.get("delta") or {}
    return len(delta.get("text") or delta.get("partial_json") or delta.get("thinking") or "")
