"""The write path's answers to faults (issue 10), driven directly like the rest of the unit
tier (tests/unit/test_inference_service.py, whose fixtures and helpers these reuse): every call
names its owning gateway; repair leaves a call that is being served alone; an upstream that
overruns max_tokens is cut there and debited for what was delivered (or, when not streamed,
debited in full and flagged); a closing write refused on a conflict tells the caller what the
ledger holds instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from app.http.wire import encoder_for, parse_request
from app.runtime import Runtime
from app.services.calls import Completion, RecordingIncomplete, StreamingCompletion
from app.services.inference import InferenceService
from app.services.repair import Owners, abandon
from app.services.router_settings import PreferenceGate
from app.telemetry import GatewayMetrics
from domain.context import audit_context
from domain.inference import MESSAGES, Inference
from domain.pricing import worst_case_cost
from tests.unit.test_inference_service import (
    ANTHROPIC_ANSWER,
    CATALOG,
    START,
    Upstreams,
    _inferences,
    _sse,
    caller,
    completed,
    events,
    kinds,
)

# The fixtures, re-exported by name so pytest finds them here.
from tests.unit.test_inference_service import runtime as runtime
from tests.unit.test_inference_service import upstreams as upstreams

ME = "gw_unit"


def service(runtime: Runtime, upstreams: Upstreams) -> InferenceService:
    return InferenceService(writer=runtime.writer, spend=runtime.spend,
                            providers=upstreams.providers(), catalog=CATALOG,
                            metrics=GatewayMetrics(),
                            preference_gate=PreferenceGate(runtime.store, initial=False),
                            fail_open=False, instance_id=ME)


def owners(**changes: Any) -> Owners:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {"now": now + timedelta(hours=2), "ttl": timedelta(seconds=15),
                              "known": frozenset({ME, "gw_b"}), "gone": frozenset(),
                              "legacy_grace": timedelta(hours=1)}
    fields.update(changes)
    return Owners(**fields)


def stream_request(max_tokens: int = 100) -> Any:
    return parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": max_tokens, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}))


class Pulled:
    """An upstream stream that counts how many of its parts were read."""

    def __init__(self, parts: list[bytes], pause: float = 0.0) -> None:
        self.parts = parts
        self.pause = pause
        self.read = 0
        self.gate = asyncio.Event()
        self.gate.set()

    def handler(self, _: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for part in self.parts:
                await self.gate.wait()
                self.read += 1
                if self.pause:
                    await asyncio.sleep(self.pause)
                yield part

        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})


def text_delta(text: str) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})


BLOCK = ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}})


async def test_every_call_names_the_gateway_that_owns_it(runtime: Runtime,
                                                         upstreams: Upstreams) -> None:
    who = caller(runtime)
    svc = service(runtime, upstreams)
    request = parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]}))
    outcome = await svc.run(request, who, "req_owner", encoder_for)
    assert isinstance(outcome, Completion)
    assert events(runtime, outcome.recorded.public_id)[0].instance_id == ME
    assert svc.in_flight == 0  # its end is recorded: this gateway no longer serves it


async def test_repair_leaves_a_call_being_served_alone(runtime: Runtime,
                                                       upstreams: Upstreams) -> None:
    upstream = Pulled([_sse(START, BLOCK), _sse(text_delta("hello")), _sse(
        ("message_stop", {"type": "message_stop"}))])
    upstreams.handlers["good"] = upstream.handler
    who = caller(runtime)
    svc = service(runtime, upstreams)
    outcome = await svc.run(stream_request(), who, "req_live", encoder_for)
    assert isinstance(outcome, StreamingCompletion)
    frames = outcome.frames
    await anext(frames)
    [inference_id] = _inferences(runtime)
    # Hours later by the clock, and this process's own heartbeat long gone from the table's
    # point of view: the call is still served here, so it is not closed.
    judged = owners(me=ME, serving=svc.is_live, gone=frozenset({ME}))
    assert await asyncio.to_thread(abandon, runtime.store, runtime.writer.save_blocking,
                                   [inference_id], judged) == 0
    # The same call as another process sees it while this gateway beats: not closed either.
    assert await asyncio.to_thread(abandon, runtime.store, runtime.writer.save_blocking,
                                   [inference_id], owners(me="gw_other")) == 0
    body = b"".join([frame async for frame in frames])
    assert b"message_stop" in body
    assert completed(runtime, outcome.recorded.public_id).status == "succeeded"


def test_whose_open_calls_are_abandoned() -> None:
    routed = datetime.now(UTC)
    call = owners(me=ME, serving=lambda _: False)
    from uuid import uuid4

    some = uuid4()
    assert call.reason(some, ME, routed) is not None  # ours, and not being served
    assert owners(me=ME, serving=lambda _: True).reason(some, ME, routed) is None
    assert call.reason(some, "gw_b", routed) is None  # alive as far as anyone can tell
    assert "stopped or went silent" in (
        owners(gone=frozenset({"gw_b"})).reason(some, "gw_b", routed) or "")
    assert owners().reason(some, "gw_forgotten", routed) is not None
    # Recorded before calls named their gateway: the age rule of AINFERA_ABANDON_AFTER_S.
    assert owners().reason(some, None, routed) is not None
    assert owners(now=routed + timedelta(minutes=5)).reason(some, None, routed) is None


def test_a_silent_instance_is_gone_only_if_still_silent_at_the_recheck() -> None:
    from adapters.instances import Beat
    from app.services.repair import gone_instances

    now = datetime.now(UTC)
    ttl = timedelta(seconds=15)
    old = now - timedelta(seconds=60)
    first = {"gw_dead": Beat("gw_dead", old, old, None),
             "gw_back": Beat("gw_back", old, old, None),  # silent only while the store was down
             "gw_stopped": Beat("gw_stopped", now, now, now),
             "gw_live": Beat("gw_live", now, now, None)}
    second = {**first, "gw_back": Beat("gw_back", now, now, None)}
    assert gone_instances(first, second, now, ttl) == {"gw_dead", "gw_stopped"}


async def test_an_overrunning_stream_is_cut_at_max_tokens(runtime: Runtime,
                                                          upstreams: Upstreams) -> None:
    words = [_sse(text_delta("word ")) for _ in range(200)]  # 1,000 characters
    upstream = Pulled([_sse(START, BLOCK), *words, _sse(
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 400}}),
        ("message_stop", {"type": "message_stop"}))])
    upstreams.handlers["good"] = upstream.handler
    who = caller(runtime)
    outcome = await service(runtime, upstreams).run(stream_request(max_tokens=10), who,
                                                    "req_overrun", encoder_for)
    assert isinstance(outcome, StreamingCompletion)
    body = b"".join([frame async for frame in outcome.frames])
    delivered = body.count(b"word ")
    # 10 tokens at 4 characters a token: 40 characters, 8 words, then a proper ending.
    assert delivered == 8
    assert b'"stop_reason":"max_tokens"' in body
    assert body.rstrip().endswith(b'data: {"type":"message_stop"}')
    await asyncio.sleep(0.1)
    assert upstream.read < len(upstream.parts) // 2, "the upstream stream was not closed"
    recorded = events(runtime, outcome.recorded.public_id)
    done = completed(runtime, outcome.recorded.public_id)
    assert done.overrun == {"max_tokens": 10, "output_tokens": 10, "cut": True}
    assert done.stop_reason == "max_tokens"
    debited = Decimal(recorded[-1].cost_usd)
    good = next(m for m in CATALOG.models if m.slug == "good-model")
    # What was delivered: 10 output tokens (and the 10 input tokens the upstream reported),
    # so no more output than the hold for max_tokens covers.
    assert debited == Decimal("0.00018")
    assert debited <= worst_case_cost(good, 10, 10)


async def test_an_overrunning_answer_is_debited_in_full_and_flagged(
        runtime: Runtime, upstreams: Upstreams) -> None:
    answer = {**ANTHROPIC_ANSWER, "usage": {"input_tokens": 10, "output_tokens": 400}}
    upstreams.handlers["good"] = lambda _: httpx.Response(200, json=answer)
    who = caller(runtime)
    request = parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]}))
    outcome = await service(runtime, upstreams).run(request, who, "req_over", encoder_for)
    assert isinstance(outcome, Completion)
    done = completed(runtime, outcome.recorded.public_id)
    assert done.overrun == {"max_tokens": 50, "output_tokens": 400, "cut": False}
    debited = events(runtime, outcome.recorded.public_id)[-1]
    assert Decimal(debited.cost_usd) == Decimal("0.00603")  # 10 in at $3/M, 400 out at $15/M


async def test_a_refused_closing_write_says_what_the_ledger_holds(
        runtime: Runtime, upstreams: Upstreams) -> None:
    async def answer_after_someone_else_closed_it(_: httpx.Request) -> httpx.Response:
        [inference_id] = _inferences(runtime)
        inference = runtime.store.get(inference_id, Inference)
        with audit_context("t", "a", "repair_elsewhere"):
            inference.complete("abandoned", None, None, None, None)
        runtime.store.save_events(inference.collect_events())
        return httpx.Response(200, json=ANTHROPIC_ANSWER)

    upstreams.handlers["good"] = answer_after_someone_else_closed_it
    who = caller(runtime)
    request = parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]}))
    with pytest.raises(RecordingIncomplete) as refused:
        await service(runtime, upstreams).run(request, who, "req_conflict", encoder_for)
    assert not refused.value.pending
    assert "Completed (abandoned, by repair_elsewhere)" in refused.value.message
    assert "not on the ledger" in refused.value.message
    assert "nothing was recorded" not in refused.value.message
    assert kinds(runtime, refused.value.recorded.public_id) == ["Routed", "Completed"]
