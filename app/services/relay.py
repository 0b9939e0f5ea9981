"""Native streaming, the write path's half: upstream events are encoded (by the edge's encoder)
and handed on as they arrive, never buffered and replayed. Whatever ends the stream (the
upstream finishing, failing mid-way, overrunning max_tokens, the client going away) the
inference is closed with Streamed, Completed and, when anything was consumed, Debited: that is
where the exactly-one-Completed guarantee holds for streams.

Two rules make "the client saw the whole answer" mean "the ledger has it":
- the first byte waits for the Dispatched attempt to be committed, and the terminal frame
  (`message_stop`, `[DONE]`) for the Completed: if the ledger cannot take either in time (its
  store is down), the stream ends with an error frame instead, and the events are recorded by
  the writer as soon as the store is back;
- an upstream that overruns max_tokens is cut there: relaying stops, the upstream stream is
  closed, the caller gets a proper end (`stop_reason: max_tokens`), and what was delivered is
  debited, with the overrun recorded in Completed. Delivered output is counted at
  OVERRUN_CHARS_PER_TOKEN characters a token (typical of English), so an upstream that honours
  max_tokens is not cut unless its text runs longer than that per token.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, Final, Protocol

import orjson

from adapters.providers import ProviderStream
from adapters.providers.errors import ProviderError
from adapters.writer import WriteFailedError
from app.services.calls import FrameEncoder, InFlight, RecordingIncomplete
from app.telemetry import GatewayMetrics
from domain.catalog import Model
from domain.inference import Status
from domain.protocols.canonical import JSON, NATIVE_FRAME, MessageAccumulator, Usage

OVERRUN_CHARS_PER_TOKEN: Final = 4

# Cleanup that must finish even when the task running it is being cancelled (a client gone):
# run as tasks of their own, kept here until done.
_cleanups: set[asyncio.Task[Any]] = set()


class Close(Protocol):
    def __call__(self, call: InFlight, model: Model | None, status: Status,
                 stop_reason: str | None, usage: Usage | None, digest: str | None,
                 streamed: bool, output_chars: int = 0,
                 overrun: dict[str, Any] | None = None,
                 measured_output: int | None = None) -> Awaitable[None]: ...


def response_digest(message: JSON) -> str:
    """What Completed records of the answer: a digest, never the text (DESIGN section 3)."""
    return "sha256:" + hashlib.sha256(orjson.dumps(message)).hexdigest()


def delivered_tokens(chars: int) -> int:
    """Output tokens delivered, as the overrun rule counts them (rounded up)."""
    return -(-chars // OVERRUN_CHARS_PER_TOKEN)


def finish_in_background(work: Coroutine[Any, Any, Any]) -> None:
    """Runs cleanup to its end even if the caller is cancelled at its next await."""
    task = asyncio.ensure_future(work)
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


async def relay(call: InFlight, model: Model, upstream: ProviderStream,
                dispatched: asyncio.Future[int], encoder: FrameEncoder, close: Close,
                metrics: GatewayMetrics, wait_s: float,
                max_tokens: int) -> AsyncIterator[bytes]:
    message = MessageAccumulator()
    status = Status.CANCELLED  # unless the loop below reaches an end of its own
    ttft_ms: int | None = None
    frames = sent = output_chars = 0
    open_blocks: set[int] = set()
    overrun: dict[str, Any] | None = None
    usage: Usage | None = None
    stop_reason: str | None = None
    closed = False
    held = b""  # the terminal frame, sent once Completed is recorded

    async def finish(end: Status, usage_now: Usage | None, reason: str | None) -> None:
        nonlocal closed
        closed = True
        with call.audit():
            call.inference.record_stream(ttft_ms, frames, sent)
        digest = None if message.message is None else response_digest(message.message)
        await close(call, model, end, reason, usage_now, digest, streamed=True,
                    output_chars=output_chars, overrun=overrun,
                    measured_output=None if overrun is None or not overrun["cut"]
                    else overrun["output_tokens"])

    native = False  # the upstream speaks the caller's protocol: its own frames are relayed
    try:
        async for event in upstream:
            kind = event.get("type")
            if kind == NATIVE_FRAME:
                # Counted here, ahead of the canonical events read from the same chunk, since
                # this is the frame the caller would be sent.
                native = True
                chars = _native_chars(event.get("frame") or {})
            else:
                chars = 0 if native else _delta_chars(event)
            if chars and delivered_tokens(output_chars + chars) > max_tokens:
                # The upstream is past the limit the caller asked for: stop here.
                overrun = {"max_tokens": max_tokens, "output_tokens":
                           delivered_tokens(output_chars), "cut": True}
                break
            message.feed(event)
            output_chars += chars
            if kind == "content_block_start":
                open_blocks.add(int(event["index"]))
            elif kind == "content_block_stop":
                open_blocks.discard(int(event["index"]))
            frame = encoder.encode(event)
            if kind == "message_stop":
                held = frame
                continue
            if not frame:
                continue
            if ttft_ms is None:
                if not await _committed(dispatched, wait_s):
                    status = Status.FAILED
                    yield encoder.error("api_error", _unrecorded(call, "its dispatch"))
                    return
                ttft_ms = call.elapsed_ms()
                # Our share of the time to first byte: all of it but the upstream's.
                metrics.observe_overhead(
                    call.request.surface, max(ttft_ms / 1000 - call.upstream_s, 0))
            frames += 1
            sent += len(frame)
            yield frame
        status = Status.FALLBACK_SUCCEEDED if call.errors else Status.SUCCEEDED
        usage, stop_reason = upstream.usage, upstream.stop_reason
        if overrun is not None:
            # Close the upstream now (it would keep generating), then end the caller's stream
            # as an upstream that stopped at max_tokens would have.
            finish_in_background(upstream.aclose())
            delivered = overrun["output_tokens"]
            ending = (_native_ending(upstream.usage, delivered) if native
                      else _ending(open_blocks, delivered))
            tail = b"".join(encoder.encode(e) for e in ending)
            frames += 1
            sent += len(tail)
            yield tail
            # The upstream never said how much it produced (it was cut off before its usage
            # frame): the output is what was delivered, counted by the overrun rule.
            usage = {**upstream.usage, "output_tokens": None}
            held, stop_reason = encoder.encode({"type": "message_stop"}), "max_tokens"
        elif _over(upstream.usage, max_tokens):
            # Past the limit by the upstream's own count, though not by ours: debited in full
            # as reported, and flagged.
            overrun = {"max_tokens": max_tokens,
                       "output_tokens": upstream.usage["output_tokens"], "cut": False}
        # The terminal frames count as sent in Streamed (recorded just below): they are sent
        # right after it, unless recording fails, when an error frame goes in their place.
        tail = held + encoder.finish()
        frames += 1 if held else 0
        sent += len(tail)
        try:
            await finish(status, usage, stop_reason)
        except RecordingIncomplete as failure:
            yield encoder.error("api_error", failure.message)
            return
        if tail:
            yield tail
    except ProviderError as error:
        status = Status.FAILED
        call.errors.append(error)
        frame = encoder.error("api_error", f"upstream {error.provider} failed mid-stream: "
                                           f"{error.error_type}: {error.message}")
        sent += len(frame)
        yield frame
    finally:
        try:
            if not closed:
                # Cancelled (the client left), failed, or refused for want of a ledger: the
                # close is queued before its first await, so it is recorded even if that await
                # is cancelled; a recording problem is the ledger's, logged by the writer.
                await finish(status, upstream.usage, upstream.stop_reason)
        except RecordingIncomplete:
            pass
        finally:
            finish_in_background(upstream.aclose())


async def _committed(dispatched: asyncio.Future[int], wait_s: float) -> bool:
    """Whether the Dispatched attempt is on the ledger within `wait_s` (it stays queued
    either way: the writer records it as soon as the store answers)."""
    try:
        await asyncio.wait_for(asyncio.shield(dispatched), wait_s)
    except TimeoutError:
        return False
    except WriteFailedError:
        return False
    return True


def _unrecorded(call: InFlight, what: str) -> str:
    return (f"the ledger store is unavailable, so {what} could not be recorded in time; this "
            f"stream stops here and inference {call.recorded().public_id} is recorded as soon "
            "as the store is back")


def _ending(open_blocks: set[int], output_tokens: int) -> list[JSON]:
    """What an upstream that stopped at max_tokens would have sent after the last delta."""
    events: list[JSON] = [{"type": "content_block_stop", "index": i}
                          for i in sorted(open_blocks)]
    events.append({"type": "message_delta",
                   "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                   "usage": {"output_tokens": output_tokens}})
    return events


def _native_ending(usage: Usage, output_tokens: int) -> list[JSON]:
    """The same, as the caller's own protocol's frames (an OpenAI-compatible upstream's
    chunks are relayed as they are): a `length` finish, then the usage chunk (which the encoder
    passes on only to a caller that asked for usage)."""
    created = int(time.time())
    prompt = usage.get("input_tokens") or 0
    chunk = {"object": "chat.completion.chunk", "created": created}
    return [
        {"type": NATIVE_FRAME, "frame": {**chunk, "choices": [
            {"index": 0, "delta": {}, "finish_reason": "length"}]}},
        {"type": NATIVE_FRAME, "frame": {**chunk, "choices": [], "usage": {
            "prompt_tokens": prompt, "completion_tokens": output_tokens,
            "total_tokens": prompt + output_tokens}}},
    ]


def _native_chars(chunk: JSON) -> int:
    """Characters of output in an OpenAI chunk: text, refusal, reasoning and tool arguments."""
    count = 0
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        for name in ("content", "refusal", "reasoning_content"):
            value = delta.get(name)
            count += len(value) if isinstance(value, str) else 0
        for call in delta.get("tool_calls") or []:
            arguments = ((call or {}).get("function") or {}).get("arguments")
            count += len(arguments) if isinstance(arguments, str) else 0
    return count


def _over(usage: Usage, max_tokens: int) -> bool:
    output = usage.get("output_tokens")
    return isinstance(output, int) and output > max_tokens


def _delta_chars(event: JSON) -> int:
    if event.get("type") != "content_block_delta":
        return 0
    delta = event.get("delta") or {}
    return len(delta.get("text") or delta.get("partial_json") or delta.get("thinking") or "")
