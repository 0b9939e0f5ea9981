"""What a newcomer meets in their first hour (issue 11), against a real gateway process with the
official SDKs: a provider without a key is refused once and not retried, a cap refusal shows
plain amounts, events read `Z` times, agents are found by name, and the log has one line per
call (with no key and no prompt in it) and a startup summary."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.gateway import Server, World, prepare_world, serve

PROMPT = "a secret prompt that must never reach the log"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, World,
                                                                      FakeUpstream, Path]]:
    tmp = tmp_path_factory.mktemp("first-hour")
    url = f"sqlite:///{tmp}/gateway.db"
    world = prepare_world(url, daily_cap_usd="0.000001")
    with start_fake_upstream() as fake:
        for model in ("up-gpt", "up-gemini", "up-claude", "up-weak"):
            fake.script(model, text(f"Hello from {model}."))
        # Anthropic has no key: its models are skipped at dispatch, named in the startup log.
        with serve(url, fake, tmp, {"FAKE_ANTHROPIC_KEY": "", "AINFERA_LOG_FORMAT": "json"}) \
                as server:
            yield server, world, fake, tmp


def log_lines(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines()
            if line.startswith("{")]


def calls(server: Server) -> list[dict[str, Any]]:
    return [line for line in log_lines(server) if line["logger"] == "ainfera.access"]


def post(server: Server, key: str, body: dict[str, Any],
         path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers={"x-api-key": key}, timeout=30)


def test_a_provider_without_a_key_is_refused_once_naming_the_variable(world: Any) -> None:
    server, people, _fake, _tmp = world
    other = people.other_key  # tenant globex: no cap
    response = post(server, other, {"model": "fake-claude", "max_tokens": 16,
                                    "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert "FAKE_ANTHROPIC_KEY" in error["message"]
    assert "(None)" not in error["message"]
    # The SDK, with its default retries (2), makes one call and so records one inference.
    client = anthropic.Anthropic(base_url=server.url, api_key=other)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model="fake-claude", max_tokens=16,
                               messages=[{"role": "user", "content": "hi"}])
    client.close()
    assert raised.value.status_code == 502
    # A line is written once the response is sent: give the lines a moment to land.
    time.sleep(1)
    refused = [c for c in calls(server) if c["status"] == 502]
    assert [c["request_id"] for c in refused] == [response.headers["request-id"],
                                                  raised.value.response.headers["request-id"]]


def test_a_cap_refusal_shows_plain_amounts(world: Any) -> None:
    server, people, _fake, _tmp = world
    response = post(server, people.key, {"model": "fake-gpt", "max_tokens": 16,
                                         "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 429
    message = response.json()["error"]["message"]
    assert "E-" not in message, message
    assert "E+" not in message, message
    assert "$0.00 used" in message
    assert "$0.000001 USD" in message


def test_event_times_read_like_the_receipts(world: Any) -> None:
    server, people, _fake, _tmp = world
    response = post(server, people.other_key, {"model": "fake-gpt", "max_tokens": 16,
                                               "messages": [{"role": "user", "content": "t"}]})
    assert response.status_code == 200
    events = httpx.get(f"{server.url}/v1/inferences/{response.json()['id']}",
                       headers={"x-api-key": people.other_key}, timeout=10).json()["events"]
    for event in events:
        assert event["recorded_at"].endswith("Z"), event
        assert "+00:00" not in event["recorded_at"]


def test_agent_metrics_take_a_name_or_an_id_of_the_own_tenant_only(world: Any) -> None:
    server, people, _fake, _tmp = world
    by_name = httpx.get(f"{server.url}/v1/agents/bot/metrics",
                        headers={"x-api-key": people.key}, timeout=10)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["agent_id"] == people.agent_id
    by_id = httpx.get(f"{server.url}/v1/agents/{people.agent_id}/metrics",
                      headers={"x-api-key": people.key}, timeout=10)
    assert by_id.json()["agent_id"] == people.agent_id
    for ref in ("bot", people.agent_id, "ghost"):
        foreign = httpx.get(f"{server.url}/v1/agents/{ref}/metrics",
                            headers={"x-api-key": people.other_key}, timeout=10)
        assert foreign.status_code == 404, ref


def test_every_call_leaves_one_structured_line_and_no_secret(world: Any) -> None:
    server, people, _fake, _tmp = world
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=people.other_key, max_retries=0)
    answer = client.chat.completions.create(
        model="ainfera-inference", messages=[{"role": "user", "content": PROMPT}])
    stream = client.chat.completions.create(
        model="fake-gemini", stream=True, messages=[{"role": "user", "content": PROMPT}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.close()
    post(server, "ak_wrong", {"model": "fake-gpt"})  # 401
    post(server, people.other_key, {"model": "no-such-model", "max_tokens": 5,
                                    "messages": [{"role": "user", "content": PROMPT}]})  # 404
    httpx.get(f"{server.url}/v1/no-such-endpoint", timeout=10)  # 404 before any route
    post(server, people.key, {"model": "fake-gpt", "max_tokens": 5,
                              "messages": [{"role": "user", "content": PROMPT}]})  # 429: cap
    post(server, people.other_key, {"model": "fake-claude", "max_tokens": 5,
                                    "messages": [{"role": "user", "content": PROMPT}]})  # 502
    lines = calls(server)
    routed = next(c for c in lines if c.get("inference_id") == answer.id)
    assert routed["status"] == 200
    assert routed["surface"] == "chat.completions"
    assert routed["requested_model"] == "ainfera-inference"
    assert routed["served_model"] == "fake-gpt"
    assert routed["router"] == "ainfera-inference"
    assert routed["outcome"] == "succeeded"
    assert routed["tenant_id"]
    assert routed["agent_id"]
    assert routed["request_id"].startswith("req_")
    assert routed["cost_usd"] == "0.00004"
    assert routed["upstream_ms"] >= 0
    assert routed["total_ms"] >= routed["upstream_ms"]
    assert routed["time"].endswith("Z")
    streamed = [c for c in lines if c.get("requested_model") == "fake-gemini"]
    assert len(streamed) == 1
    assert streamed[0]["served_model"] == "fake-gemini"
    statuses = {c["status"] for c in lines}
    assert {200, 401, 404, 429, 502} <= statuses
    assert any(c["path"] == "/v1/no-such-endpoint" and c["status"] == 404 for c in lines)
    assert not any(c["path"] in ("/readyz", "/healthz") for c in lines)
    raw = server.log_path.read_text()
    assert PROMPT not in raw
    assert people.key not in raw
    assert people.other_key not in raw
    assert "sk-oai-fake" not in raw
    assert "gm-fake" not in raw


def test_startup_says_what_it_serves(world: Any) -> None:
    server, _people, _fake, tmp = world
    startup = {line["message"].split(":")[0]: line for line in log_lines(server)
               if line["logger"] == "ainfera.startup"}
    assert set(startup) == {"config", "providers", "models", "store", "counters", "projections"}
    assert startup["config"]["config"] == str(tmp / "ainfera.toml")
    assert startup["providers"]["providers_with_key"] == ["openai", "gemini"]
    assert startup["providers"]["providers_without_key"] == {"anthropic": "FAKE_ANTHROPIC_KEY"}
    assert "fake-claude" not in startup["models"]["models"]
    assert startup["store"]["store"] == "sqlite"
    assert startup["counters"]["counters"] == "in-process"
    assert startup["projections"]["projections"] == "process"
