"""The write path without a subprocess: InferenceService driven directly, over a real SQLite
store and group-commit writer (in a temp dir), the in-process spend counters, and providers
on httpx.MockTransport. Every branch a call can take ends in exactly one Completed; each test
reads the recorded events back from the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.providers import Provider, build_provider
from app.http.wire import encoder_for, parse_request
from app.runtime import Runtime, open_runtime
from app.services import tenancy
from app.services.calls import (
    Completion,
    FallbackExhausted,
    InferenceRefused,
    InvalidRequest,
    ModelNotFound,
    StreamingCompletion,
)
from app.services.inference import InferenceService
from app.services.router_settings import PreferenceGate
from app.services.tenancy import Caller
from app.settings import Settings
from app.telemetry import GatewayMetrics
from domain.catalog import Catalog, catalog_from_dict
from domain.ids import parse_inference_id
from domain.inference import CHAT, MESSAGES

CATALOG = catalog_from_dict({
    "providers": {
        "cheap": {"kind": "openai", "base_url": "https://cheap.example/v1",
                  "api_key_env": "CHEAP_KEY"},
        "good": {"kind": "anthropic", "base_url": "https://good.example",
                 "api_key_env": "GOOD_KEY"},
        "absent": {"kind": "openai", "base_url": "https://absent.example/v1",
                   "api_key_env": "ABSENT_KEY"},
    },
    "models": [
        {"slug": "cheap-model", "provider": "cheap", "upstream_model": "up-cheap",
         "quality": "0.70", "input_usd_per_mtok": "1", "output_usd_per_mtok": "2",
         "supports_tools": True},
        {"slug": "good-model", "provider": "good", "upstream_model": "up-good",
         "quality": "0.90", "input_usd_per_mtok": "3", "output_usd_per_mtok": "15",
         "supports_tools": True},
        {"slug": "unkeyed-model", "provider": "absent", "upstream_model": "up-absent",
         "quality": "0.95", "input_usd_per_mtok": "9", "output_usd_per_mtok": "9",
         "supports_tools": True},
    ],
    "router": {"default_min_quality": "0.50"},
})

ANTHROPIC_ANSWER = {
    "id": "msg_up", "type": "message", "role": "assistant", "model": "up-good",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5},
}  # fmt: skip
OPENAI_ANSWER = {
    "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "up-cheap",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}  # fmt: skip

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Upstreams:
    """One MockTransport per provider name, with every request each one saw."""

    def __init__(self) -> None:
        self.seen: dict[str, list[httpx.Request]] = {"cheap": [], "good": []}
        self.handlers: dict[str, Handler] = {
            "cheap": lambda _: httpx.Response(200, json=OPENAI_ANSWER),
            "good": lambda _: httpx.Response(200, json=ANTHROPIC_ANSWER),
        }
        self.clients: list[httpx.AsyncClient] = []

    def providers(self) -> dict[str, Provider]:
        built: dict[str, Provider] = {}
        for name, kind in (("cheap", "openai"), ("good", "anthropic")):
            client = httpx.AsyncClient(transport=httpx.MockTransport(self._dispatch(name)))
            self.clients.append(client)
            base = CATALOG.provider_of(next(m for m in CATALOG.models
                                            if m.provider == name)).base_url
            built[name] = build_provider(name, kind, base, "sk-test", client)
        return built  # "absent" has no key: its models are skipped at dispatch

    def _dispatch(self, name: str) -> Callable[[httpx.Request], Any]:
        async def handle(request: httpx.Request) -> httpx.Response:
            self.seen[name].append(request)
            answer = self.handlers[name](request)
            return await answer if asyncio.iscoroutine(answer) else answer  # type: ignore[misc]

        return handle


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/ledger.db",
                        signing_key_file=str(tmp_path / "signing.key"))
    async with open_runtime(settings) as opened:
        yield opened


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    made = Upstreams()
    yield made
    for client in made.clients:
        await client.aclose()


def service(runtime: Runtime, upstreams: Upstreams, catalog: Catalog = CATALOG,
            fail_open: bool = False) -> InferenceService:
    return InferenceService(writer=runtime.writer, spend=runtime.spend,
                            providers=upstreams.providers(), catalog=catalog,
                            metrics=GatewayMetrics(),
                            preference_gate=PreferenceGate(runtime.store, initial=False),
                            fail_open=fail_open)


def caller(runtime: Runtime, cap: str | None = None) -> Caller:
    tenancy.create_tenant(runtime.store, "acme")
    tenancy.create_agent(runtime.store, "acme", "bot", None if cap is None else Decimal(cap))
    issued = tenancy.create_key(runtime.store, "acme", "bot")
    found = tenancy.authenticate(runtime.store, issued.key)
    assert found is not None
    return found


def messages(model: str, **extra: Any) -> Any:
    body = {"model": model, "max_tokens": 100,
            "messages": [{"role": "user", "content": "hello"}], **extra}
    return parse_request(MESSAGES, orjson.dumps(body))


def events(runtime: Runtime, public_id: str) -> list[Any]:
    return runtime.store.events_of(parse_inference_id(public_id))


def kinds(runtime: Runtime, public_id: str) -> list[str]:
    return [type(e).__name__ for e in events(runtime, public_id)]


def completed(runtime: Runtime, public_id: str) -> Any:
    [done] = [e for e in events(runtime, public_id) if type(e).__name__ == "Completed"]
    return done


async def settled(runtime: Runtime, who: Caller) -> Any:
    await runtime.spend.drain()
    from datetime import UTC, datetime

    return await runtime.spend.counters.usage(str(who.agent_id), datetime.now(UTC).date())


async def test_a_pinned_call_is_recorded_debited_and_settled(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    outcome = await service(runtime, upstreams).run(messages("good-model"), who, "req_1",
                                                    encoder_for)
    assert isinstance(outcome, Completion)
    assert outcome.served_model == "good-model"
    assert outcome.recorded.router == "direct"
    assert outcome.recorded.position is not None
    assert kinds(runtime, outcome.recorded.public_id) == [
        "Routed", "Dispatched", "Completed", "Debited"]
    assert completed(runtime, outcome.recorded.public_id).status == "succeeded"
    debited = events(runtime, outcome.recorded.public_id)[-1]
    # 10 input tokens at $3/M and 5 output at $15/M, from the upstream's own usage.
    assert Decimal(debited.cost_usd) == Decimal("0.000105")
    usage = await settled(runtime, who)
    assert usage.settled == Decimal("0.000105")
    assert usage.reserved == 0


async def test_a_routed_call_falls_back_on_a_retryable_error(
        runtime: Runtime, upstreams: Upstreams) -> None:
    upstreams.handlers["cheap"] = lambda _: httpx.Response(
        529, json={"error": {"message": "busy", "type": "overloaded"}})
    who = caller(runtime)
    outcome = await service(runtime, upstreams).run(
        messages("ainfera-inference"), who, "req_2", encoder_for)
    assert isinstance(outcome, Completion)
    assert outcome.served_model == "good-model"
    assert len(upstreams.seen["cheap"]) == 1
    assert len(upstreams.seen["good"]) == 1
    recorded = events(runtime, outcome.recorded.public_id)
    dispatched = [e for e in recorded if type(e).__name__ == "Dispatched"]
    # Cheapest first; the unkeyed provider between them is skipped, and recorded as such.
    assert [d.provider for d in dispatched] == ["cheap", "absent", "good"]
    assert dispatched[0].error["status"] == 529
    assert dispatched[1].error["type"] == "provider_not_configured"
    assert dispatched[2].error is None
    assert completed(runtime, outcome.recorded.public_id).status == "fallback_succeeded"


async def test_a_pinned_call_never_falls_back_and_names_the_failed_attempt(
        runtime: Runtime, upstreams: Upstreams) -> None:
    upstreams.handlers["cheap"] = lambda _: httpx.Response(
        500, json={"error": {"message": "boom", "type": "server_error"}})
    who = caller(runtime)
    with pytest.raises(FallbackExhausted) as raised:
        await service(runtime, upstreams).run(messages("cheap-model"), who, "req_3",
                                              encoder_for)
    error = raised.value
    assert [a.status for a in error.attempts] == [500]
    assert error.recorded is not None
    assert upstreams.seen["good"] == []
    assert kinds(runtime, error.recorded.public_id) == ["Routed", "Dispatched", "Completed"]
    assert completed(runtime, error.recorded.public_id).status == "failed"
    usage = await settled(runtime, who)
    assert usage.settled == 0
    assert usage.reserved == 0


async def test_a_provider_without_a_key_is_skipped_and_recorded(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    with pytest.raises(FallbackExhausted) as raised:
        await service(runtime, upstreams).run(messages("unkeyed-model"), who, "req_4",
                                              encoder_for)
    assert raised.value.attempts[0].error_type == "provider_not_configured"
    assert "ABSENT_KEY" in raised.value.attempts[0].message


async def test_the_quality_floor_refusal_is_recorded_and_nothing_goes_upstream(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    request = messages("ainfera-inference", routing_hint={"min_quality": 0.99})
    with pytest.raises(InferenceRefused) as raised:
        await service(runtime, upstreams).run(request, who, "req_5", encoder_for)
    assert raised.value.reason == "rejected_floor"
    assert raised.value.recorded is not None
    assert kinds(runtime, raised.value.recorded.public_id) == ["Routed", "Completed"]
    assert completed(runtime, raised.value.recorded.public_id).status == "rejected_floor"
    assert upstreams.seen == {"cheap": [], "good": []}


async def test_the_spend_cap_refusal_is_recorded_and_nothing_goes_upstream(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime, cap="0.000001")
    with pytest.raises(InferenceRefused) as raised:
        await service(runtime, upstreams).run(messages("good-model"), who, "req_6",
                                              encoder_for)
    assert raised.value.reason == "budget_exceeded"
    assert raised.value.recorded is not None
    assert completed(runtime, raised.value.recorded.public_id).status == "rejected_budget"
    assert upstreams.seen == {"cheap": [], "good": []}


async def test_an_unknown_model_or_bad_hint_records_nothing(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    before = runtime.store.max_notification_id()
    with pytest.raises(ModelNotFound):
        await service(runtime, upstreams).run(messages("no-such-model"), who, "r", encoder_for)
    with pytest.raises(InvalidRequest) as raised:
        await service(runtime, upstreams).run(
            messages("ainfera-inference", routing_hint={"min_quality": "high"}), who, "r",
            encoder_for)
    assert raised.value.param == "routing_hint"
    assert runtime.store.max_notification_id() == before


async def test_a_cancelled_call_still_gets_its_one_completed(
        runtime: Runtime, upstreams: Upstreams) -> None:
    started = asyncio.Event()

    async def hang(_: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    upstreams.handlers["good"] = hang
    who = caller(runtime)
    request = messages("good-model")
    task = asyncio.create_task(service(runtime, upstreams).run(request, who, "req_7",
                                                               encoder_for))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [inference_id] = _inferences(runtime)
    recorded = runtime.store.events_of(inference_id)
    assert [type(e).__name__ for e in recorded] == ["Routed", "Completed"]
    assert recorded[-1].status == "cancelled"
    usage = await settled(runtime, who)
    assert usage.reserved == 0


async def test_an_unexpected_failure_still_gets_its_one_completed(
        runtime: Runtime, upstreams: Upstreams) -> None:
    def broken(_: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in an adapter")

    upstreams.handlers["good"] = broken
    who = caller(runtime)
    with pytest.raises(RuntimeError):
        await service(runtime, upstreams).run(messages("good-model"), who, "req_8",
                                              encoder_for)
    [inference_id] = _inferences(runtime)
    recorded = runtime.store.events_of(inference_id)
    assert [type(e).__name__ for e in recorded] == ["Routed", "Completed"]
    assert recorded[-1].status == "failed"


def _sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
                    for name, data in events)


START = ("message_start", {"type": "message_start", "message": {
    "id": "msg_up", "type": "message", "role": "assistant", "model": "up-good", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 1}}})
BLOCK = ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}})
DELTA = ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello there"}})
STOP_BLOCK = ("content_block_stop", {"type": "content_block_stop", "index": 0})
END = ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                            "stop_sequence": None},
                         "usage": {"output_tokens": 4}})
STOP = ("message_stop", {"type": "message_stop"})


def _stream_reply(*parts: bytes) -> Handler:
    """An SSE answer delivered in `parts`, the later ones after the first has been read."""

    async def chunks() -> AsyncIterator[bytes]:
        for number, part in enumerate(parts):
            if number:
                await asyncio.sleep(0.05)
            yield part

    return lambda _: httpx.Response(200, content=chunks(),
                                    headers={"content-type": "text/event-stream"})


async def test_a_stream_is_relayed_then_closed_with_streamed_completed_and_debited(
        runtime: Runtime, upstreams: Upstreams) -> None:
    upstreams.handlers["good"] = _stream_reply(_sse(START, BLOCK, DELTA, STOP_BLOCK, END, STOP))
    who = caller(runtime)
    request = parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}))
    outcome = await service(runtime, upstreams).run(request, who, "req_9", encoder_for)
    assert isinstance(outcome, StreamingCompletion)
    body = b"".join([frame async for frame in outcome.frames])
    assert b"Hello there" in body
    assert b"event: message_stop" in body
    recorded = events(runtime, outcome.recorded.public_id)
    assert [type(e).__name__ for e in recorded] == [
        "Routed", "Dispatched", "Streamed", "Completed", "Debited"]
    streamed = recorded[2]
    assert streamed.chunks == 6
    assert streamed.bytes == len(body)
    assert recorded[3].status == "succeeded"
    assert Decimal(recorded[4].cost_usd) == Decimal("0.00009")  # 10 in at $3/M, 4 out at $15/M


async def test_a_stream_that_fails_midway_ends_with_an_error_frame_and_is_recorded_failed(
        runtime: Runtime, upstreams: Upstreams) -> None:
    error = ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "busy"}})
    upstreams.handlers["good"] = _stream_reply(_sse(START, BLOCK, DELTA), _sse(error))
    who = caller(runtime)
    request = parse_request(CHAT, orjson.dumps({
        "model": "good-model", "stream": True, "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]}))
    outcome = await service(runtime, upstreams).run(request, who, "req_10", encoder_for)
    assert isinstance(outcome, StreamingCompletion)
    frames = [frame async for frame in outcome.frames]
    assert b"failed mid-stream" in frames[-1]
    recorded = events(runtime, outcome.recorded.public_id)
    assert [type(e).__name__ for e in recorded] == [
        "Routed", "Dispatched", "Streamed", "Completed", "Debited"]
    assert recorded[3].status == "failed"
    # What was delivered is debited, marked as estimated where the upstream never said.
    assert recorded[4].price_version.endswith("+estimated")


async def test_a_client_that_leaves_a_stream_gets_it_closed_as_cancelled(
        runtime: Runtime, upstreams: Upstreams) -> None:
    upstreams.handlers["good"] = _stream_reply(_sse(START, BLOCK, DELTA, DELTA, DELTA, END,
                                                    STOP))
    who = caller(runtime)
    request = parse_request(MESSAGES, orjson.dumps({
        "model": "good-model", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}))
    outcome = await service(runtime, upstreams).run(request, who, "req_11", encoder_for)
    assert isinstance(outcome, StreamingCompletion)
    frames = outcome.frames
    await anext(frames)
    await frames.aclose()  # what the server does when the client goes away
    recorded = events(runtime, outcome.recorded.public_id)
    assert [type(e).__name__ for e in recorded][-3:] == ["Streamed", "Completed", "Debited"]
    assert recorded[-2].status == "cancelled"


def _inferences(runtime: Runtime) -> list[Any]:
    from domain.inference import Inference

    found = []
    for notification in runtime.store.notifications(1, 1000):
        event = runtime.store.decode(notification)
        if isinstance(event, Inference.Routed):
            found.append(event.originator_id)
    return found


def test_fallback_exhausted_lists_every_attempt() -> None:
    from adapters.providers.errors import ConnectionFailed, ProviderError, error_for_status
    from app.services.calls import Recorded

    attempts: list[ProviderError] = [
        error_for_status("a", 529, "overloaded_error", "busy"),
        ConnectionFailed("b", None, "connect_error", "refused"),
    ]
    error = FallbackExhausted(attempts, Recorded("msg_1", "agent", "ainfera-inference"))
    assert error.attempts == attempts
    assert "a: overloaded_error (529)" in str(error)
    assert "b: connect_error: refused" in str(error)  # no "(None)" for a missing status
