"""Wire fidelity through a real gateway process (issue 15), with the loopback fake upstream
recording every body it receives.

- Same protocol: what reaches the upstream is what the client sent, field by field, for both
  surfaces; the answer is the upstream's own (fields no translation would keep arrive).
- Across protocols: fields are translated, or the router avoids a backend that would refuse
  them, or a pinned call is refused naming the field; capabilities route or refuse (422).
- The official SDKs' structured-output helpers (`chat.completions.parse`, `messages.parse`,
  and their streaming forms) pinned to each vendor and routed. The fake answers JSON only when
  the request it received asks for it, so a dropped field fails the helper.
- Token limits, stream details and `POST /v1/messages/count_tokens`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pydantic
import pytest

from tests.conftest import POSTGRES_URL, _check_postgres
from tests.fakes.upstream import RecordedRequest, start_fake_upstream, text, tool_call
from tests.harness.gateway import PROVIDERS, Gateway, run_gateway, scratch_database

# Routed order by price: plain, gpt, gemini, reasoner, claude. Only some have capabilities.
CATALOG = PROVIDERS + """
[[models]]
slug = "fake-plain"
provider = "openai"
upstream_model = "up-plain"
quality = "0.72"
input_usd_per_mtok = "0.50"
output_usd_per_mtok = "1.00"
supports_tools = true

[[models]]
slug = "fake-gpt"
provider = "openai"
upstream_model = "up-gpt"
quality = "0.70"
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "4.00"
supports_tools = true
supports_structured_output = true

[[models]]
slug = "fake-gemini"
provider = "gemini"
upstream_model = "up-gemini"
quality = "0.75"
input_usd_per_mtok = "2.00"
output_usd_per_mtok = "8.00"
supports_tools = true
supports_structured_output = true
supports_thinking = true

[[models]]
slug = "fake-reasoner"
provider = "openai"
upstream_model = "up-reasoner"
quality = "0.78"
input_usd_per_mtok = "2.50"
output_usd_per_mtok = "9.00"
supports_tools = true
supports_structured_output = true
supports_thinking = true
max_tokens_field = "max_completion_tokens"
max_output_tokens = 100000

[[models]]
slug = "fake-claude"
provider = "anthropic"
upstream_model = "up-claude"
quality = "0.80"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"
supports_tools = true
supports_structured_output = true
supports_thinking = true
"""
UPSTREAM = {"fake-plain": "up-plain", "fake-gpt": "up-gpt", "fake-gemini": "up-gemini",
            "fake-reasoner": "up-reasoner", "fake-claude": "up-claude"}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}},
                      "required": ["city"]}


class Day(pydantic.BaseModel):
    day: str
    high_c: int


class Weather(pydantic.BaseModel):
    city: str
    temperature_c: float
    windy: bool
    forecast: list[Day]


EXPECTED = Weather(city="text", temperature_c=1.5, windy=True, forecast=[Day(day="text",
                                                                             high_c=7)])

# Every request field of the OpenAI Chat Completions reference (openai==3.57.0) with a value,
# plus one no reference knows yet.
CHAT_FIELDS: dict[str, Any] = {
    "messages": [{"role": "developer", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
    "audio": {"voice": "alloy", "format": "wav"},
    "frequency_penalty": 0.25,
    "function_call": "auto",
    "functions": [{"name": "legacy_fn", "parameters": {"type": "object"}}],
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "max_completion_tokens": 300,
    "metadata": {"team": "search"},
    "modalities": ["text"],
    "moderation": {"input": {"mode": "score"}},
    "n": 1,
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "It is sunny."},
    "presence_penalty": -0.5,
    "prompt_cache_key": "weather-v1",
    "prompt_cache_options": {"mode": "implicit"},
    "prompt_cache_retention": "24h",
    "response_format": {"type": "text"},
    "safety_identifier": "user-hash-1",
    "seed": 1234,
    "service_tier": "flex",
    "stop": ["END"],
    "store": True,
    "temperature": 0.4,
    "tool_choice": "auto",
    "tools": [{"type": "function", "function": {"name": "get_weather",
                                                "parameters": WEATHER_PARAMETERS}}],
    "top_logprobs": 2,
    "top_p": 0.95,
    "user": "end-user-7",
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
    "x_vendor_field_from_the_future": {"nested": [1, {"deep": True}]},
}
# Every request field of the Anthropic Messages reference (anthropic==2.14.0, beta included)
# with a value, the legacy sampling fields, plus one no reference knows yet.
MESSAGES_FIELDS: dict[str, Any] = {
    "max_tokens": 300,
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Weather in Paris?", "cache_control": {"type": "ephemeral"}}]}],
    "system": [{"type": "text", "text": "Be brief."}],
    "metadata": {"user_id": "end-user-7"},
    "stop_sequences": ["END"],
    "temperature": 0.4,
    "top_p": 0.95,
    "top_k": 40,
    "tools": [{"name": "get_weather", "input_schema": WEATHER_PARAMETERS}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "medium"},
    "service_tier": "standard_only",
    "speed": "standard",
    "cache_control": {"type": "ephemeral"},
    "diagnostics": {"previous_message_id": "msg_prev"},
    "container": "container_1",
    "inference_geo": "us",
    "user_profile_id": "up_1",
    "workspace_id": "wrkspc_1",
    "billing_policy": {"type": "billing_policy", "bill_to": "self"},
    "fallback_credit_token": "fct_1",
    "fallbacks": "default",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "weather"}],
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    "compaction": None,
    "thread": {"type": "create"},
    "x_vendor_field_from_the_future": {"nested": [1, {"deep": True}]},
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if request.param == "postgres":
        _check_postgres()
    tmp = tmp_path_factory.mktemp(f"wire-{request.param}")
    with start_fake_upstream() as fake, \
            scratch_database(request.param, tmp, POSTGRES_URL) as url, \
            run_gateway(url, fake, tmp, catalog=CATALOG) as gw:
        yield gw


@pytest.fixture(autouse=True)
def default_scripts(gateway: Gateway) -> None:
    for upstream in UPSTREAM.values():
        gateway.fake.script(upstream, text(f"Hello from {upstream}."))


_clients: list[anthropic.Anthropic | openai.OpenAI] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def claude(gw: Gateway) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    _clients.append(client)
    return client


def gpt(gw: Gateway) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
    _clients.append(client)
    return client


def post(gw: Gateway, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gw.url}{path}", json=body, timeout=30,
                      headers={"authorization": f"Bearer {gw.key}"})


def last(gw: Gateway, since: int) -> RecordedRequest:
    """The one upstream request made since `since`."""
    [received] = gw.fake.requests[since:]
    return received


def sse_data(response: httpx.Response) -> list[Any]:
    return [json.loads(line[len("data: "):]) for line in response.text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def routed_event(gw: Gateway, public_id: str) -> dict[str, Any]:
    return next(e for e in gw.events(public_id) if e["type"] == "Routed")


# --- same protocol: field by field ---------------------------------------------------------


@pytest.mark.parametrize(("model", "limit_field"), [
    ("fake-reasoner", "max_completion_tokens"), ("fake-gpt", "max_tokens")])
def test_a_chat_request_reaches_an_openai_backend_field_by_field(
        gateway: Gateway, model: str, limit_field: str) -> None:
    body = {"model": model, "routing_hint": {"min_quality": "0.5"}, **CHAT_FIELDS}
    before = len(gateway.fake.requests)
    response = post(gateway, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    sent = last(gateway, before).body
    # The limit goes under the name this model takes (the catalog's max_tokens_field).
    assert sent.pop(limit_field) == body.pop("max_completion_tokens")
    assert set(sent) == set(body) - {"routing_hint"}
    for field, value in body.items():
        if field == "model":
            assert sent["model"] == UPSTREAM[model]
        elif field != "routing_hint":
            assert sent[field] == value, field
    # The answer is the upstream's own: fields a translation would not keep arrive.
    answer = response.json()
    assert answer["id"] == response.headers["x-ainfera-inference-id"]
    assert answer["model"] == model
    assert answer["system_fingerprint"] == "fp_fake"
    assert answer["choices"][0]["logprobs"]["content"][0]["token"] == "Hello"


def test_a_chat_stream_reaches_an_openai_backend_and_comes_back_as_it_streamed(
        gateway: Gateway) -> None:
    body = {"model": "fake-reasoner", **CHAT_FIELDS, "stream": True,
            "stream_options": {"include_usage": True, "include_obfuscation": False}}
    before = len(gateway.fake.requests)
    response = post(gateway, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    sent = last(gateway, before).body
    assert sent == {**body, "model": "up-reasoner"}
    chunks = sse_data(response)
    assert all(c["id"] == response.headers["x-ainfera-inference-id"] for c in chunks)
    assert all(c["system_fingerprint"] == "fp_fake" for c in chunks)
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    tokens = [lp["token"] for c in chunks if c["choices"] and c["choices"][0]["logprobs"]
              for lp in c["choices"][0]["logprobs"]["content"]]
    assert "".join(tokens) == "Hello from up-reasoner."


def test_usage_the_gateway_asked_for_is_not_passed_to_a_client_that_did_not(
        gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    response = post(gateway, "/v1/chat/completions",
                    {"model": "fake-gpt", "messages": ASK, "stream": True})
    # The ledger needs the counts, so the upstream was asked for them...
    assert last(gateway, before).body["stream_options"] == {"include_usage": True}
    chunks = sse_data(response)
    # ... but the client did not ask: no usage key, no usage chunk, as OpenAI would send.
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    events = gateway.wait_for_completion(response.headers["x-ainfera-inference-id"])
    completed = next(e for e in events if e["type"] == "Completed")
    assert completed["usage"]["output_tokens"] == 7


@pytest.mark.parametrize("stream", [False, True])
def test_a_messages_request_reaches_an_anthropic_backend_field_by_field(
        gateway: Gateway, stream: bool) -> None:
    body = {"model": "fake-claude", "routing_hint": {"min_quality": "0.5"}, **MESSAGES_FIELDS,
            "stream": stream}
    before = len(gateway.fake.requests)
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=30,
                          headers={"x-api-key": gateway.key,
                                   "anthropic-beta": "mcp-client-2025-04-04"})
    assert response.status_code == 200, response.text
    received = last(gateway, before)
    assert received.headers["anthropic-beta"] == "mcp-client-2025-04-04"
    sent = received.body
    if not stream:
        assert "stream" not in sent  # an Anthropic non-streamed call sends none
        body.pop("stream")
    assert set(sent) == set(body) - {"routing_hint"}
    for field, value in body.items():
        if field == "model":
            assert sent["model"] == "up-claude"
        elif field != "routing_hint":
            assert sent[field] == value, field


def test_a_field_only_the_callers_protocol_has_routes_to_that_protocol(
        gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    message = claude(gateway).messages.create(
        model="ainfera-inference", max_tokens=64, messages=ASK,
        extra_body={"container": "container_1"})
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from up-claude."
    assert last(gateway, before).body["container"] == "container_1"
    reasons = {c["model"]: c["rejection_reason"]
               for c in routed_event(gateway, message.id)["candidates"]}
    assert reasons == {"fake-plain": "not_translatable", "fake-gpt": "not_translatable",
                       "fake-gemini": "not_translatable", "fake-reasoner": "not_translatable",
                       "fake-claude": None}


# --- across protocols ----------------------------------------------------------------------


def test_a_field_one_protocol_translates_and_another_refuses_routes_to_the_translator(
        gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    message = claude(gateway).messages.create(
        model="ainfera-inference", max_tokens=64, messages=ASK, extra_body={"top_k": 40})
    received = last(gateway, before)
    assert received.path == "/v1beta/models/up-gemini:generateContent"
    assert received.body["generationConfig"]["topK"] == 40
    reasons = {c["model"]: c["rejection_reason"]
               for c in routed_event(gateway, message.id)["candidates"]}
    assert reasons["fake-plain"] == reasons["fake-gpt"] == "not_translatable"
    assert reasons["fake-gemini"] is None


def test_a_pinned_backend_that_would_refuse_a_field_is_400_naming_it(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gateway).messages.create(model="fake-gpt", max_tokens=64, messages=ASK,
                                        extra_body={"top_k": 40})
    assert "top_k" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "x-ainfera-inference-id" not in caught.value.response.headers  # nothing recorded
    response = post(gateway, "/v1/chat/completions", {
        "model": "fake-claude", "messages": ASK, "frequency_penalty": 0.5})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("not_translatable", "frequency_penalty")
    assert len(gateway.fake.requests) == before  # nothing reached any upstream


def test_a_pinned_model_without_a_capability_is_422_and_routing_avoids_it(
        gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        gpt(gateway).chat.completions.parse(model="fake-plain", messages=ASK,
                                            response_format=Weather)
    assert caught.value.code == "structured_output_not_supported_by_backend"
    assert "structured output" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(gateway.fake.requests) == before
    # Routed, the cheapest model is passed over for the cheapest that can do it.
    completion = gpt(gateway).chat.completions.parse(model="ainfera-inference", messages=ASK,
                                                     response_format=Weather)
    reasons = {c["model"]: c["rejection_reason"]
               for c in routed_event(gateway, completion.id)["candidates"]}
    assert reasons["fake-plain"] == "structured_output_unsupported"
    assert completion.model == "fake-gpt"


def test_when_no_routed_model_can_do_it_the_refusal_is_recorded(gateway: Gateway) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        gpt(gateway).chat.completions.create(
            model="ainfera-inference", messages=ASK, logprobs=True, reasoning_effort="low",
            extra_body={"routing_hint": {"min_quality": "0.79"}})
    public_id = caught.value.response.headers["x-ainfera-inference-id"]
    assert "logprobs" in caught.value.message
    events = gateway.events(public_id)
    assert [e["type"] for e in events] == ["Routed", "Completed"]
    assert events[1]["status"] == "rejected_floor"


# --- structured output through the SDK helpers ---------------------------------------------


@pytest.mark.parametrize(("model", "where"), [
    ("fake-gpt", "response_format"), ("fake-claude", "output_config"),
    ("fake-gemini", "generationConfig"), ("fake-reasoner", "response_format"),
])  # fmt: skip
def test_openai_parse_pinned_to_every_vendor(gateway: Gateway, model: str, where: str) -> None:
    before = len(gateway.fake.requests)
    completion = gpt(gateway).chat.completions.parse(model=model, messages=ASK,
                                                     response_format=Weather)
    assert completion.choices[0].message.parsed == EXPECTED
    assert completion.model == model
    sent = last(gateway, before).body
    schema = {"response_format": lambda b: b["response_format"]["json_schema"]["schema"],
              "output_config": lambda b: b["output_config"]["format"]["schema"],
              "generationConfig": lambda b: b["generationConfig"]["responseJsonSchema"]}[where]
    assert schema(sent)["properties"]["forecast"]["type"] == "array"


def test_openai_parse_routed_within_and_across_protocols(gateway: Gateway) -> None:
    client = gpt(gateway)
    cheapest = client.chat.completions.parse(model="ainfera-inference", messages=ASK,
                                             response_format=Weather)
    assert cheapest.model == "fake-gpt"
    assert cheapest.choices[0].message.parsed == EXPECTED
    # A floor only Claude clears: the same helper, served across protocols.
    across = client.chat.completions.parse(model="ainfera-inference", messages=ASK,
                                           response_format=Weather,
                                           extra_body={"routing_hint": {"min_quality": "0.8"}})
    assert across.model == "fake-claude"
    assert across.choices[0].message.parsed == EXPECTED


@pytest.mark.parametrize("model", ["fake-gpt", "fake-claude", "fake-gemini"])
def test_openai_streaming_parse(gateway: Gateway, model: str) -> None:
    with gpt(gateway).chat.completions.stream(model=model, messages=ASK,
                                              response_format=Weather) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == EXPECTED


@pytest.mark.parametrize("model",
                         ["fake-claude", "fake-gpt", "fake-gemini", "ainfera-inference"])
def test_anthropic_parse_pinned_to_every_vendor_and_routed(gateway: Gateway, model: str) -> None:
    message = claude(gateway).messages.parse(model=model, max_tokens=256, messages=ASK,
                                             output_format=Weather)
    assert message.parsed_output == EXPECTED
    if model == "ainfera-inference":
        assert routed_event(gateway, message.id)["chosen_model"] == "fake-gpt"


@pytest.mark.parametrize("model", ["fake-claude", "fake-gpt", "fake-gemini"])
def test_anthropic_streaming_parse(gateway: Gateway, model: str) -> None:
    with claude(gateway).messages.stream(model=model, max_tokens=256, messages=ASK,
                                         output_format=Weather) as stream:
        final = stream.get_final_message()
    assert final.parsed_output == EXPECTED


@pytest.mark.parametrize("stream", [False, True])
def test_json_mode_reaches_anthropic_as_a_forced_tool_and_returns_json_text(
        gateway: Gateway, stream: bool) -> None:
    before = len(gateway.fake.requests)
    client = gpt(gateway)
    if stream:
        chunks = list(client.chat.completions.create(
            model="fake-claude", messages=ASK, response_format={"type": "json_object"},
            stream=True))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        completion = client.chat.completions.create(
            model="fake-claude", messages=ASK, response_format={"type": "json_object"})
        content = completion.choices[0].message.content or ""
        assert completion.choices[0].message.tool_calls is None
        assert completion.choices[0].finish_reason == "stop"
    assert json.loads(content) == {"answer": "structured"}
    sent = last(gateway, before).body
    assert sent["tool_choice"] == {"type": "tool", "name": "ainfera_json_answer"}


# --- reasoning ------------------------------------------------------------------------------


def test_reasoning_effort_becomes_anthropic_thinking_and_no_thinking_leaks(
        gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    completion = gpt(gateway).chat.completions.create(model="fake-claude", messages=ASK,
                                                      reasoning_effort="low")
    sent = last(gateway, before).body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 4096 + 2048  # no limit was sent; Anthropic needs one
    assert completion.choices[0].message.content == "Hello from up-claude."
    chunks = list(gpt(gateway).chat.completions.create(
        model="fake-claude", messages=ASK, reasoning_effort="low", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Hello from up-claude."


def test_thinking_routes_to_a_thinking_model_and_is_translated(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    message = claude(gateway).messages.create(
        model="ainfera-inference", max_tokens=4096, messages=ASK,
        thinking={"type": "enabled", "budget_tokens": 2048})
    reasons = {c["model"]: c["rejection_reason"]
               for c in routed_event(gateway, message.id)["candidates"]}
    assert reasons["fake-plain"] == reasons["fake-gpt"] == "thinking_unsupported"
    assert last(gateway, before).body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048}


# --- token limits ---------------------------------------------------------------------------


def test_no_limit_is_invented_where_the_api_needs_none(gateway: Gateway) -> None:
    for model in ("fake-gpt", "fake-reasoner", "fake-gemini"):
        before = len(gateway.fake.requests)
        gpt(gateway).chat.completions.create(model=model, messages=ASK)
        sent = last(gateway, before).body
        assert "max_tokens" not in sent
        assert "max_completion_tokens" not in sent
        assert "maxOutputTokens" not in (sent.get("generationConfig") or {})
    before = len(gateway.fake.requests)
    gpt(gateway).chat.completions.create(model="fake-claude", messages=ASK)
    assert last(gateway, before).body["max_tokens"] == 4096  # Anthropic requires one


def test_the_limit_goes_under_the_name_the_model_takes(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    gpt(gateway).chat.completions.create(model="fake-reasoner", messages=ASK, max_tokens=50)
    sent = last(gateway, before).body
    assert (sent.get("max_completion_tokens"), "max_tokens" in sent) == (50, False)
    before = len(gateway.fake.requests)
    gpt(gateway).chat.completions.create(model="fake-gpt", messages=ASK,
                                         max_completion_tokens=60)
    sent = last(gateway, before).body
    assert (sent.get("max_tokens"), "max_completion_tokens" in sent) == (60, False)
    before = len(gateway.fake.requests)
    claude(gateway).messages.create(model="fake-reasoner", max_tokens=70, messages=ASK)
    sent = last(gateway, before).body
    assert (sent.get("max_completion_tokens"), "max_tokens" in sent) == (70, False)


# --- stream details -------------------------------------------------------------------------


def test_a_translated_chat_stream_says_usage_null_and_null_content_before_a_tool_call(
        gateway: Gateway) -> None:
    response = post(gateway, "/v1/chat/completions", {
        "model": "fake-claude", "messages": ASK, "stream": True,
        "stream_options": {"include_usage": True}})
    chunks = sse_data(response)
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[0]["choices"][0]["delta"]["content"] == ""
    gateway.fake.script("up-claude", tool_call("get_weather", {"city": "Paris"}))
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": WEATHER_PARAMETERS}}]
    response = post(gateway, "/v1/chat/completions", {
        "model": "fake-claude", "messages": ASK, "stream": True, "tools": tools})
    first = sse_data(response)[0]["choices"][0]["delta"]
    assert first["content"] is None
    assert first["tool_calls"][0]["function"]["name"] == "get_weather"


def test_a_translated_message_start_carries_the_input_count_reported_early(
        gateway: Gateway) -> None:
    with claude(gateway).messages.stream(model="fake-gemini", max_tokens=64,
                                         messages=ASK) as stream:
        first = next(iter(stream))
        assert first.type == "message_start"
        assert first.message.usage.input_tokens == 12
        stream.get_final_message()


# --- count_tokens ---------------------------------------------------------------------------


def test_count_tokens_is_forwarded_to_an_anthropic_backend(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    raw = claude(gateway).messages.with_raw_response.count_tokens(
        model="fake-claude", messages=ASK, system="Be brief.")
    counted = raw.parse()
    assert counted.input_tokens == 12
    assert raw.headers["x-ainfera-token-count"] == "upstream"
    received = last(gateway, before)
    assert received.path == "/v1/messages/count_tokens"
    assert received.body == {"model": "up-claude", "messages": ASK, "system": "Be brief."}
    assert "x-ainfera-inference-id" not in raw.headers  # not an inference


def test_count_tokens_is_estimated_and_marked_elsewhere(gateway: Gateway) -> None:
    before = len(gateway.fake.requests)
    for model in ("ainfera-inference", "fake-gpt"):
        raw = claude(gateway).messages.with_raw_response.count_tokens(model=model, messages=ASK)
        assert raw.headers["x-ainfera-token-count"] == "estimated"
        body = raw.http_response.json()
        assert body == {"input_tokens": 6, "estimated": True}  # 17 characters / 3, rounded up
    assert len(gateway.fake.requests) == before
    with pytest.raises(anthropic.NotFoundError):
        claude(gateway).messages.count_tokens(model="no-such-model", messages=ASK)
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'ainfera_token_counts_total{mode="estimated"}' in metrics
