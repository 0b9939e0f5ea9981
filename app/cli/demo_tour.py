"""The steps of `ainfera demo` (app/cli/demo_command.py), each printing what it did and
what it showed: tenancy through the same services as the CLI, real calls with the official
SDKs (routed and pinned, plain, streamed, with tools), a cap refusal, a receipt verified
offline, the dashboard, and `ainfera verify` over the whole ledger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from app.bootstrap import open_store
from app.cli.errors import CommandError
from app.cli.receipt_commands import verify_files
from app.jobs.checkpointer import checkpoint_opener
from app.services import tenancy
from app.services.audit import verify
from app.settings import Settings
from domain.tenancy import parse_cap

RECEIPT_TIMEOUT_S = 60.0

WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


class Tour:
    """Numbered steps, each printing what it did and what it showed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n[{self.number}/{self.total}] {title}", flush=True)

    @staticmethod
    def show(text: str) -> None:
        print(f"      {text}", flush=True)


def tenancy_step(tour: Tour, database_url: str) -> str:
    tour.step("Create a tenant, an agent with a daily cap, and a key")
    with open_store(Settings(database_url=database_url)) as opened:
        store = opened.store
        tenant_id = tenancy.create_tenant(store, "demo")
        agent_id = tenancy.create_agent(store, "demo", "support-bot", parse_cap("1.00"))
        tenancy.create_agent(store, "demo", "tiny-budget", parse_cap("0.000001"))
        issued = tenancy.create_key(store, "demo", "support-bot")
    tour.show(f"$ ainfera tenant create demo                        -> {tenant_id}")
    tour.show("$ ainfera agent create --tenant demo --name support-bot --daily-cap-usd 1.00")
    tour.show(f"                                                     -> {agent_id}")
    tour.show(f"$ ainfera key create --tenant demo --agent support-bot -> {issued.key[:7]}... "
              "(shown once; saved in the env file below)")
    tour.show("every one of these is an event on the ledger (TenantCreated, AgentRegistered, "
              "KeyIssued)")
    return issued.key


def sdk_calls(tour: Tour, claude: Any, gpt: Any, url: str, key: str) -> str:
    tour.step("Real calls with the official SDKs (base_url is the only change)")
    raw = claude.messages.with_raw_response.create(
        model="ainfera-inference", max_tokens=200,
        messages=[{"role": "user", "content": "Hello! Which model answers me?"}])
    message = raw.parse()
    tour.show(f"anthropic, routed: model='ainfera-inference' -> served by {message.model} "
              f"(router {raw.headers['x-ainfera-router']}), id {message.id}")
    tour.show(f"  text: {message.content[0].text}")
    pieces: list[str] = []
    with claude.messages.stream(model="sim-claude", max_tokens=200, messages=[
            {"role": "user", "content": "Stream me something."}]) as stream:
        pieces.extend(stream.text_stream)
        streamed = stream.get_final_message()
    tour.show(f"anthropic, pinned + streamed: model='sim-claude', {len(pieces)} text deltas "
              f"as they arrived, stop_reason {streamed.stop_reason}, id {streamed.id}")
    tools = [{"type": "function", "function": {
        "name": WEATHER["name"], "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"]}}]
    asked = [{"role": "user", "content": "What's the weather in Paris?"}]
    call = gpt.chat.completions.create(model="ainfera-inference", messages=asked, tools=tools)
    tool_call = call.choices[0].message.tool_calls[0]
    tour.show(f"openai, routed + tools: the model called {tool_call.function.name}"
              f"({tool_call.function.arguments}), finish_reason "
              f"{call.choices[0].finish_reason}, id {call.id}")
    answered = gpt.chat.completions.create(model="ainfera-inference", messages=[
        *asked, call.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temp_c": 18}'}],
        tools=tools)
    tour.show(f"openai, the tool result sent back: {answered.choices[0].message.content}")
    chunks = gpt.chat.completions.create(
        model="sim-gpt", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count to three."}])
    usage = None
    count = 0
    for chunk in chunks:
        count += 1
        usage = chunk.usage or usage
    tour.show(f"openai, pinned + streamed: model='sim-gpt', {count} chunks, usage "
              f"{usage.prompt_tokens if usage else '?'} in / "
              f"{usage.completion_tokens if usage else '?'} out")
    return str(message.id)


def cap_refusal(tour: Tour, database_url: str, url: str, anthropic: Any) -> None:
    tour.step("A call over its agent's daily cap is refused before any upstream byte")
    with open_store(Settings(database_url=database_url)) as opened:
        tiny_key = tenancy.create_key(opened.store, "demo", "tiny-budget").key
    client = anthropic.Anthropic(base_url=url, api_key=tiny_key, max_retries=0)
    try:
        client.messages.create(model="ainfera-inference", max_tokens=200,
                               messages=[{"role": "user", "content": "Hi"}])
        tour.show("unexpected: the call was served")
    except anthropic.RateLimitError as exc:
        tour.show(f"agent tiny-budget (cap $0.000001): HTTP {exc.status_code}, "
                  f"x-should-retry {exc.response.headers.get('x-should-retry')}")
        tour.show(f"  {exc.body['error']['message'] if isinstance(exc.body, dict) else exc}")
        tour.show("  recorded too: a Routed and a Completed(rejected_budget) event")
    finally:
        client.close()


def receipt_step(tour: Tour, url: str, key: str, inference_id: str, home: Path) -> None:
    tour.step(f"Fetch the receipt of {inference_id} and verify it offline")
    headers = {"x-api-key": key}
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while True:
        response = httpx.get(f"{url}/v1/inferences/{inference_id}/receipt", headers=headers,
                             timeout=30)
        if response.status_code == 200:
            break
        if response.status_code != 202 or time.monotonic() > deadline:
            raise CommandError(f"the receipt of {inference_id} did not come: HTTP "
                               f"{response.status_code} {response.text[:200]}")
        time.sleep(0.2)  # 202: its events are not in a signed checkpoint yet
    receipt_file = home / "receipt.json"
    receipt_file.write_text(response.text)
    vkey = httpx.get(f"{url}/v1/ledger/public-key", timeout=30).json()["vkey"]
    receipt = response.json()
    tour.show(f"{len(receipt['entries'])} events, each with its leaf, chain link and "
              f"inclusion proof, under a checkpoint signed by {vkey.split('+')[0]}")
    verified = verify_files(str(receipt_file), vkey, None, None)
    tour.show(f"$ ainfera receipt verify {receipt_file} --vkey '{vkey}'")
    tour.show(f"receipt verifies: {len(verified.entries)} events at tree size "
              f"{verified.checkpoint.size}; no server or database was used for this check")


def dashboard_step(tour: Tour, url: str, key: str) -> None:
    tour.step("What the dashboard endpoints say now")
    headers = {"x-api-key": key, "x-ainfera-consistent": "true"}
    usage = httpx.get(f"{url}/v1/usage/daily?days=1", headers=headers, timeout=30).json()
    totals = usage["totals"]
    tour.show(f"GET /v1/usage/daily?days=1: {totals['calls']} calls, "
              f"${totals['cost_usd']} spent, by status {totals['by_status']}")
    metrics = httpx.get(f"{url}/v1/agents/support-bot/metrics", headers=headers,
                        timeout=30).json()
    tour.show(f"GET /v1/agents/support-bot/metrics: {metrics['calls']} calls, p50 "
              f"{metrics['latency_p50_ms']} ms, spend today "
              f"${metrics['spend_today']['settled_usd']} of the $1.00 cap")


def verify_step(tour: Tour, database_url: str, env: dict[str, str]) -> None:
    tour.step("Check the whole ledger and every read model: ainfera verify")
    settings = Settings.from_env(env)
    with open_store(settings) as opened:
        report = verify(opened.database, opened.store,
                        open_checkpoint=checkpoint_opener(settings))
    tour.show("replayed every event into scratch read models and diffed them with the live "
              "ones; recomputed every leaf, chain link, subtree root and signed checkpoint")
    if report.ok:
        tour.show(f"no differences: {report.events_checked} events, "
                  f"{len(report.positions)} read models")
    else:
        tour.show(f"{len(report.problems)} problems, the first: {report.problems[0]}")


def explore_hints(home: Path, url: str, inference_id: str) -> None:
    env_file = home / "env"
    print(f"""
Keep exploring, in another shell:

  source {env_file}                 # AINFERA_URL, KEY, AINFERA_DATABASE_URL, ...
  curl -s -H "x-api-key: $KEY" $AINFERA_URL/v1/inferences/{inference_id}
  curl -s -H "x-api-key: $KEY" $AINFERA_URL/v1/inferences/{inference_id}/decision
  curl -s -H "x-api-key: $KEY" "$AINFERA_URL/v1/usage/daily?days=7"
  curl -s $AINFERA_URL/v1/ledger/checkpoint
  .venv/bin/ainfera tenant list; .venv/bin/ainfera key list --tenant demo
  .venv/bin/ainfera verify
  open {url}/schema/ in a browser for the API reference

Then with your own vendor keys: README.md, "With vendor keys".""", flush=True)
