"""The official `anthropic` and `openai` SDKs, unchanged but for base_url, against a gateway
process on a real socket, in front of the loopback fake upstream; on SQLite and PostgreSQL.
Every call is checked on the ledger too: its events, read back through the API."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import POSTGRES_URL, _check_postgres
from tests.fakes.upstream import http_error, start_fake_upstream, text, tool_call
from tests.harness.gateway import Gateway, run_gateway, scratch_database

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}
OPENAI_WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city",
                 "parameters": WEATHER_TOOL["input_schema"]},
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if request.param == "postgres":
        _check_postgres()
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    with start_fake_upstream() as fake, \
            scratch_database(request.param, tmp, POSTGRES_URL) as url, \
            run_gateway(url, fake, tmp) as gw:
        yield gw


@pytest.fixture(autouse=True)
def default_scripts(gateway: Gateway) -> None:
    for model in ("up-gpt", "up-gemini", "up-claude", "up-weak"):
        gateway.fake.script(model, text(f"Hello from {model}."))


_clients: list[anthropic.Anthropic | openai.OpenAI] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def claude(gw: Gateway, key: str | None = None, **kw: Any) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gw.url, api_key=key or gw.key, max_retries=0, **kw)
    _clients.append(client)
    return client


def gpt(gw: Gateway, key: str | None = None) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key or gw.key, max_retries=0)
    _clients.append(client)
    return client


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_anthropic_text_through_an_alias_is_routed_and_recorded(gateway: Gateway) -> None:
    raw = claude(gateway).messages.with_raw_response.create(
        model="ainfera-auto", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    message = raw.parse()
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from up-gpt."
    assert message.usage.input_tokens == 12
    assert raw.headers["x-ainfera-inference-id"] == message.id
    assert raw.headers["x-ainfera-router"] == "ainfera-inference"
    assert raw.headers["x-ainfera-stream-mode"] == "native"
    assert raw.headers["x-ainfera-agent-id"] == gateway.agent_id
    assert raw.headers["x-ainfera-audit-url"] == f"/v1/inferences/{message.id}"
    assert raw.headers["request-id"].startswith("req_")
    events = gateway.events(message.id)
    assert types_of(events) == ["Routed", "Dispatched", "Completed", "Debited"]
    routed = events[0]
    assert routed["router"] == "ainfera-inference"
    assert routed["alias_hit"] == "ainfera-auto"
    assert routed["chosen_model"] == "fake-gpt"
    assert routed["request_id"] == raw.headers["request-id"]
    eligible = [c["model"] for c in routed["candidates"] if c["eligible"]]
    assert eligible == ["fake-gpt", "fake-gemini", "fake-claude"]
    weak = next(c for c in routed["candidates"] if c["model"] == "fake-weak")
    assert weak["cleared_floor"] is False
    assert weak["rejection_reason"] == "below_floor"
    assert events[2]["status"] == "succeeded"
    assert events[2]["usage"]["input_tokens"] == 12
    assert events[2]["usage"]["output_tokens"] == 7
    # 12 input at $1/M + 7 output at $4/M
    assert events[3]["cost_usd"] == "0.00004"


def test_anthropic_stream_is_native_and_recorded(gateway: Gateway) -> None:
    gateway.fake.script("up-claude", text("one two three four five six", chunk_delay=0.3))
    started = time.monotonic()
    first_text_at = None
    with claude(gateway).messages.stream(
        model="fake-claude", max_tokens=64, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        for chunk in stream.text_stream:
            if first_text_at is None and chunk:
                first_text_at = time.monotonic() - started
        final = stream.get_final_message()
    total = time.monotonic() - started
    assert "".join(b.text for b in final.content if b.type == "text") == \
        "one two three four five six"
    assert first_text_at is not None
    # Native: the first words arrive while the upstream is still sending the rest.
    assert first_text_at < total / 2
    events = gateway.wait_for_completion(final.id)
    assert types_of(events) == ["Routed", "Dispatched", "Streamed", "Completed", "Debited"]
    assert events[0]["router"] == "direct"
    assert events[0]["candidates"] == []
    assert events[2]["mode"] == "native"
    assert events[2]["chunks"] > 3
    assert events[3]["status"] == "succeeded"
    assert events[3]["usage"]["output_tokens"] == 7


@pytest.mark.parametrize("model", ["fake-claude", "fake-gpt", "fake-gemini"])
def test_anthropic_tools_both_modes_on_every_backend(gateway: Gateway, model: str) -> None:
    upstream = {"fake-claude": "up-claude", "fake-gpt": "up-gpt", "fake-gemini": "up-gemini"}
    gateway.fake.script(upstream[model], tool_call("get_weather", {"city": "Paris"}))
    client = claude(gateway)
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    message = client.messages.create(model=model, max_tokens=64, messages=ask,
                                     tools=[WEATHER_TOOL], tool_choice={"type": "auto"})
    assert message.stop_reason == "tool_use"
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert use.input == {"city": "Paris"}
    with client.messages.stream(model=model, max_tokens=64, messages=ask,
                                tools=[WEATHER_TOOL]) as stream:
        streamed = stream.get_final_message()
    streamed_use = next(b for b in streamed.content if b.type == "tool_use")
    assert streamed_use.input == {"city": "Paris"}
    # The tool_result turn goes back through the same surface.
    gateway.fake.script(upstream[model], text("It is sunny."))
    follow = client.messages.create(model=model, max_tokens=64, tools=[WEATHER_TOOL], messages=[
        *ask,
        {"role": "assistant", "content": [b.model_dump() for b in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "sunny, 21C"}]},
    ])
    assert follow.content[0].text == "It is sunny."
    sent = gateway.fake.requests[-1].body
    assert "sunny, 21C" in str(sent)


def test_openai_text_stream_usage_and_tools(gateway: Gateway) -> None:
    client = gpt(gateway)
    completion = client.chat.completions.create(
        model="ainfera-inference", messages=[{"role": "user", "content": "hi"}])
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "Hello from up-gpt."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 12
    chunks = list(client.chat.completions.create(
        model="fake-claude", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Hello from up-claude."
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    gateway.fake.script("up-gemini", tool_call("get_weather", {"city": "Oslo"}))
    tool_chunks = list(client.chat.completions.create(
        model="fake-gemini", messages=[{"role": "user", "content": "weather?"}],
        tools=[OPENAI_WEATHER_TOOL], stream=True))
    calls = [tc for c in tool_chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert arguments.replace(" ", "") == '{"city":"Oslo"}'
    events = gateway.wait_for_completion(tool_chunks[0].id)
    assert events[0]["api"] == "chat.completions"
    assert events[0]["tools"] == 1


def test_floor_rejection_is_recorded_and_answered_422(gateway: Gateway) -> None:
    with pytest.raises(anthropic.UnprocessableEntityError) as caught:
        claude(gateway).messages.create(
            model="ainfera-inference", max_tokens=16, messages=[{"role": "user", "content": "x"}],
            extra_body={"routing_hint": {"min_quality": "0.95"}})
    public_id = caught.value.response.headers["x-ainfera-inference-id"]
    events = gateway.events(public_id)
    assert types_of(events) == ["Routed", "Completed"]
    assert events[1]["status"] == "rejected_floor"
    assert events[0]["policy"]["min_quality"] == "0.95"
    with pytest.raises(openai.UnprocessableEntityError):
        gpt(gateway).chat.completions.create(
            model="ainfera-inference", messages=[{"role": "user", "content": "x"}],
            extra_body={"routing_hint": {"min_quality": 0.99}})


def test_fallback_on_a_retryable_upstream_error(gateway: Gateway) -> None:
    gateway.fake.script("up-gpt", http_error(503))
    message = claude(gateway).messages.create(
        model="ainfera-inference", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "Hello from up-gemini."
    events = gateway.events(message.id)
    assert types_of(events) == ["Routed", "Dispatched", "Dispatched", "Completed", "Debited"]
    assert events[1]["error"]["retryable"] is True
    assert events[1]["error"]["status"] == 503
    assert events[2]["error"] is None
    assert events[3]["status"] == "fallback_succeeded"


def test_a_pinned_model_never_falls_back(gateway: Gateway) -> None:
    gateway.fake.script("up-gpt", http_error(503))
    with pytest.raises(openai.InternalServerError) as caught:
        gpt(gateway).chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    events = gateway.events(caught.value.response.headers["x-ainfera-inference-id"])
    assert types_of(events) == ["Routed", "Dispatched", "Completed"]
    assert events[2]["status"] == "failed"


def test_upstream_rejection_keeps_its_status(gateway: Gateway) -> None:
    gateway.fake.script("up-claude", http_error(400, "invalid_request_error"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gateway).messages.create(model="fake-claude", max_tokens=16,
                                        messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_unknown_model_is_404_and_creates_nothing(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude(gateway).messages.create(model="gpt-17", max_tokens=16,
                                        messages=[{"role": "user", "content": "x"}])
    assert "x-ainfera-inference-id" not in caught.value.response.headers
    with pytest.raises(openai.NotFoundError) as oai:
        gpt(gateway).chat.completions.create(model="gpt-17",
                                             messages=[{"role": "user", "content": "x"}])
    assert set(oai.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert len(gateway.fake.requests) == before


def test_auth_and_validation_errors_in_each_shape(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        claude(gateway, key="ak_wrong").messages.create(
            model="fake-claude", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        gpt(gateway, key="ak_wrong").chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": gateway.key},
                          json={"model": "fake-claude", "messages": []})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    broken = httpx.post(f"{gateway.url}/v1/chat/completions",
                        headers={"authorization": f"Bearer {gateway.key}"}, content=b"{nope")
    assert broken.status_code == 400
    assert set(broken.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_request_fields_pass_through(gateway: Gateway) -> None:
    claude(gateway).messages.create(
        model="fake-claude", max_tokens=16, messages=[{"role": "user", "content": "x"}],
        extra_body={"service_tier": "auto", "container": "c-1"})
    sent = gateway.fake.requests[-1].body
    assert sent["service_tier"] == "auto"
    assert sent["container"] == "c-1"
    assert sent["model"] == "up-claude"
    assert "routing_hint" not in sent


def test_mid_stream_failure_becomes_an_error_event(gateway: Gateway) -> None:
    gateway.fake.script("up-claude", text("a b c d e f", fail_after=5, chunk_delay=0.05))
    texts: list[str] = []
    with claude(gateway).messages.stream(
        model="fake-claude", max_tokens=16, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        public_id = stream.response.headers["x-ainfera-inference-id"]
        with pytest.raises(anthropic.APIStatusError, match="mid-stream"):
            texts.extend(stream.text_stream)
    events = gateway.wait_for_completion(public_id)
    completed = next(e for e in events if e["type"] == "Completed")
    assert completed["status"] == "failed"


def test_client_disconnect_mid_stream_is_cancelled_and_debited(gateway: Gateway) -> None:
    gateway.fake.script("up-gpt", text(" ".join(["word"] * 40), chunk_delay=0.1))
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions",
                      headers={"authorization": f"Bearer {gateway.key}"},
                      json={"model": "fake-gpt", "stream": True,
                            "messages": [{"role": "user", "content": "talk"}]},
                      timeout=10) as response:
        public_id = response.headers["x-ainfera-inference-id"]
        lines = response.iter_lines()
        next(lines)
        next(lines)
    events = gateway.wait_for_completion(public_id)
    assert types_of(events)[:3] == ["Routed", "Dispatched", "Streamed"]
    completed = next(e for e in events if e["type"] == "Completed")
    assert completed["status"] == "cancelled"
    debited = [e for e in events if e["type"] == "Debited"]
    assert len(debited) == 1
    assert debited[0]["cost_usd"] != "0"


def test_models_list_and_tenant_isolation(gateway: Gateway) -> None:
    ids = [m.id for m in gpt(gateway).models.list()]
    assert ids[0] == "ainfera-inference"
    assert "fake-claude" in ids
    assert "ainfera-auto" not in ids
    message = claude(gateway).messages.create(model="fake-claude", max_tokens=8,
                                              messages=[{"role": "user", "content": "x"}])
    other = httpx.get(f"{gateway.url}/v1/inferences/{message.id}",
                      headers={"x-api-key": gateway.other_key})
    assert other.status_code == 404




def test_idempotent_retry_storm_dispatches_and_debits_once(gateway: Gateway) -> None:
    import concurrent.futures

    gateway.fake.script("up-claude", text("only once", first_byte_delay=0.3))
    before = len(gateway.fake.requests)
    body = {"model": "fake-claude", "max_tokens": 8,
            "messages": [{"role": "user", "content": "pay once"}]}
    headers = {"x-api-key": gateway.key, "idempotency-key": f"storm-{time.time_ns()}"}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    assert {r.status_code for r in responses} == {200}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert len(gateway.fake.requests) - before == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 49
    events = gateway.events(ids.pop())
    assert types_of(events).count("Debited") == 1
    reused = httpx.post(f"{gateway.url}/v1/messages", headers=headers, timeout=10,
                        json={**body, "max_tokens": 9})
    assert reused.status_code == 409
    assert reused.json()["error"]["type"] == "invalid_request_error"


def test_idempotent_stream_replays_the_transcript(gateway: Gateway) -> None:
    key = f"stream-{time.time_ns()}"
    client = claude(gateway, default_headers={"idempotency-key": key})
    texts = []
    for _ in range(2):
        with client.messages.stream(model="fake-claude", max_tokens=8,
                                    messages=[{"role": "user", "content": "again"}]) as stream:
            texts.append(stream.get_final_message())
    assert texts[0].id == texts[1].id
    assert texts[0].content == texts[1].content


def test_upstream_rate_limit_reaches_the_sdk_as_429(gateway: Gateway) -> None:
    gateway.fake.script("up-claude", http_error(429))
    with pytest.raises(anthropic.RateLimitError):
        claude(gateway).messages.create(model="fake-claude", max_tokens=8,
                                        messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError):
        gpt(gateway).chat.completions.create(model="fake-claude",
                                             messages=[{"role": "user", "content": "x"}])


def test_streamed_calls_are_debited_from_the_upstreams_usage(gateway: Gateway) -> None:
    # A finished stream: the upstream's own counts, priced exactly.
    with claude(gateway).messages.stream(
        model="fake-claude", max_tokens=16, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        final = stream.get_final_message()
    events = gateway.wait_for_completion(final.id)
    debited = next(e for e in events if e["type"] == "Debited")
    assert debited["cost_usd"] == "0.000141"  # 12 x $3/M + 7 x $15/M
    assert not debited["price_version"].endswith("+estimated")
    # Cut short: the counts the upstream sent in message_start are used (the output count
    # raised to what was measured as delivered, if that is more).
    gateway.fake.script("up-claude", text(" ".join(["word"] * 40), chunk_delay=0.1))
    with httpx.stream("POST", f"{gateway.url}/v1/messages", headers={"x-api-key": gateway.key},
                      json={"model": "fake-claude", "max_tokens": 64, "stream": True,
                            "messages": [{"role": "user", "content": "talk"}]},
                      timeout=10) as response:
        public_id = response.headers["x-ainfera-inference-id"]
        lines = response.iter_lines()
        for _ in range(8):
            next(lines)
    events = gateway.wait_for_completion(public_id)
    completed = next(e for e in events if e["type"] == "Completed")
    assert completed["status"] == "cancelled"
    assert completed["usage"]["input_tokens"] == 12
    debited = next(e for e in events if e["type"] == "Debited")
    assert Decimal(debited["cost_usd"]) > Decimal("0.000036")  # 12 input tokens at $3/M


def test_beta_features_reach_an_anthropic_backend(gateway: Gateway) -> None:
    message = claude(gateway).beta.messages.create(
        model="fake-claude", max_tokens=8, messages=[{"role": "user", "content": "x"}],
        betas=["token-efficient-tools-2025-02-19"])
    assert message.content[0].type == "text"
    sent = gateway.fake.requests[-1]
    assert sent.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    # An OpenAI-compatible backend would not know the header: it is not sent there.
    claude(gateway).beta.messages.create(
        model="fake-gpt", max_tokens=8, messages=[{"role": "user", "content": "x"}],
        betas=["token-efficient-tools-2025-02-19"])
    assert "anthropic-beta" not in gateway.fake.requests[-1].headers


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "fake-gpt", "max_tokens": 8,
                      "messages": [{"role": "user", "content": 123}]}),
    ("/v1/messages", {"model": "fake-gemini", "max_tokens": 8, "tools": "nope",
                      "messages": [{"role": "user", "content": "x"}]}),
    ("/v1/messages", {"model": "fake-gpt", "max_tokens": 8, "system": 5,
                      "messages": [{"role": "user", "content": "x"}]}),
    ("/v1/messages", {"model": "fake-gpt", "max_tokens": 8, "messages": [{"content": "x"}]}),
    ("/v1/chat/completions", {"model": "fake-claude",
                              "messages": [{"role": "user", "content": "x"}],
                              "tools": [{"type": "function"}]}),
    ("/v1/chat/completions", {"model": "fake-claude",
                              "messages": [{"role": "wizard", "content": "x"}]}),
])
def test_malformed_requests_are_400_naming_the_field(gateway: Gateway, path: str,
                                                     body: dict[str, Any]) -> None:
    response = httpx.post(f"{gateway.url}{path}", json=body, timeout=10,
                          headers={"x-api-key": gateway.key})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "[0]" in error["message"] or "must be" in error["message"]
    assert "x-ainfera-inference-id" not in response.headers


def test_a_request_no_backend_can_carry_is_400_and_recorded(gateway: Gateway) -> None:
    # An image by URL reaches an OpenAI-compatible backend fine, but a base64 PDF cannot.
    body = {"model": "fake-gpt", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}}]}]}
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10,
                          headers={"x-api-key": gateway.key})
    assert response.status_code == 400
    events = gateway.events(response.headers["x-ainfera-inference-id"])
    assert [e["type"] for e in events] == ["Routed", "Dispatched", "Completed"]
    assert events[2]["status"] == "failed"


def test_zz_every_kind_of_call_is_captured_and_verifies(gateway: Gateway) -> None:
    """Runs last in this module, so the store also holds every call of the tests above; it
    makes one of each kind itself too. Then the whole store replays into exactly the live
    read models, every routed call has its routing_outcomes row, every passthrough its direct
    audit record, and the ledger's chain, tree and checkpoints recompute from the events."""
    import subprocess

    from tests.harness.gateway import AINFERA

    client = claude(gateway)
    ask = [{"role": "user", "content": "x"}]
    client.messages.create(model="ainfera-inference", max_tokens=8, messages=ask)
    client.messages.create(model="ainfera/auto", max_tokens=8, messages=ask)
    client.messages.create(model="fake-claude", max_tokens=8, messages=ask)
    gateway.fake.script("up-gpt", http_error(503))
    client.messages.create(model="ainfera-inference", max_tokens=8, messages=ask)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model="fake-gpt", max_tokens=8, messages=ask)
    with pytest.raises(anthropic.UnprocessableEntityError):
        client.messages.create(model="ainfera-inference", max_tokens=8, messages=ask,
                               extra_body={"routing_hint": {"min_quality": "0.99"}})
    env = {**os.environ, "AINFERA_DATABASE_URL": gateway.database_url,
           "AINFERA_SIGNING_KEY_FILE": gateway.signing_key_file}
    result = subprocess.run([AINFERA, "verify", "--json"], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["rows"]["routing_outcomes"] >= 4
    usage = httpx.get(f"{gateway.url}/v1/usage/daily?days=1&consistent=true",
                      headers={"x-api-key": gateway.key}, timeout=10).json()
    by_status = usage["totals"]["by_status"]
    assert by_status["ok"] >= 4
    assert by_status["fallback"] >= 1
    assert by_status["error"] >= 2
