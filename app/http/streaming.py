"""Native streaming: upstream events are re-encoded and flushed to the client as they arrive,
never buffered and replayed. Whatever ends the stream (the upstream finishing, failing mid-way,
the client going away) the inference is closed with Streamed, Completed and, when anything was
consumed, Debited."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import orjson

from adapters.providers import ProviderStream
from adapters.providers.errors import ProviderError
from app.http.wire import encoder_for
from app.runtime import Runtime
from app.services.inference import Call, close, first_answer
from domain.catalog import Model
from domain.protocols.canonical import JSON, MessageAccumulator


async def open_stream(runtime: Runtime, call: Call) -> tuple[AsyncIterator[bytes], dict[str, str]]:
    """Opens the first upstream that answers; fallback happens only before the first byte.
    The first byte is held for the first generated output only while a failure before it
    could still fall back to another candidate."""
    canonical, headers = call.request.canonical, call.request.client_headers
    model, upstream = await first_answer(
        runtime, call, lambda provider, model, can_fall_back: provider.open_stream(
            canonical, model.upstream_model, until_content=can_fall_back,
            client_headers=headers))
    with call.audit():
        call.inference.dispatch(model.provider, model.upstream_model,
                                upstream.upstream_request_id, None)
    # Queued now, awaited just before the first byte goes out: a client that has seen a byte
    # of this answer can count on the attempt being on the ledger, even if this process dies
    # mid-stream, and the commit overlaps the work before the first frame.
    dispatched = runtime.writer.submit(call.inference)
    return relay(runtime, call, model, upstream, dispatched), call.headers()


async def relay(runtime: Runtime, call: Call, model: Model, upstream: ProviderStream,
                dispatched: asyncio.Future[int]) -> AsyncIterator[bytes]:
    encoder = encoder_for(call.request, call.public_id, model.slug)
    message = MessageAccumulator()
    status = "cancelled"  # unless the loop below reaches an end of its own
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
                runtime.metrics.observe_overhead(
                    call.request.surface, max(ttft_ms / 1000 - call.upstream_s, 0))
            frames += 1
            sent += len(frame)
            yield frame
        status = "fallback_succeeded" if call.errors else "succeeded"
        tail = encoder.finish()
        if tail:
            sent += len(tail)
            yield tail
    except ProviderError as error:
        status = "failed"
        call.errors.append(error)
        frame = encoder.error("api_error", f"upstream {error.provider} failed mid-stream: "
                                           f"{error.error_type}: {error.message}")
        sent += len(frame)
        yield frame
    finally:
        with call.audit():
            call.inference.record_stream(ttft_ms, frames, sent)
        digest = None
        if message.message is not None:
            digest = "sha256:" + hashlib.sha256(orjson.dumps(message.message)).hexdigest()
        try:
            await close(runtime, call, model, status, upstream.stop_reason, upstream.usage,
                        digest, streamed=True, output_chars=output_chars)
        finally:
            await upstream.aclose()


def _delta_chars(event: JSON) -> int:
    if event.get("type") != "content_block_delta":
        return 0
    delta = event.get("delta") or {}
    return len(delta.get("text") or delta.get("partial_json") or delta.get("thinking") or "")
