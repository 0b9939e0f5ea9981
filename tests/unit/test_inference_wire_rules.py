"""The write path's share of wire fidelity (app/services/inference.py), driven directly as in
test_inference_service.py: a pinned model that cannot serve a call is refused before anything
is recorded, a routed call needing what no model has is recorded as rejected, and a call with no
output limit reserves what the backend may really produce."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.http.wire import encoder_for, parse_request
from app.runtime import Runtime, open_runtime
from app.services.calls import CannotServe, Completion, InferenceRefused
from app.settings import Settings
from domain.catalog import catalog_from_dict
from domain.inference import CHAT
from tests.unit.test_inference_service import (
    CATALOG,
    Upstreams,
    caller,
    completed,
    messages,
    service,
)


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


def chat(model: str, **extra: Any) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
    return parse_request(CHAT, orjson.dumps(body))


async def test_a_pinned_model_whose_protocol_would_refuse_a_field_records_nothing(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    before = runtime.store.max_notification_id()
    # cheap-model is OpenAI-compatible: no top-k sampling there.
    with pytest.raises(CannotServe) as raised:
        await service(runtime, upstreams).run(messages("cheap-model", top_k=5), who, "r",
                                              encoder_for)
    assert (raised.value.reason, raised.value.param) == ("not_translatable", "top_k")
    assert raised.value.recorded is None
    assert runtime.store.max_notification_id() == before
    assert upstreams.seen == {"cheap": [], "good": []}


async def test_a_pinned_model_without_a_capability_records_nothing(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    before = runtime.store.max_notification_id()
    request = chat("good-model", response_format={"type": "json_schema", "json_schema": {
        "name": "w", "schema": {"type": "object"}}})
    with pytest.raises(CannotServe) as raised:
        await service(runtime, upstreams).run(request, who, "r", encoder_for)
    assert raised.value.reason == "structured_output_not_supported_by_backend"
    assert "supports_structured_output" in raised.value.message
    assert runtime.store.max_notification_id() == before


async def test_a_routed_call_no_model_can_carry_is_recorded_as_rejected(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    request = chat("ainfera-inference", reasoning_effort="low")
    with pytest.raises(InferenceRefused) as raised:
        await service(runtime, upstreams).run(request, who, "r", encoder_for)
    # No model has thinking: the caller gets the code a pinned call would; the ledger says
    # rejected_floor (no model could serve it).
    assert raised.value.reason == "thinking_not_supported_by_backend"
    assert "thinking_unsupported" in raised.value.message
    assert raised.value.recorded is not None
    assert completed(runtime, raised.value.recorded.public_id).status == "rejected_floor"


def capable(max_output: int) -> Any:
    data: dict[str, Any] = {
        "providers": {"cheap": {"kind": "openai", "base_url": "https://cheap.example/v1",
                                "api_key_env": "CHEAP_KEY"}},
        "models": [{"slug": "cheap-model", "provider": "cheap", "upstream_model": "up-cheap",
                    "quality": "0.70", "input_usd_per_mtok": "1", "output_usd_per_mtok": "2",
                    "supports_tools": True, "max_output_tokens": max_output}],
    }
    return catalog_from_dict(data)


async def test_a_call_without_a_limit_reserves_what_the_model_may_produce(
        runtime: Runtime, upstreams: Upstreams) -> None:
    # 100,000 output tokens at $2/M may cost $0.20: more than a $0.05 cap allows, although
    # the 4096 once assumed for every call without a limit (about $0.008) would fit.
    who = caller(runtime, cap="0.05")
    with pytest.raises(InferenceRefused) as raised:
        await service(runtime, upstreams, capable(100_000)).run(chat("cheap-model"), who, "r",
                                                                encoder_for)
    assert raised.value.reason == "budget_exceeded"
    assert upstreams.seen["cheap"] == []
    # With a limit the caller set, the hold is that limit, and the call goes through, sending
    # the limit and nothing invented.
    outcome = await service(runtime, upstreams, capable(100_000)).run(
        chat("cheap-model", max_tokens=1000), who, "r2", encoder_for)
    assert isinstance(outcome, Completion)
    [sent] = upstreams.seen["cheap"]
    assert orjson.loads(sent.content)["max_tokens"] == 1000


async def test_the_chat_answer_of_an_openai_backend_is_its_own(
        runtime: Runtime, upstreams: Upstreams) -> None:
    who = caller(runtime)
    outcome = await service(runtime, upstreams, CATALOG).run(chat("cheap-model"), who, "r",
                                                             encoder_for)
    assert isinstance(outcome, Completion)
    assert outcome.native is not None
    assert outcome.native["id"] == "chatcmpl-up"
    [sent] = upstreams.seen["cheap"]
    body = orjson.loads(sent.content)
    assert body == {"model": "up-cheap", "messages": [{"role": "user", "content": "hello"}]}
